// The runtime source archive's container: POSIX ustar (the format `tar` reads everywhere), regular files and folders
// only. A small writer and reader of our own rather than the npm `tar` package: that package is here only as a
// dependency of cmake-js (a dev tool), it would have to become a runtime dependency bundled into dist/server.js,
// and it handles far more (PAX, links, devices, streams) than one archive this project writes itself needs.
// scripts/runtime-source.mjs writes the archive with writeTar (from out/), the runtime builder reads it with readTar.

export interface TarEntry {
    /** The path inside the archive, '/'-separated, no leading '/', no '..'; a folder's ends without '/'. */
    path: string;
    /** Absent for a folder. */
    data?: Uint8Array;
    /** Whether the file is executable (written 0755, else 0644). */
    executable?: boolean;
}

const BLOCK = 512;

/** Splits a path into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes) at a '/'. */
function splitPath(path: string): [string, string] {
    if (Buffer.byteLength(path) <= 100) return ["", path];
    for (let i = path.indexOf("/"); i > 0; i = path.indexOf("/", i + 1)) {
        const prefix = path.slice(0, i);
        const name = path.slice(i + 1);
        if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(name) <= 100) return [prefix, name];
    }
    throw new Error(`${path} is too long for a ustar archive`);
}

function octal(header: Buffer, offset: number, length: number, value: number): void {
    header.write(`${value.toString(8).padStart(length - 1, "0")}\0`, offset, length, "ascii");
}

function checkedPath(path: string): string {
    const parts = path.split("/");
    if (!path || path.startsWith("/") || parts.some((p) => p === ".." || p === "." || p === ""))
        throw new Error(`unsafe path in archive: ${JSON.stringify(path)}`);
    return path;
}

/** The archive of `entries`, in their order, with fixed times and owners: the same entries give the same bytes. */
export function writeTar(entries: readonly TarEntry[]): Buffer {
    const chunks: Buffer[] = [];
    for (const e of entries) {
        const isDir = e.data === undefined;
        const [prefix, name] = splitPath(checkedPath(e.path) + (isDir ? "/" : ""));
        const header = Buffer.alloc(BLOCK);
        header.write(name, 0, 100, "utf8");
        octal(header, 100, 8, isDir || e.executable ? 0o755 : 0o644);
        octal(header, 108, 8, 0); // uid
        octal(header, 116, 8, 0); // gid
        octal(header, 124, 12, isDir ? 0 : e.data!.length);
        octal(header, 136, 12, 0); // mtime
        header.write("        ", 148, 8, "ascii"); // the checksum counts as spaces while it is summed
        header.write(isDir ? "5" : "0", 156, 1, "ascii");
        header.write("ustar\x0000", 257, 8, "ascii");
        header.write(prefix, 345, 155, "utf8");
        let sum = 0;
        for (const b of header) sum += b;
        header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
        chunks.push(header);
        if (!isDir) {
            chunks.push(Buffer.from(e.data!));
            const pad = (BLOCK - (e.data!.length % BLOCK)) % BLOCK;
            if (pad) chunks.push(Buffer.alloc(pad));
        }
    }
    chunks.push(Buffer.alloc(2 * BLOCK));
    return Buffer.concat(chunks);
}

const field = (header: Buffer, offset: number, length: number) => {
    const raw = header.subarray(offset, offset + length);
    const end = raw.indexOf(0);
    return raw.subarray(0, end < 0 ? length : end).toString("utf8");
};

/** The entries of a ustar archive (as writeTar writes them; GNU tar's --format=ustar too). Links, devices, PAX and GNU
 * long-name records, and paths that would leave the folder it is unpacked in, are refused. */
export function* readTar(archive: Buffer): Generator<TarEntry> {
    for (let at = 0; at + BLOCK <= archive.length; ) {
        const header = archive.subarray(at, at + BLOCK);
        if (header.every((b) => b === 0)) return;
        if (field(header, 257, 6) !== "ustar") throw new Error(`not a ustar archive (entry at byte ${at})`);
        let sum = 0;
        for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : header[i];
        if (Number.parseInt(field(header, 148, 8).trim(), 8) !== sum) throw new Error(`damaged archive: bad header checksum at byte ${at}`);
        const prefix = field(header, 345, 155);
        const full = (prefix ? `${prefix}/` : "") + field(header, 0, 100);
        const type = field(header, 156, 1) || "0";
        const size = Number.parseInt(field(header, 124, 12).trim() || "0", 8);
        const mode = Number.parseInt(field(header, 100, 8).trim() || "0", 8);
        at += BLOCK;
        if (type === "5") {
            yield { path: checkedPath(full.replace(/\/$/, "")) };
        } else if (type === "0") {
            if (at + size > archive.length) throw new Error(`damaged archive: ${full} is cut short`);
            yield { path: checkedPath(full), data: archive.subarray(at, at + size), executable: (mode & 0o111) !== 0 };
            at += Math.ceil(size / BLOCK) * BLOCK;
        } else {
            throw new Error(`${full}: entry type '${type}' is not a file or a folder`);
        }
    }
    throw new Error("damaged archive: no end-of-archive blocks");
}

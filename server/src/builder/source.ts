// The source the runtime builder compiles: one archive the package carries (scripts/runtime-source.mjs makes it), in
// a source checkout as in the installed .vsix, found at the same path from the package root.
import { createHash } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { brotliDecompress } from "node:zlib";
import { packagedFile } from "../packageFiles";
import { readTar } from "./tar";

/** The archive, from the package root: patched llama.cpp (trimmed), native/, the Node-API headers. */
export const RUNTIME_SOURCE_FILE = "native/build/runtime-source.tar.br";

/** The archive this package carries, or a sentence saying it has none. */
export function runtimeSource(): string {
    const found = packagedFile(RUNTIME_SOURCE_FILE);
    if (!found) {
        throw new Error(
            `This installation has no runtime source (${RUNTIME_SOURCE_FILE}): reinstall Dream-Coder; in a source checkout, run npm run setup (it makes the archive).`
        );
    }
    return found;
}

const hashes = new Map<string, { size: number; mtimeMs: number; hash: string }>();

/** The archive's content hash (16 hex digits): a built runtime's stamp names the source it was built from. Remembered
 *  while the file's size and time stay the same. */
export function sourceHash(archive: string): string {
    const { size, mtimeMs } = statSync(archive);
    const known = hashes.get(archive);
    if (known && known.size === size && known.mtimeMs === mtimeMs) return known.hash;
    const hash = createHash("sha256").update(readFileSync(archive)).digest("hex").slice(0, 16);
    hashes.set(archive, { size, mtimeMs, hash });
    return hash;
}

/** Unpacks the archive into `dest` (made if absent); `onFile` gets the fraction of its bytes written. */
export async function unpackSource(archive: string, dest: string, onFile?: (fraction: number, path: string) => void, signal?: AbortSignal): Promise<number> {
    const tar = await promisify(brotliDecompress)(await readFile(archive));
    let files = 0;
    await mkdir(dest, { recursive: true });
    for (const entry of readTar(tar)) {
        signal?.throwIfAborted();
        const path = join(dest, ...entry.path.split("/"));
        if (!entry.data) {
            await mkdir(path, { recursive: true });
            continue;
        }
        await writeFile(path, entry.data);
        if (entry.executable) await chmod(path, 0o755);
        files++;
        onFile?.((entry.data.byteOffset - tar.byteOffset + entry.data.length) / tar.length, entry.path);
    }
    return files;
}

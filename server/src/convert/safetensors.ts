// Reads a checkpoint's safetensors files: one model.safetensors, or shards named by model.safetensors.index.json.
// Layout: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and byte range in
// the data that follows. Every header is checked against the file's size before anything is trusted, so a damaged
// or hostile file is refused with a sentence; tensor data is read later by positioned reads in bounded chunks.
import { type FileHandle, open, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError } from "./checkpointError";
import { SOURCE_DTYPE_SIZE, type SourceDtype } from "./gguf";

export interface CheckpointTensor {
    /** The name in the checkpoint, e.g. model.layers.0.self_attn.q_proj.weight. */
    name: string;
    dtype: SourceDtype;
    /** PyTorch order (outermost first). */
    shape: number[];
    /** The safetensors file holding it, and where its data starts and how long it is. */
    file: string;
    offset: number;
    bytes: number;
}

/** A header longer than this is not a checkpoint's (real ones are well under 1 MiB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** The tensors of one safetensors file, sorted by name as the safetensors library (and gguf-py) lists them. */
export async function readSafetensorsHeader(file: string): Promise<CheckpointTensor[]> {
    const fail = (why: string) => new CheckpointError(`${file} is not a usable safetensors file (${why}): download it again`);
    const size = (await stat(file)).size;
    if (size < 8) throw fail(`it has ${size} bytes, fewer than the 8 of its header length`);
    const handle = await open(file, "r");
    let header: Buffer;
    try {
        const lengthBytes = Buffer.alloc(8);
        await handle.read(lengthBytes, 0, 8, 0);
        const length = lengthBytes.readBigUInt64LE(0);
        if (length > BigInt(Math.min(size - 8, MAX_HEADER_BYTES))) throw fail(`its header claims ${length} bytes, and the file has ${size}`);
        header = Buffer.alloc(Number(length));
        const { bytesRead } = await handle.read(header, 0, header.length, 8);
        if (bytesRead !== header.length) throw fail("the file ended inside its header");
    } finally {
        await handle.close();
    }
    let parsed: unknown;
    try {
        parsed = JSON.parse(header.toString("utf8"));
    } catch {
        throw fail("its header is not JSON");
    }
    if (!isObject(parsed)) throw fail("its header is not a JSON object");
    const dataStart = 8 + header.length;
    const dataBytes = size - dataStart;
    const tensors: CheckpointTensor[] = [];
    for (const [name, entry] of Object.entries(parsed)) {
        if (name === "__metadata__") continue;
        if (!isObject(entry)) throw fail(`tensor ${name} has no description`);
        const { dtype, shape, data_offsets: range } = entry;
        if (typeof dtype !== "string") throw fail(`tensor ${name} has no dtype`);
        if (!(dtype in SOURCE_DTYPE_SIZE)) {
            throw new CheckpointError(
                `tensor ${name} in ${file} is ${dtype}; this converter reads BF16, F16 and F32 checkpoints: use the model's unquantized checkpoint`
            );
        }
        if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw fail(`tensor ${name} has a malformed shape`);
        if (!Array.isArray(range) || range.length !== 2 || !range.every((o) => Number.isSafeInteger(o) && o >= 0) || range[0] > range[1]) {
            throw fail(`tensor ${name} has malformed data offsets`);
        }
        const [begin, end] = range as number[];
        const elements = (shape as number[]).reduce((a, b) => a * b, 1);
        if (end - begin !== elements * SOURCE_DTYPE_SIZE[dtype as SourceDtype]) {
            throw fail(`tensor ${name} has ${end - begin} bytes for shape [${shape.join(", ")}] of ${dtype}`);
        }
        if (end > dataBytes) throw fail(`tensor ${name} ends at byte ${dataStart + end}, past the end of the file (${size} bytes): it is truncated`);
        tensors.push({ name, dtype: dtype as SourceDtype, shape: shape as number[], file, offset: dataStart + begin, bytes: end - begin });
    }
    return tensors.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Every tensor of the checkpoint in `dir`, in the order convert_hf_to_gguf.py visits them: the shards sorted by file
 * name (from the index, or every model*.safetensors without one), each shard's tensors sorted by name. A tensor the
 * index names that no shard holds (a missing or incomplete download) is refused.
 */
export async function checkpointTensors(dir: string): Promise<CheckpointTensor[]> {
    const indexFile = join(dir, "model.safetensors.index.json");
    let parts: string[];
    let indexed: Set<string> | undefined;
    let index: unknown;
    try {
        index = JSON.parse(await readFile(indexFile, "utf8"));
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new CheckpointError(`${indexFile} is not valid JSON: download it again`);
    }
    if (index !== undefined) {
        const weightMap = isObject(index) ? index.weight_map : undefined;
        if (!isObject(weightMap) || !Object.values(weightMap).every((f) => typeof f === "string" && !f.includes("/") && !f.includes("\\"))) {
            throw new CheckpointError(`${indexFile} has no weight_map of tensor names to file names: download it again`);
        }
        indexed = new Set(Object.keys(weightMap));
        parts = [...new Set(Object.values(weightMap) as string[])].sort();
    } else {
        parts = (await readdir(dir)).filter((f) => f.startsWith("model") && f.endsWith(".safetensors")).sort();
        if (parts.length === 0)
            throw new CheckpointError(`${dir} has no model.safetensors or model.safetensors.index.json: it is not a complete checkpoint folder`);
    }
    const tensors: CheckpointTensor[] = [];
    const seen = new Map<string, number>();
    for (const part of parts) {
        const file = join(dir, part);
        try {
            await stat(file);
        } catch {
            throw new CheckpointError(`${file} is missing (the index names it): download the checkpoint again`);
        }
        for (const t of await readSafetensorsHeader(file)) {
            // A name in two shards keeps its first place with the last shard's data, as a Python dict update does.
            const at = seen.get(t.name);
            if (at === undefined) {
                seen.set(t.name, tensors.length);
                tensors.push(t);
            } else tensors[at] = t;
        }
    }
    if (indexed) {
        const missing = [...indexed].filter((n) => !seen.has(n));
        const extra = [...seen.keys()].filter((n) => !indexed.has(n));
        if (missing.length || extra.length) {
            const names = (list: string[]) => list.slice(0, 3).join(", ") + (list.length > 3 ? ` and ${list.length - 3} more` : "");
            throw new CheckpointError(
                missing.length
                    ? `the checkpoint's shards lack ${missing.length} tensor(s) its index names (${names(missing)}): download the checkpoint again`
                    : `the checkpoint's shards hold ${extra.length} tensor(s) its index does not name (${names(extra)}): download the checkpoint again`
            );
        }
    }
    return tensors;
}

/** `bytes` bytes at `offset` of an open file. */
export async function readRange(file: FileHandle, offset: number, bytes: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(bytes);
    for (let got = 0; got < bytes; ) {
        const { bytesRead } = await file.read(buf, got, bytes - got, offset + got);
        if (bytesRead === 0)
            throw new CheckpointError(`a safetensors file ended early (at byte ${offset + got}): it changed during the conversion; download it again`);
        got += bytesRead;
    }
    return buf;
}

/** Reads `bytes` bytes at `offset` of an open file in chunks of at most `chunk` bytes. */
export async function* readChunks(file: FileHandle, offset: number, bytes: number, chunk: number): AsyncGenerator<Buffer> {
    for (let done = 0; done < bytes; done += chunk) yield await readRange(file, offset + done, Math.min(chunk, bytes - done));
}

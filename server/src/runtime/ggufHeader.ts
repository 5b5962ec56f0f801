// Reads a GGUF file's header (metadata and tensor table) with every count and length checked against the
// file's size before anything is allocated or read, so that a hostile or damaged header is refused at once
// instead of being read far past the end of the file (node-llama-cpp's reader took ~90 s and 3.7 GB on a
// tensor count one too high). Layout: ggml's docs/gguf.md, version 2 and 3.
import { open, type FileHandle } from "node:fs/promises";

export type GgufScalar = number | bigint | boolean | string;
export type GgufMetaValue = GgufScalar | GgufScalar[];

export interface GgufTensorInfo {
    name: string;
    /** ne0 (innermost) first, as in ggml. */
    dims: number[];
    ggmlType: number;
    /** Where the tensor's data starts in the file. */
    fileOffset: number;
}

export interface GgufHeader {
    version: number;
    /** In the file's order. */
    metadata: Map<string, GgufMetaValue>;
    /** Each key's value type as gguf-py names it: "u32", "string", "array<string>" … (the converter's test compares them). */
    types: Map<string, string>;
    /** Where each key's text starts in the file, and where its value does (a string's text: 8 bytes later, after its
     *  length), for a tool that rewrites a header in place. */
    offsets: Map<string, { key: number; value: number }>;
    tensors: GgufTensorInfo[];
}

/** The header is unreadable: the message says what is wrong and where. */
export class GgufHeaderError extends Error {
    constructor(
        message: string,
        readonly notGguf = false
    ) {
        super(message);
    }
}

const GGUF_MAGIC = "GGUF";
const GGML_MAX_DIMS = 4;
const DEFAULT_ALIGNMENT = 32;
/** The fewest bytes one tensor entry takes: name length, a one-character name, n_dims, one dimension, type, offset. */
const MIN_TENSOR_ENTRY = 8 + 1 + 4 + 8 + 4 + 8;
/** The fewest bytes one metadata entry takes: key length, a one-character key, value type, a one-byte value. */
const MIN_METADATA_ENTRY = 8 + 1 + 4 + 1;

// Value types (gguf_type) and the size of the fixed-size ones.
const STRING = 8;
const ARRAY = 9;
const FIXED_SIZE: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
const TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

/** Reads forward through the file in chunks; every read is checked against the file's size first. */
class BoundedReader {
    private chunk = Buffer.alloc(0);
    private chunkStart = 0;
    position = 0;

    constructor(
        private readonly file: FileHandle,
        readonly size: number
    ) {}

    get remaining(): number {
        return this.size - this.position;
    }

    /** `n` bytes at the current position, or an error naming what needed them. */
    async bytes(n: number, what: string): Promise<Buffer> {
        if (n > this.remaining) {
            throw new GgufHeaderError(`${what} at byte ${this.position} needs ${n} bytes, but the file ends ${this.remaining} bytes later`);
        }
        const at = this.position - this.chunkStart;
        if (at + n > this.chunk.length) {
            this.chunk = Buffer.alloc(Math.min(Math.max(n, 1 << 20), this.remaining));
            this.chunkStart = this.position;
            const { bytesRead } = await this.file.read(this.chunk, 0, this.chunk.length, this.position);
            if (bytesRead < n) throw new GgufHeaderError(`${what} at byte ${this.position}: the file ended while reading it`);
        }
        const start = this.position - this.chunkStart;
        this.position += n;
        return this.chunk.subarray(start, start + n);
    }

    async u32(what: string): Promise<number> {
        return (await this.bytes(4, what)).readUInt32LE(0);
    }

    async u64(what: string): Promise<bigint> {
        return (await this.bytes(8, what)).readBigUInt64LE(0);
    }

    /** A count that must fit in the rest of the file at `minBytes` bytes each. */
    async count(what: string, minBytes: number): Promise<number> {
        const at = this.position;
        const n = await this.u64(what);
        if (n * BigInt(minBytes) > BigInt(this.remaining)) {
            throw new GgufHeaderError(`${what} at byte ${at} is ${n}, more than the ${this.remaining} bytes left in the file can hold`);
        }
        return Number(n);
    }

    async string(what: string): Promise<string> {
        const length = await this.count(`the length of ${what}`, 1);
        return (await this.bytes(length, what)).toString("utf8");
    }
}

async function scalar(r: BoundedReader, type: number, what: string): Promise<GgufScalar> {
    if (type === STRING) return r.string(what);
    const size = FIXED_SIZE[type];
    if (size === undefined) throw new GgufHeaderError(`${what} has an unknown value type (${type})`);
    const b = await r.bytes(size, what);
    switch (type) {
        case 0:
            return b.readUInt8(0);
        case 1:
            return b.readInt8(0);
        case 2:
            return b.readUInt16LE(0);
        case 3:
            return b.readInt16LE(0);
        case 4:
            return b.readUInt32LE(0);
        case 5:
            return b.readInt32LE(0);
        case 6:
            return b.readFloatLE(0);
        case 7:
            return b[0] !== 0;
        case 10:
            return b.readBigUInt64LE(0);
        case 11:
            return b.readBigInt64LE(0);
        default:
            return b.readDoubleLE(0);
    }
}

async function metaValue(r: BoundedReader, key: string): Promise<{ value: GgufMetaValue; type: string }> {
    const type = await r.u32(`the type of ${key}`);
    if (type !== ARRAY) return { value: await scalar(r, type, key), type: TYPE_NAMES[type] };
    const itemType = await r.u32(`the item type of ${key}`);
    if (itemType === ARRAY) throw new GgufHeaderError(`${key} is an array of arrays, which GGUF does not allow`);
    const n = await r.count(`the length of ${key}`, itemType === STRING ? 8 : (FIXED_SIZE[itemType] ?? 1));
    const items: GgufScalar[] = new Array(n);
    for (let i = 0; i < n; i++) items[i] = await scalar(r, itemType, `${key}[${i}]`);
    return { value: items, type: `array<${TYPE_NAMES[itemType]}>` };
}

/** Whether the file at `path`, of `size` bytes, starts with the GGUF magic: a check that reads four bytes. */
export async function startsWithGgufMagic(path: string, size: number): Promise<boolean> {
    if (size < 4) return false;
    const file = await open(path, "r");
    try {
        const { bytesRead, buffer } = await file.read(Buffer.alloc(4), 0, 4, 0);
        return bytesRead === 4 && buffer.toString("latin1") === GGUF_MAGIC;
    } finally {
        await file.close();
    }
}

/** The header of the GGUF file at `path`, or a GgufHeaderError saying what is wrong with it. */
export async function readGgufHeader(path: string, size: number): Promise<GgufHeader> {
    const file = await open(path, "r");
    try {
        const r = new BoundedReader(file, size);
        if (size < 4 || (await r.bytes(4, "the GGUF magic")).toString("latin1") !== GGUF_MAGIC) {
            throw new GgufHeaderError("it does not start with the GGUF magic", true);
        }
        const version = await r.u32("the GGUF version");
        if (version !== 2 && version !== 3) throw new GgufHeaderError(`GGUF version ${version} is not supported (2 and 3 are)`);
        const tensorCount = await r.count("the tensor count", MIN_TENSOR_ENTRY);
        const metadataCount = await r.count("the metadata count", MIN_METADATA_ENTRY);

        const metadata = new Map<string, GgufMetaValue>();
        const types = new Map<string, string>();
        const offsets = new Map<string, { key: number; value: number }>();
        for (let i = 0; i < metadataCount; i++) {
            const keyAt = r.position + 8;
            const key = await r.string(`metadata key ${i}`);
            const valueAt = r.position + 4;
            const { value, type } = await metaValue(r, key);
            metadata.set(key, value);
            types.set(key, type);
            offsets.set(key, { key: keyAt, value: valueAt });
        }

        const tensors: GgufTensorInfo[] = [];
        for (let i = 0; i < tensorCount; i++) {
            const name = await r.string(`the name of tensor ${i}`);
            const nDims = await r.u32(`the dimension count of tensor ${name}`);
            if (nDims < 1 || nDims > GGML_MAX_DIMS) throw new GgufHeaderError(`tensor ${name} has ${nDims} dimensions (1 to ${GGML_MAX_DIMS} are allowed)`);
            const dims: number[] = [];
            for (let d = 0; d < nDims; d++) {
                const ne = await r.u64(`dimension ${d} of tensor ${name}`);
                if (ne > BigInt(Number.MAX_SAFE_INTEGER)) throw new GgufHeaderError(`tensor ${name} has a dimension of ${ne}`);
                dims.push(Number(ne));
            }
            const ggmlType = await r.u32(`the type of tensor ${name}`);
            // Relative to the data section for now; an offset past the end of the file is the caller's "truncated".
            const offset = await r.u64(`the offset of tensor ${name}`);
            tensors.push({ name, dims, ggmlType, fileOffset: Number(offset) });
        }

        const alignment = metadata.get("general.alignment") ?? DEFAULT_ALIGNMENT;
        if (typeof alignment !== "number" || alignment < 1 || (alignment & (alignment - 1)) !== 0) {
            throw new GgufHeaderError(`general.alignment is ${String(alignment)}, not a power of two`);
        }
        const dataStart = Math.ceil(r.position / alignment) * alignment;
        for (const t of tensors) t.fileOffset += dataStart;
        return { version, metadata, types, offsets, tensors };
    } finally {
        await file.close();
    }
}

// The one GGUF encoder (version 3, little-endian; ggml's docs/gguf.md): metadata values, the header with its tensor
// table, and the element encodings the converter writes (F32, F16, BF16). The header is written first, since every
// tensor's size follows from its shape and type; the tensor data then streams after it, tensor by tensor, so nothing
// of the model needs to be in memory at once. Reading stays in server/src/runtime/ggufHeader.ts.
import type { FileHandle } from "node:fs/promises";

export type GgufScalarType = "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "u64" | "i64" | "f64" | "bool" | "string";
export type GgufKvValue =
    | { type: Exclude<GgufScalarType, "bool" | "string">; value: number | bigint }
    | { type: "bool"; value: boolean }
    | { type: "string"; value: string }
    | { type: "array"; itemType: GgufScalarType; value: readonly (number | bigint | boolean | string)[] };
export interface GgufKv {
    key: string;
    value: GgufKvValue;
}

/** gguf_type: the value type codes of the format. */
export const GGUF_VALUE_TYPE: Record<GgufScalarType | "array", number> = {
    u8: 0,
    i8: 1,
    u16: 2,
    i16: 3,
    u32: 4,
    i32: 5,
    f32: 6,
    bool: 7,
    string: 8,
    array: 9,
    u64: 10,
    i64: 11,
    f64: 12
};

/** The ggml tensor types this project writes (ggml_type codes). */
export enum GgmlType {
    F32 = 0,
    F16 = 1,
    BF16 = 30
}

/** Bytes per element of each GgmlType. */
export const GGML_TYPE_SIZE: Record<GgmlType, number> = { [GgmlType.F32]: 4, [GgmlType.F16]: 2, [GgmlType.BF16]: 2 };

export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

export interface GgufTensorEntry {
    name: string;
    /** ne0 (innermost) first, as in ggml: a PyTorch shape reversed. */
    dims: readonly number[];
    /** A ggml_type; the converter writes GgmlType, the test tools also other (quantized) types. */
    type: number;
    /** The size of its data in the file, without the alignment padding. */
    bytes: number;
}

type NumberType = Exclude<GgufScalarType, "bool" | "string">;
const NUMBER_WRITERS: Record<NumberType, [number, (b: Buffer, v: number | bigint, at: number) => void]> = {
    u8: [1, (b, v, at) => b.writeUInt8(Number(v), at)],
    i8: [1, (b, v, at) => b.writeInt8(Number(v), at)],
    u16: [2, (b, v, at) => b.writeUInt16LE(Number(v), at)],
    i16: [2, (b, v, at) => b.writeInt16LE(Number(v), at)],
    u32: [4, (b, v, at) => b.writeUInt32LE(Number(v), at)],
    i32: [4, (b, v, at) => b.writeInt32LE(Number(v), at)],
    f32: [4, (b, v, at) => b.writeFloatLE(Number(v), at)],
    u64: [8, (b, v, at) => b.writeBigUInt64LE(BigInt(v), at)],
    i64: [8, (b, v, at) => b.writeBigInt64LE(BigInt(v), at)],
    f64: [8, (b, v, at) => b.writeDoubleLE(Number(v), at)]
};

/** Little-endian bytes written into one growing buffer. A header holds a vocabulary of some 150k tokens and as many
 *  merges: a Buffer for each string and number would take hundreds of bytes apiece, over 100 MiB in all. */
class ByteSink {
    private b = Buffer.alloc(1 << 16);
    length = 0;

    /** Makes room for `n` more bytes and returns where they start. */
    private reserve(n: number): number {
        if (this.length + n > this.b.length) {
            const grown = Buffer.alloc(Math.max(2 * this.b.length, this.length + n));
            this.b.copy(grown, 0, 0, this.length);
            this.b = grown;
        }
        this.length += n;
        return this.length - n;
    }

    bytes(src: Uint8Array): void {
        const at = this.reserve(src.length);
        this.b.set(src, at);
    }

    /** `n` zero bytes (the buffer is allocated zeroed and never written twice). */
    zeros(n: number): void {
        this.reserve(n);
    }

    u32(v: number): void {
        const at = this.reserve(4);
        this.b.writeUInt32LE(v, at);
    }

    u64(v: number | bigint): void {
        const at = this.reserve(8);
        this.b.writeBigUInt64LE(BigInt(v), at);
    }

    str(s: string): void {
        const n = Buffer.byteLength(s, "utf8");
        this.u64(n);
        const at = this.reserve(n);
        this.b.write(s, at, n, "utf8");
    }

    scalar(type: GgufScalarType, v: number | bigint | boolean | string, key: string): void {
        const wrong = () => new Error(`GGUF value ${key}: ${String(v)} is not a ${type}`);
        if (type === "string") {
            if (typeof v !== "string") throw wrong();
            this.str(v);
        } else if (type === "bool") {
            if (typeof v !== "boolean") throw wrong();
            const at = this.reserve(1);
            this.b[at] = v ? 1 : 0;
        } else {
            if (typeof v !== "number" && typeof v !== "bigint") throw wrong();
            if (type !== "f32" && type !== "f64" && !Number.isInteger(Number(v))) throw wrong();
            const [size, write] = NUMBER_WRITERS[type];
            const at = this.reserve(size); // before reading this.b, which reserve may replace
            write(this.b, v, at);
        }
    }

    buffer(): Buffer {
        return this.b.subarray(0, this.length);
    }
}

export function alignUp(n: number, alignment: number): number {
    return Math.ceil(n / alignment) * alignment;
}

/** The alignment a file with these metadata uses: general.alignment if set, else 32. */
export function ggufAlignment(kvs: readonly GgufKv[]): number {
    const set = kvs.find((kv) => kv.key === "general.alignment");
    if (!set) return GGUF_DEFAULT_ALIGNMENT;
    const a = Number(set.value.value);
    if (set.value.type !== "u32" || !(a > 0) || (a & (a - 1)) !== 0)
        throw new Error(`general.alignment must be a u32 power of two, not ${String(set.value.value)}`);
    return a;
}

/**
 * Everything before the tensor data: magic, version, counts, the metadata, the tensor table (each tensor's offset in
 * the data section, aligned) and the padding up to the data section. `tensorCount` overrides the count written
 * (the test tools write hostile headers with it).
 */
export function encodeGgufHeader(kvs: readonly GgufKv[], tensors: readonly GgufTensorEntry[], tensorCount?: bigint): Buffer {
    const alignment = ggufAlignment(kvs);
    const out = new ByteSink();
    out.bytes(Buffer.from("GGUF", "latin1"));
    out.u32(GGUF_VERSION);
    out.u64(tensorCount ?? tensors.length);
    out.u64(kvs.length);
    for (const { key, value } of kvs) {
        out.str(key);
        out.u32(GGUF_VALUE_TYPE[value.type]);
        if (value.type === "array") {
            out.u32(GGUF_VALUE_TYPE[value.itemType]);
            out.u64(value.value.length);
            for (const item of value.value) out.scalar(value.itemType, item, key);
        } else {
            out.scalar(value.type, value.value, key);
        }
    }
    let offset = 0;
    for (const t of tensors) {
        out.str(t.name);
        out.u32(t.dims.length);
        for (const d of t.dims) out.u64(d);
        out.u32(t.type);
        out.u64(offset);
        offset = alignUp(offset + t.bytes, alignment);
    }
    const pad = alignUp(out.length, alignment) - out.length;
    out.zeros(pad);
    return out.buffer();
}

/**
 * Writes a GGUF file through an open handle: the header at once, then each tensor's data as the caller streams it
 * in chunks (in the table's order), checking that each tensor gets exactly its size.
 */
export class GgufStreamWriter {
    private readonly alignment: number;
    private position = 0;
    private tensor = 0;
    private written = 0;

    private constructor(
        private readonly file: FileHandle,
        private readonly tensors: readonly GgufTensorEntry[],
        kvs: readonly GgufKv[]
    ) {
        this.alignment = ggufAlignment(kvs);
    }

    static async start(file: FileHandle, kvs: readonly GgufKv[], tensors: readonly GgufTensorEntry[]): Promise<GgufStreamWriter> {
        const w = new GgufStreamWriter(file, tensors, kvs);
        await w.write(encodeGgufHeader(kvs, tensors));
        return w;
    }

    private async write(b: Buffer): Promise<void> {
        let done = 0;
        while (done < b.length) {
            const { bytesWritten } = await this.file.write(b, done, b.length - done, this.position);
            done += bytesWritten;
            this.position += bytesWritten;
        }
    }

    /** The next bytes of the current tensor's data. */
    async data(chunk: Buffer): Promise<void> {
        const t = this.tensors[this.tensor];
        if (!t || this.written + chunk.length > t.bytes) throw new Error(`GGUF writer: more data than tensor ${t?.name ?? this.tensor} holds`);
        await this.write(chunk);
        this.written += chunk.length;
    }

    /** Ends the current tensor: it must be complete; pads to the alignment. */
    async endTensor(): Promise<void> {
        const t = this.tensors[this.tensor];
        if (this.written !== t.bytes) throw new Error(`GGUF writer: tensor ${t.name} got ${this.written} of its ${t.bytes} bytes`);
        const pad = alignUp(t.bytes, this.alignment) - t.bytes;
        if (pad) await this.write(Buffer.alloc(pad));
        this.tensor++;
        this.written = 0;
    }

    /** The bytes written so far; after the last tensor, the file's size. */
    get bytes(): number {
        return this.position;
    }

    get complete(): boolean {
        return this.tensor === this.tensors.length;
    }
}

// Element encodings. Each converts a whole chunk; the rounding is what numpy and gguf-py do, bit for bit.
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** IEEE binary16 bits of a float32 (given as its bits): round to nearest even, subnormals, overflow to infinity,
 *  NaN kept quiet with its top payload bits (numpy's astype(float16), which uses the CPU's conversion). */
export function f32BitsToF16(bits: number): number {
    const sign = (bits >>> 16) & 0x8000;
    const exp = (bits >>> 23) & 0xff;
    const mant = bits & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
    const e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        const m = mant | 0x800000;
        const shift = 14 - e;
        let h = m >>> shift;
        const rem = m & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && h & 1)) h++;
        return sign | h;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is right, up to infinity
    return sign | h;
}

/** IEEE binary16 bits of a number (rounded to float32 first). */
export function toHalf(x: number): number {
    f32[0] = x;
    return f32BitsToF16(f32Bits[0]);
}

/** bfloat16 bits of a float32 (given as its bits): round to nearest even, NaN made quiet (gguf-py's BF16 and
 *  ggml_compute_fp32_to_bf16). */
export function f32BitsToBf16(bits: number): number {
    if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) & 0xffff) | 0x40;
    return ((bits + 0x7fff + ((bits >>> 16) & 1)) / 0x10000) & 0xffff;
}

let halfTable: Uint32Array | undefined;
/** float32 bits of every binary16 value (exact). */
function f16ToF32Table(): Uint32Array {
    if (halfTable) return halfTable;
    halfTable = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) {
        const sign = (h & 0x8000) << 16;
        const exp = (h >>> 10) & 0x1f;
        const mant = h & 0x3ff;
        if (exp === 0x1f) halfTable[h] = sign | 0x7f800000 | (mant << 13);
        else if (exp !== 0) halfTable[h] = sign | ((exp - 15 + 127) << 23) | (mant << 13);
        else if (mant === 0) halfTable[h] = sign;
        else {
            f32[0] = mant * 2 ** -24;
            halfTable[h] = sign | f32Bits[0];
        }
    }
    return halfTable;
}

/** Source element types of a checkpoint (safetensors' names). */
export type SourceDtype = "F32" | "F16" | "BF16";
export const SOURCE_DTYPE_SIZE: Record<SourceDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/**
 * Converts little-endian elements of `from` to `to` as gguf-py does: a BF16 source is widened to float32 first
 * (exact), an F16 or F32 source is kept, then F32 stays, F16 rounds with numpy's astype and BF16 with gguf-py's
 * rounding. Returns a new buffer (or `src` itself where nothing changes).
 */
export function convertElements(src: Buffer, from: SourceDtype, to: GgmlType): Buffer {
    const n = src.length / SOURCE_DTYPE_SIZE[from];
    if (from === "F32" && to === GgmlType.F32) return src;
    if (from === "F16" && to === GgmlType.F16) return src;
    // Typed views need aligned offsets; a chunk read into its own buffer starts at 0, a slice may not.
    const input = src.byteOffset % 4 === 0 ? src : Buffer.from(src);
    const out = Buffer.allocUnsafe(n * GGML_TYPE_SIZE[to]);
    const o16 = new Uint16Array(out.buffer, out.byteOffset, to === GgmlType.F32 ? 0 : n);
    const o32 = new Uint32Array(out.buffer, out.byteOffset, to === GgmlType.F32 ? n : 0);
    if (from === "F32") {
        const s = new Uint32Array(input.buffer, input.byteOffset, n);
        if (to === GgmlType.F16) for (let i = 0; i < n; i++) o16[i] = f32BitsToF16(s[i]);
        else for (let i = 0; i < n; i++) o16[i] = f32BitsToBf16(s[i]);
        return out;
    }
    const s = new Uint16Array(input.buffer, input.byteOffset, n);
    if (from === "BF16") {
        if (to === GgmlType.F32) for (let i = 0; i < n; i++) o32[i] = s[i] << 16;
        else if (to === GgmlType.F16) for (let i = 0; i < n; i++) o16[i] = f32BitsToF16((s[i] << 16) >>> 0);
        // bf16 -> float32 -> bf16 is exact; only a signalling NaN changes (made quiet).
        else for (let i = 0; i < n; i++) o16[i] = (s[i] & 0x7fff) > 0x7f80 ? s[i] | 0x40 : s[i];
        return out;
    }
    const table = f16ToF32Table();
    if (to === GgmlType.F32) for (let i = 0; i < n; i++) o32[i] = table[s[i]];
    else for (let i = 0; i < n; i++) o16[i] = f32BitsToBf16(table[s[i]]);
    return out;
}

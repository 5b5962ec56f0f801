// A minimal GGUF (v3) writer for the test tooling: metadata, F32/F16 tensors, 32-byte alignment.
import { closeSync, openSync, writeSync } from "node:fs";

export enum GgufValueType {
    UINT32 = 4,
    INT32 = 5,
    FLOAT32 = 6,
    BOOL = 7,
    STRING = 8,
    ARRAY = 9
}

export type GgufValue =
    | { type: "u32" | "i32" | "f32"; value: number }
    | { type: "bool"; value: boolean }
    | { type: "string"; value: string }
    | { type: "string[]"; value: string[] }
    | { type: "i32[]"; value: ArrayLike<number> };

export enum GgmlType {
    F32 = 0,
    F16 = 1
}

export interface GgufTensor {
    name: string;
    dims: number[]; // ne0 (innermost) first, as in ggml
    type: GgmlType;
    data: Float32Array; // converted to `type` on write
}

const ALIGNMENT = 32;

class ByteSink {
    private chunks: Buffer[] = [];
    length = 0;

    push(b: Buffer): void {
        this.chunks.push(b);
        this.length += b.length;
    }

    u32(v: number): void {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(v);
        this.push(b);
    }

    u64(v: number | bigint): void {
        const b = Buffer.alloc(8);
        b.writeBigUInt64LE(BigInt(v));
        this.push(b);
    }

    str(s: string): void {
        const b = Buffer.from(s, "utf8");
        this.u64(b.length);
        this.push(b);
    }

    pad(): void {
        const rem = this.length % ALIGNMENT;
        if (rem) this.push(Buffer.alloc(ALIGNMENT - rem));
    }

    buffer(): Buffer {
        return Buffer.concat(this.chunks);
    }
}

function writeValue(out: ByteSink, v: GgufValue): void {
    switch (v.type) {
        case "u32":
            out.u32(GgufValueType.UINT32);
            out.u32(v.value);
            break;
        case "i32": {
            out.u32(GgufValueType.INT32);
            const b = Buffer.alloc(4);
            b.writeInt32LE(v.value);
            out.push(b);
            break;
        }
        case "f32": {
            out.u32(GgufValueType.FLOAT32);
            const b = Buffer.alloc(4);
            b.writeFloatLE(v.value);
            out.push(b);
            break;
        }
        case "bool":
            out.u32(GgufValueType.BOOL);
            out.push(Buffer.from([v.value ? 1 : 0]));
            break;
        case "string":
            out.u32(GgufValueType.STRING);
            out.str(v.value);
            break;
        case "string[]":
            out.u32(GgufValueType.ARRAY);
            out.u32(GgufValueType.STRING);
            out.u64(v.value.length);
            for (const s of v.value) out.str(s);
            break;
        case "i32[]": {
            out.u32(GgufValueType.ARRAY);
            out.u32(GgufValueType.INT32);
            out.u64(v.value.length);
            const b = Buffer.alloc(4 * v.value.length);
            for (let i = 0; i < v.value.length; i++) b.writeInt32LE(v.value[i], 4 * i);
            out.push(b);
            break;
        }
    }
}

// IEEE half from a float (round to nearest even); enough for random weights.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function toHalf(x: number): number {
    f32[0] = x;
    const bits = u32[0];
    const sign = (bits >>> 16) & 0x8000;
    const exp = (bits >>> 23) & 0xff;
    let mant = bits & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
    const e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        mant |= 0x800000;
        const shift = 14 - e;
        let h = mant >>> shift;
        const rem = mant & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && h & 1)) h++;
        return sign | h;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
    return sign | h;
}

function tensorBytes(t: GgufTensor): Buffer {
    if (t.type === GgmlType.F32) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    const out = Buffer.alloc(t.data.length * 2);
    for (let i = 0; i < t.data.length; i++) out.writeUInt16LE(toHalf(t.data[i]), 2 * i);
    return out;
}

/** A tensor whose bytes the caller writes (any ggml type, e.g. Q4_0 blocks for the GPU benchmark's 7B-shaped models). */
export interface GgufRawTensor {
    name: string;
    dims: number[];
    type: number; // ggml_type
    bytes: number; // its size in the file
    write: (fd: number) => void; // writes exactly `bytes` bytes at the current position
}

/** Writes a GGUF file whose tensor data the callers stream, one tensor at a time (nothing large in memory). */
export function writeGgufRaw(path: string, metadata: Record<string, GgufValue>, tensors: GgufRawTensor[]): void {
    const head = new ByteSink();
    head.push(Buffer.from("GGUF", "ascii"));
    head.u32(3);
    head.u64(tensors.length);
    head.u64(Object.keys(metadata).length);
    for (const [key, value] of Object.entries(metadata)) {
        head.str(key);
        writeValue(head, value);
    }
    let offset = 0;
    for (const t of tensors) {
        head.str(t.name);
        head.u32(t.dims.length);
        for (const d of t.dims) head.u64(d);
        head.u32(t.type);
        head.u64(offset);
        offset = Math.ceil((offset + t.bytes) / ALIGNMENT) * ALIGNMENT;
    }
    head.pad();
    const fd = openSync(path, "w");
    try {
        writeSync(fd, head.buffer());
        for (const t of tensors) {
            t.write(fd);
            const rem = t.bytes % ALIGNMENT;
            if (rem) writeSync(fd, Buffer.alloc(ALIGNMENT - rem));
        }
    } finally {
        closeSync(fd);
    }
}

/** A hostile header for the model checks: only the header is written, claiming `tensorCount` tensors. */
export interface HeaderOnly {
    tensorCount: bigint;
}

/** Writes a GGUF file; tensors are streamed one by one so large vocabularies stay cheap in memory. */
export function writeGguf(path: string, metadata: Record<string, GgufValue>, tensors: GgufTensor[], headerOnly?: HeaderOnly): void {
    const head = new ByteSink();
    head.push(Buffer.from("GGUF", "ascii"));
    head.u32(3);
    head.u64(headerOnly?.tensorCount ?? tensors.length);
    head.u64(Object.keys(metadata).length);
    for (const [key, value] of Object.entries(metadata)) {
        head.str(key);
        writeValue(head, value);
    }
    let offset = 0;
    const offsets: number[] = [];
    for (const t of tensors) {
        const n = t.dims.reduce((a, b) => a * b, 1);
        if (n !== t.data.length) throw new Error(`tensor ${t.name}: ${t.data.length} values for dims ${t.dims}`);
        head.str(t.name);
        head.u32(t.dims.length);
        for (const d of t.dims) head.u64(d);
        head.u32(t.type);
        head.u64(offset);
        offsets.push(offset);
        offset += n * (t.type === GgmlType.F32 ? 4 : 2);
        offset = Math.ceil(offset / ALIGNMENT) * ALIGNMENT;
    }
    head.pad();
    const fd = openSync(path, "w");
    try {
        writeSync(fd, head.buffer());
        if (headerOnly) return;
        let written = 0;
        tensors.forEach((t, i) => {
            if (offsets[i] > written) writeSync(fd, Buffer.alloc(offsets[i] - written));
            const bytes = tensorBytes(t);
            writeSync(fd, bytes);
            written = offsets[i] + bytes.length;
        });
        if (offset > written) writeSync(fd, Buffer.alloc(offset - written));
    } finally {
        closeSync(fd);
    }
}

// The test tooling's GGUF files (v3): metadata, F32/F16 tensors, 32-byte alignment, encoded by the converter's
// server/src/convert/gguf.ts.
import { closeSync, openSync, writeSync } from "node:fs";
import { alignUp, encodeGgufHeader, GGUF_DEFAULT_ALIGNMENT, type GgufKv, toHalf } from "../../server/src/convert/gguf";

export { toHalf };

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

/** The test tools' metadata in the converter's GGUF encoding (server/src/convert/gguf.ts), the one encoder. */
function toKvs(metadata: Record<string, GgufValue>): GgufKv[] {
    return Object.entries(metadata).map(([key, v]): GgufKv => {
        switch (v.type) {
            case "string[]":
                return { key, value: { type: "array", itemType: "string", value: v.value } };
            case "i32[]":
                return { key, value: { type: "array", itemType: "i32", value: Array.from(v.value) } };
            default:
                return { key, value: v };
        }
    });
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
    const fd = openSync(path, "w");
    try {
        writeSync(fd, encodeGgufHeader(toKvs(metadata), tensors));
        for (const t of tensors) {
            t.write(fd);
            const pad = alignUp(t.bytes, GGUF_DEFAULT_ALIGNMENT) - t.bytes;
            if (pad) writeSync(fd, Buffer.alloc(pad));
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
    const entries = tensors.map((t) => {
        const n = t.dims.reduce((a, b) => a * b, 1);
        if (n !== t.data.length) throw new Error(`tensor ${t.name}: ${t.data.length} values for dims ${t.dims}`);
        return { name: t.name, dims: t.dims, type: t.type, bytes: n * (t.type === GgmlType.F32 ? 4 : 2) };
    });
    const fd = openSync(path, "w");
    try {
        writeSync(fd, encodeGgufHeader(toKvs(metadata), entries, headerOnly?.tensorCount));
        if (headerOnly) return;
        for (const t of tensors) {
            const bytes = tensorBytes(t);
            writeSync(fd, bytes);
            const pad = alignUp(bytes.length, GGUF_DEFAULT_ALIGNMENT) - bytes.length;
            if (pad) writeSync(fd, Buffer.alloc(pad));
        }
    } finally {
        closeSync(fd);
    }
}

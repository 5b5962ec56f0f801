// Compares two GGUF files the way the converter's differential test needs: every metadata key with its value type,
// value and place, every array item, every tensor's name, shape, type and data bytes. Says the first difference in
// words. (server/src/runtime/ggufHeader.ts reads headers for the runtime and drops the value types this needs.)
import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";

const TYPE_NAMES = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];
const FIXED: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };

export interface TypedKv {
    key: string;
    /** "u32", "string", "array<string>" ... */
    type: string;
    /** Decoded: numbers (f32 read as stored), bigints, booleans, strings, or an array of them. */
    value: unknown;
}

export interface TypedTensor {
    name: string;
    dims: number[];
    type: number;
    /** Absolute offset of its data in the file. */
    offset: number;
}

export interface TypedGguf {
    version: number;
    kvs: TypedKv[];
    tensors: TypedTensor[];
}

/** Parses the header of a (test-sized) GGUF file: it is read whole up to the end of its tensor table. */
export function readTypedGguf(path: string): TypedGguf {
    const b = readFileSync(path);
    let at = 0;
    const u32 = () => {
        at += 4;
        return b.readUInt32LE(at - 4);
    };
    const u64 = () => {
        at += 8;
        return b.readBigUInt64LE(at - 8);
    };
    const str = () => {
        const n = Number(u64());
        at += n;
        return b.toString("utf8", at - n, at);
    };
    const scalar = (t: number): unknown => {
        if (t === 8) return str();
        const size = FIXED[t];
        if (size === undefined) throw new Error(`${path}: value type ${t} at byte ${at}`);
        const v = [
            () => b.readUInt8(at),
            () => b.readInt8(at),
            () => b.readUInt16LE(at),
            () => b.readInt16LE(at),
            () => b.readUInt32LE(at),
            () => b.readInt32LE(at),
            () => b.readFloatLE(at),
            () => b[at] !== 0,
            null,
            null,
            () => b.readBigUInt64LE(at),
            () => b.readBigInt64LE(at),
            () => b.readDoubleLE(at)
        ][t]!();
        at += size;
        return v;
    };
    if (b.toString("latin1", 0, 4) !== "GGUF") throw new Error(`${path} is not a GGUF file`);
    at = 4;
    const version = u32();
    const nTensors = Number(u64());
    const nKv = Number(u64());
    const kvs: TypedKv[] = [];
    for (let i = 0; i < nKv; i++) {
        const key = str();
        const t = u32();
        if (t === 9) {
            const it = u32();
            const n = Number(u64());
            const items: unknown[] = [];
            for (let j = 0; j < n; j++) items.push(scalar(it));
            kvs.push({ key, type: `array<${TYPE_NAMES[it]}>`, value: items });
        } else kvs.push({ key, type: TYPE_NAMES[t], value: scalar(t) });
    }
    const tensors: TypedTensor[] = [];
    for (let i = 0; i < nTensors; i++) {
        const name = str();
        const nd = u32();
        const dims: number[] = [];
        for (let d = 0; d < nd; d++) dims.push(Number(u64()));
        tensors.push({ name, dims, type: u32(), offset: Number(u64()) });
    }
    const alignKv = kvs.find((kv) => kv.key === "general.alignment");
    const alignment = alignKv ? Number(alignKv.value) : 32;
    const dataStart = Math.ceil(at / alignment) * alignment;
    for (const t of tensors) t.offset += dataStart;
    return { version, kvs, tensors };
}

const show = (v: unknown) => {
    const s = typeof v === "string" ? JSON.stringify(v) : String(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};
const same = (x: unknown, y: unknown) => x === y || (typeof x === "number" && typeof y === "number" && Number.isNaN(x) && Number.isNaN(y));

/** The first difference between two GGUF files in words, or null when they are equal in everything compared. */
export async function firstGgufDifference(ours: string, theirs: string): Promise<string | null> {
    const a = readTypedGguf(ours);
    const b = readTypedGguf(theirs);
    if (a.version !== b.version) return `GGUF version ${a.version} vs ${b.version}`;
    for (let i = 0; i < Math.max(a.kvs.length, b.kvs.length); i++) {
        const x = a.kvs[i];
        const y = b.kvs[i];
        if (!x || !y) return x ? `ours has an extra key ${x.key} at place ${i}` : `ours lacks key ${y.key} (place ${i})`;
        if (x.key !== y.key) {
            const elsewhere = b.kvs.findIndex((kv) => kv.key === x.key);
            return `key ${i} is ${x.key} in ours but ${y.key} in the reference${elsewhere >= 0 ? ` (which has ${x.key} at place ${elsewhere})` : " (which lacks it)"}`;
        }
        if (x.type !== y.type) return `${x.key} is ${x.type} in ours but ${y.type} in the reference`;
        if (Array.isArray(x.value) && Array.isArray(y.value)) {
            if (x.value.length !== y.value.length) return `${x.key} has ${x.value.length} items in ours but ${y.value.length} in the reference`;
            const j = x.value.findIndex((v, k) => !same(v, (y.value as unknown[])[k]));
            if (j >= 0) return `${x.key}[${j}] is ${show(x.value[j])} in ours but ${show(y.value[j])} in the reference`;
        } else if (!same(x.value, y.value)) return `${x.key} is ${show(x.value)} in ours but ${show(y.value)} in the reference`;
    }
    if (a.tensors.length !== b.tensors.length) return `ours has ${a.tensors.length} tensors, the reference ${b.tensors.length}`;
    for (const [i, x] of a.tensors.entries()) {
        const y = b.tensors[i];
        if (x.name !== y.name) return `tensor ${i} is ${x.name} in ours but ${y.name} in the reference`;
        if (x.dims.join(",") !== y.dims.join(",")) return `tensor ${x.name} has shape [${x.dims}] in ours but [${y.dims}] in the reference`;
        if (x.type !== y.type) return `tensor ${x.name} has ggml type ${x.type} in ours but ${y.type} in the reference`;
        if (x.offset !== y.offset) return `tensor ${x.name} starts at byte ${x.offset} in ours but ${y.offset} in the reference`;
    }
    // The data: the same offsets, so the files' bytes from the first tensor on must be equal.
    const fa = await open(ours);
    const fb = await open(theirs);
    try {
        const [sa, sb] = [(await fa.stat()).size, (await fb.stat()).size];
        if (sa !== sb) return `ours has ${sa} bytes, the reference ${sb}`;
        const start = a.tensors[0]?.offset ?? sa;
        const chunk = 1 << 20;
        const ba = Buffer.alloc(chunk);
        const bb = Buffer.alloc(chunk);
        for (let pos = start; pos < sa; pos += chunk) {
            const n = Math.min(chunk, sa - pos);
            await fa.read(ba, 0, n, pos);
            await fb.read(bb, 0, n, pos);
            if (ba.compare(bb, 0, n, 0, n) === 0) continue;
            let k = 0;
            while (ba[k] === bb[k]) k++;
            const byte = pos + k;
            const t = [...a.tensors].reverse().find((t) => t.offset <= byte);
            return `byte ${byte} differs (${ba[k]} vs ${bb[k]}), in the data of tensor ${t?.name ?? "?"} at its byte ${byte - (t?.offset ?? 0)}`;
        }
    } finally {
        await fa.close();
        await fb.close();
    }
    return null;
}

// Compares two GGUF files the way the converter's differential test needs: every metadata key with its value type,
// value and place, every array item, every tensor's name, shape, type and data bytes. Says the first difference in
// words. The header is the runtime's reader's (server/src/runtime/ggufHeader.ts).
import { statSync } from "node:fs";
import { open } from "node:fs/promises";
import { type GgufTensorInfo, readGgufHeader } from "../../server/src/runtime/ggufHeader";

export interface TypedKv {
    key: string;
    /** "u32", "string", "array<string>" ... */
    type: string;
    /** Decoded: numbers (f32 read as stored), bigints, booleans, strings, or an array of them. */
    value: unknown;
}

export interface TypedGguf {
    version: number;
    kvs: TypedKv[];
    tensors: GgufTensorInfo[];
}

/** A GGUF's header with each key's value type, in the file's order. */
export async function readTypedGguf(path: string): Promise<TypedGguf> {
    const { version, metadata, types, tensors } = await readGgufHeader(path, statSync(path).size);
    return { version, kvs: [...metadata].map(([key, value]) => ({ key, type: types.get(key)!, value })), tensors };
}

const show = (v: unknown) => {
    const s = typeof v === "string" ? JSON.stringify(v) : String(v);
    return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};
const same = (x: unknown, y: unknown) => x === y || (typeof x === "number" && typeof y === "number" && Number.isNaN(x) && Number.isNaN(y));

/** The first difference between two GGUF files in words, or null when they are equal in everything compared. */
export async function firstGgufDifference(ours: string, theirs: string): Promise<string | null> {
    const a = await readTypedGguf(ours);
    const b = await readTypedGguf(theirs);
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
        if (x.ggmlType !== y.ggmlType) return `tensor ${x.name} has ggml type ${x.ggmlType} in ours but ${y.ggmlType} in the reference`;
        if (x.fileOffset !== y.fileOffset) return `tensor ${x.name} starts at byte ${x.fileOffset} in ours but ${y.fileOffset} in the reference`;
    }
    // The data: the same offsets, so the files' bytes from the first tensor on must be equal.
    const fa = await open(ours);
    const fb = await open(theirs);
    try {
        const [sa, sb] = [(await fa.stat()).size, (await fb.stat()).size];
        if (sa !== sb) return `ours has ${sa} bytes, the reference ${sb}`;
        const start = a.tensors[0]?.fileOffset ?? sa;
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
            const t = [...a.tensors].reverse().find((t) => t.fileOffset <= byte);
            return `byte ${byte} differs (${ba[k]} vs ${bb[k]}), in the data of tensor ${t?.name ?? "?"} at its byte ${byte - (t?.fileOffset ?? 0)}`;
        }
    } finally {
        await fa.close();
        await fb.close();
    }
    return null;
}

// The GPU benchmark's models (scripts/bench-gpu.sh): random Q4_0 weights with Dream-Coder 7B's shapes, as a
// `dream` model (the mask token and tokenizer our runtime needs, as test/tools/test-models.ts writes them) or,
// the same tensors, as an autoregressive `qwen2` model for llama-bench. Speed is all they are for: their output
// is noise. The Q4_0 blocks come from a pool of random blocks written over and over (seconds for 4 GB).
// writeQwen2Twin (--twin-of) copies any dream GGUF as qwen2 with the very same tensor bytes: the runtime
// benchmark's comparison with llama-bench (bench/runtime-bench.ts, --vs-ar) runs its models' twins.
//
//   node out/bench/bench-model.js --arch dream|qwen2 --size 7b|small --out FILE [--template FILE.jinja]
//   node out/bench/bench-model.js --twin-of DREAM.gguf --out FILE
import { randomFillSync } from "node:crypto";
import { closeSync, copyFileSync, existsSync, openSync, readFileSync, renameSync, statSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { buildBpeVocab } from "../test/tools/bpe-vocab";
import { readGgufHeader } from "../server/src/runtime/ggufHeader";
import { type GgufRawTensor, type GgufValue, toHalf, writeGgufRaw } from "../test/tools/gguf-writer";
import { SPECIAL_TOKENS } from "../test/tools/test-models";

export interface Shape {
    layers: number;
    embd: number;
    heads: number;
    headsKv: number;
    ff: number;
    vocab: number;
    context: number;
    ropeBase: number;
}
export const SHAPES: Record<"7b" | "small", Shape> = {
    // Dream-Coder-v0-Instruct-7B (Qwen2.5-Coder-7B's layout)
    "7b": { layers: 28, embd: 3584, heads: 28, headsKv: 4, ff: 18944, vocab: 152064, context: 32768, ropeBase: 1e6 },
    small: { layers: 2, embd: 256, heads: 4, headsKv: 2, ff: 512, vocab: 4096, context: 4096, ropeBase: 1e6 }
};
const Q4_0 = 2,
    F32 = 0;
const BLOCK = 18; // Q4_0: an fp16 scale, then 32 weights as 16 bytes of nibbles

// Pools of random blocks per scale. A weight is (nibble − 8) × d, nibbles uniform: standard deviation ≈ 4.6 d.
// d = 1 / (4.6 √fan-in) keeps every matrix product's output near unit scale, so 28 layers stay finite in fp16.
const pools = new Map<number, Buffer>();
function pool(fanIn: number): Buffer {
    let p = pools.get(fanIn);
    if (!p) {
        p = Buffer.alloc(BLOCK * (1 << 20));
        randomFillSync(p);
        const d = toHalf(1 / (4.6 * Math.sqrt(fanIn)));
        for (let o = 0; o < p.length; o += BLOCK) p.writeUInt16LE(d, o);
        pools.set(fanIn, p);
    }
    return p;
}

function q4(name: string, dims: [number, number], fanIn: number): GgufRawTensor {
    const bytes = (dims[0] / 32) * dims[1] * BLOCK;
    return {
        name,
        dims,
        type: Q4_0,
        bytes,
        write: (fd) => {
            const p = pool(fanIn);
            let start = BLOCK * Math.floor(Math.random() * (p.length / BLOCK)); // another slice for each tensor
            for (let left = bytes; left > 0; ) {
                const n = Math.min(left, p.length - start);
                writeSync(fd, p, start, n);
                left -= n;
                start = 0;
            }
        }
    };
}

function f32(name: string, n: number, value: (i: number) => number): GgufRawTensor {
    return {
        name,
        dims: [n],
        type: F32,
        bytes: 4 * n,
        write: (fd) => {
            writeSync(fd, Buffer.from(Float32Array.from({ length: n }, (_, i) => value(i)).buffer));
        }
    };
}

export function writeBenchModel(path: string, arch: "dream" | "qwen2", s: Shape, template?: string): void {
    const headDim = s.embd / s.heads,
        kv = headDim * s.headsKv;
    const ones = () => 1,
        bias = () => (Math.random() - 0.5) * 0.04;
    const tensors: GgufRawTensor[] = [
        q4("token_embd.weight", [s.embd, s.vocab], 1),
        f32("output_norm.weight", s.embd, ones),
        q4("output.weight", [s.embd, s.vocab], s.embd)
    ];
    for (let l = 0; l < s.layers; l++) {
        const p = `blk.${l}.`;
        tensors.push(
            f32(`${p}attn_norm.weight`, s.embd, ones),
            q4(`${p}attn_q.weight`, [s.embd, s.embd], s.embd),
            q4(`${p}attn_k.weight`, [s.embd, kv], s.embd),
            q4(`${p}attn_v.weight`, [s.embd, kv], s.embd),
            f32(`${p}attn_q.bias`, s.embd, bias),
            f32(`${p}attn_k.bias`, kv, bias),
            f32(`${p}attn_v.bias`, kv, bias),
            q4(`${p}attn_output.weight`, [s.embd, s.embd], s.embd),
            f32(`${p}ffn_norm.weight`, s.embd, ones),
            q4(`${p}ffn_gate.weight`, [s.embd, s.ff], s.embd),
            q4(`${p}ffn_up.weight`, [s.embd, s.ff], s.embd),
            q4(`${p}ffn_down.weight`, [s.ff, s.embd], s.ff)
        );
    }
    const vocabNormal = s.vocab - SPECIAL_TOKENS.length;
    const { tokens, merges } = buildBpeVocab(vocabNormal);
    const id = (t: (typeof SPECIAL_TOKENS)[number]) => vocabNormal + SPECIAL_TOKENS.indexOf(t);
    const meta: Record<string, GgufValue> = {
        "general.architecture": { type: "string", value: arch },
        "general.name": { type: "string", value: `dream-coder GPU benchmark model (${arch}, random Q4_0 weights)` },
        "general.file_type": { type: "u32", value: 2 }, // LLAMA_FTYPE_MOSTLY_Q4_0
        [`${arch}.context_length`]: { type: "u32", value: s.context },
        [`${arch}.embedding_length`]: { type: "u32", value: s.embd },
        [`${arch}.block_count`]: { type: "u32", value: s.layers },
        [`${arch}.feed_forward_length`]: { type: "u32", value: s.ff },
        [`${arch}.attention.head_count`]: { type: "u32", value: s.heads },
        [`${arch}.attention.head_count_kv`]: { type: "u32", value: s.headsKv },
        [`${arch}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-6 },
        [`${arch}.rope.freq_base`]: { type: "f32", value: s.ropeBase },
        [`${arch}.rope.dimension_count`]: { type: "u32", value: headDim },
        "tokenizer.ggml.model": { type: "string", value: "gpt2" },
        "tokenizer.ggml.pre": { type: "string", value: "qwen2" },
        "tokenizer.ggml.tokens": { type: "string[]", value: [...tokens, ...SPECIAL_TOKENS] },
        "tokenizer.ggml.token_type": { type: "i32[]", value: Array.from({ length: s.vocab }, (_, i) => (i < vocabNormal ? 1 : 3)) },
        "tokenizer.ggml.merges": { type: "string[]", value: merges },
        "tokenizer.ggml.bos_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.eos_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.padding_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.add_bos_token": { type: "bool", value: false },
        "tokenizer.ggml.mask_token_id": { type: "u32", value: id("<|mask|>") }
    };
    if (template && existsSync(template)) meta["tokenizer.chat_template"] = { type: "string", value: readFileSync(template, "utf8") };
    const tmp = `${path}.${process.pid}.tmp`;
    writeGgufRaw(tmp, meta, tensors);
    renameSync(tmp, path);
}

/**
 * Writes to `out` the autoregressive twin of the dream GGUF `dream`: the same file with general.architecture and
 * every `dream.*` key renamed to qwen2 (both five letters long, so no offset moves), its tensors the same bytes.
 * llama.cpp runs it as Qwen2 (causal attention, one token at a time), the architecture Dream was trained from.
 */
export async function writeQwen2Twin(dream: string, out: string): Promise<void> {
    const { metadata, types, offsets } = await readGgufHeader(dream, statSync(dream).size).catch((e: Error) => {
        throw new Error(`${dream}: ${e.message}`);
    });
    const arch = metadata.get("general.architecture");
    if (arch !== "dream" || types.get("general.architecture") !== "string") {
        throw new Error(`${dream} is a ${arch ?? "model without an architecture"}, not dream: only a dream model has a qwen2 twin`);
    }
    // Where "dream" is written over with "qwen2": each dream.* key's text, and the architecture's value after its length.
    const renames = [...offsets].filter(([key]) => key.startsWith("dream.")).map(([, at]) => at.key);
    renames.push(offsets.get("general.architecture")!.value + 8);
    const tmp = `${out}.${process.pid}.tmp`;
    copyFileSync(dream, tmp);
    const w = openSync(tmp, "r+");
    for (const at of renames) writeSync(w, "qwen2", at, "latin1");
    closeSync(w);
    renameSync(tmp, out);
}

// The command line, when node runs this file. Not `require.main === module`: scripts/gpu-kit.mjs bundles this module
// into runtime-bench.js too, where that holds for every module, so the bench ran this on its own arguments (writing
// a 7B model over its --out, and failing each cell with the usage) before its own code.
if (basename(process.argv[1] ?? "", ".js") === "bench-model") {
    const arg = (name: string) => {
        const i = process.argv.indexOf(`--${name}`);
        return i >= 0 ? process.argv[i + 1] : undefined;
    };
    const twinOf = arg("twin-of");
    if (twinOf) {
        const out = arg("out");
        if (!out) {
            process.stderr.write("usage: bench-model --twin-of DREAM.gguf --out FILE\n");
            process.exit(2);
        }
        writeQwen2Twin(twinOf, out).then(
            () => process.stdout.write(`${out}: qwen2 twin of ${twinOf}\n`),
            (e: Error) => {
                process.stderr.write(`${e.message}\n`);
                process.exit(1);
            }
        );
    } else {
        const arch = arg("arch") ?? "dream",
            size = arg("size") ?? "7b",
            out = arg("out");
        if ((arch !== "dream" && arch !== "qwen2") || (size !== "7b" && size !== "small") || !out) {
            process.stderr.write(
                "usage: bench-model --arch dream|qwen2 --size 7b|small --out FILE [--template FILE.jinja] | --twin-of DREAM.gguf --out FILE\n"
            );
            process.exit(2);
        }
        const t0 = performance.now();
        writeBenchModel(out, arch, SHAPES[size], arg("template"));
        process.stdout.write(`${out}: ${arch}, ${size}, ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
    }
}

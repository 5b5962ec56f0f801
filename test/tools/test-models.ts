// Seeded, deterministic GGUF models with random weights for tests and benchmarks: a `dream` variant
// (Qwen2 layout, shifted logits, Qwen2.5-Instruct chat template) and a `llada` variant (LLaMA layout,
// unshifted), plus the broken files the model checks must refuse.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildBpeVocab } from "./bpe-vocab";
import { GgmlType, type GgufTensor, type GgufValue, writeGguf } from "./gguf-writer";

export const repoRoot = join(__dirname, "..", "..", "..");
const modelDir = join(repoRoot, ".cache", "models");
const QWEN_TEMPLATE = join(repoRoot, "native", "build", "llama.cpp", "models", "templates", "Qwen-Qwen2.5-7B-Instruct.jinja");
const GENERATOR_VERSION = 1;

export const SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|mask|>"] as const;

export interface TestModelOptions {
    arch: "dream" | "llada" | "qwen2"; // qwen2: an autoregressive model the checks must refuse
    vocab?: number; // total, special tokens included
    embd?: number;
    layers?: number;
    heads?: number;
    headsKv?: number;
    ff?: number;
    context?: number;
    seed?: number;
    type?: "f32" | "f16";
    maskToken?: boolean; // false: leave out tokenizer.ggml.mask_token_id
    shiftLogits?: boolean; // written only when set (Dream's converter writes nothing)
    maskRowScale?: number; // output row of <|mask|> times this: > 1 makes the mask a likely prediction
    /** Output rows of these token ids times their scale: > 1 makes the token a likely prediction. */
    rowScales?: Record<number, number>;
    /** Write the model under another architecture name (general.architecture and the keys' prefix). */
    relabel?: string;
    /** Metadata keys (full names, e.g. "dream.block_count") written over the generated ones. */
    overrides?: Record<string, GgufValue>;
    /** Write only the header, claiming this many tensors (a decimal string: it may pass 2^53). */
    headerOnlyTensorCount?: string;
}

function resolved(
    o: TestModelOptions
): Required<Omit<TestModelOptions, "shiftLogits" | "relabel" | "overrides" | "headerOnlyTensorCount" | "rowScales">> &
    Pick<TestModelOptions, "shiftLogits" | "relabel" | "overrides" | "headerOnlyTensorCount" | "rowScales"> {
    return {
        vocab: 4096,
        embd: 64,
        layers: 2,
        heads: 4,
        headsKv: 2,
        ff: 128,
        context: 4096,
        seed: 1,
        type: "f32",
        maskToken: true,
        maskRowScale: 1,
        shiftLogits: o.arch === "llada" ? false : undefined,
        ...o
    };
}

/** mulberry32 + Box-Muller: the same numbers on every machine. */
function normalSource(seed: number): () => number {
    let s = seed >>> 0;
    const uniform = () => {
        s = (s + 0x6d2b79f5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

/** Writes the model to `path`. */
export function writeTestModel(path: string, options: TestModelOptions): void {
    const o = resolved(options);
    const headDim = o.embd / o.heads;
    const normal = normalSource(o.seed);
    const type = o.type === "f16" ? GgmlType.F16 : GgmlType.F32;
    const tensors: GgufTensor[] = [];
    const tensor = (name: string, dims: number[], scale: number | "ones") => {
        const n = dims.reduce((a, b) => a * b, 1);
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = scale === "ones" ? 1 : normal() * scale;
        // ggml keeps 1-D tensors (norms, biases) in F32
        tensors.push({ name, dims, type: dims.length === 1 ? GgmlType.F32 : type, data });
    };
    const vocabNormal = o.vocab - SPECIAL_TOKENS.length;
    tensor("token_embd.weight", [o.embd, o.vocab], 1);
    tensor("output_norm.weight", [o.embd], "ones");
    tensor("output.weight", [o.embd, o.vocab], 1 / Math.sqrt(o.embd));
    const scales: [number, number][] = Object.entries(o.rowScales ?? {}).map(([t, scale]) => [Number(t), scale]);
    if (o.maskRowScale !== 1) scales.push([vocabNormal + SPECIAL_TOKENS.indexOf("<|mask|>"), o.maskRowScale]);
    for (const [token, scale] of scales) {
        const out = tensors[tensors.length - 1].data;
        for (let i = token * o.embd; i < (token + 1) * o.embd; i++) out[i] *= scale;
    }
    const kv = headDim * o.headsKv;
    for (let l = 0; l < o.layers; l++) {
        const p = `blk.${l}.`;
        tensor(`${p}attn_norm.weight`, [o.embd], "ones");
        tensor(`${p}attn_q.weight`, [o.embd, o.embd], 1 / Math.sqrt(o.embd));
        tensor(`${p}attn_k.weight`, [o.embd, kv], 1 / Math.sqrt(o.embd));
        tensor(`${p}attn_v.weight`, [o.embd, kv], 1 / Math.sqrt(o.embd));
        if (o.arch !== "llada") {
            tensor(`${p}attn_q.bias`, [o.embd], 0.02);
            tensor(`${p}attn_k.bias`, [kv], 0.02);
            tensor(`${p}attn_v.bias`, [kv], 0.02);
        }
        tensor(`${p}attn_output.weight`, [o.embd, o.embd], 1 / Math.sqrt(o.embd));
        tensor(`${p}ffn_norm.weight`, [o.embd], "ones");
        tensor(`${p}ffn_gate.weight`, [o.embd, o.ff], 1 / Math.sqrt(o.embd));
        tensor(`${p}ffn_up.weight`, [o.embd, o.ff], 1 / Math.sqrt(o.embd));
        tensor(`${p}ffn_down.weight`, [o.ff, o.embd], 1 / Math.sqrt(o.ff));
    }

    const { tokens, merges } = buildBpeVocab(vocabNormal);
    const allTokens = [...tokens, ...SPECIAL_TOKENS];
    const tokenTypes = allTokens.map((_, i) => (i < vocabNormal ? 1 : 3)); // 1 normal, 3 control
    const id = (t: (typeof SPECIAL_TOKENS)[number]) => vocabNormal + SPECIAL_TOKENS.indexOf(t);
    const a = o.relabel ?? o.arch;
    const meta: Record<string, GgufValue> = {
        "general.architecture": { type: "string", value: a },
        "general.name": { type: "string", value: `dream-coder test model (${a}, seed ${o.seed}, random weights)` },
        [`${a}.context_length`]: { type: "u32", value: o.context },
        [`${a}.embedding_length`]: { type: "u32", value: o.embd },
        [`${a}.block_count`]: { type: "u32", value: o.layers },
        [`${a}.feed_forward_length`]: { type: "u32", value: o.ff },
        [`${a}.attention.head_count`]: { type: "u32", value: o.heads },
        [`${a}.attention.head_count_kv`]: { type: "u32", value: o.headsKv },
        [`${a}.attention.layer_norm_rms_epsilon`]: { type: "f32", value: 1e-6 },
        [`${a}.rope.freq_base`]: { type: "f32", value: 10000 },
        [`${a}.rope.dimension_count`]: { type: "u32", value: headDim },
        "tokenizer.ggml.model": { type: "string", value: "gpt2" },
        "tokenizer.ggml.pre": { type: "string", value: "qwen2" },
        "tokenizer.ggml.tokens": { type: "string[]", value: allTokens },
        "tokenizer.ggml.token_type": { type: "i32[]", value: tokenTypes },
        "tokenizer.ggml.merges": { type: "string[]", value: merges },
        "tokenizer.ggml.bos_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.eos_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.padding_token_id": { type: "u32", value: id("<|endoftext|>") },
        "tokenizer.ggml.add_bos_token": { type: "bool", value: false }
    };
    if (o.maskToken) meta["tokenizer.ggml.mask_token_id"] = { type: "u32", value: id("<|mask|>") };
    if (o.shiftLogits !== undefined) meta["diffusion.shift_logits"] = { type: "bool", value: o.shiftLogits };
    Object.assign(meta, o.overrides);
    if (o.arch === "dream") {
        if (!existsSync(QWEN_TEMPLATE)) throw new Error(`${QWEN_TEMPLATE} is missing: build the native addon first`);
        meta["tokenizer.chat_template"] = { type: "string", value: readFileSync(QWEN_TEMPLATE, "utf8") };
    }
    writeGguf(path, meta, tensors, o.headerOnlyTensorCount === undefined ? undefined : { tensorCount: BigInt(o.headerOnlyTensorCount) });
}

/** The model for these options, generated once into .cache/models and reused while the generator is unchanged. */
export function testModel(options: TestModelOptions): string {
    const o = resolved(options);
    const key = createHash("sha256").update(JSON.stringify({ o, GENERATOR_VERSION })).digest("hex").slice(0, 12);
    const path = join(modelDir, `${o.arch}-v${o.vocab}-e${o.embd}-l${o.layers}-${key}.gguf`);
    if (!existsSync(path)) {
        mkdirSync(modelDir, { recursive: true });
        const tmp = `${path}.${process.pid}.tmp`;
        writeTestModel(tmp, o);
        renameSync(tmp, path);
    }
    return path;
}

/** The quantization types users download (the catalog's files are Q4_K_M) and the two plain block formats. */
export const QUANT_TYPES = ["Q8_0", "Q4_0", "Q4_K_M"] as const;
export type QuantType = (typeof QUANT_TYPES)[number];
const QUANTIZE = join(repoRoot, "native", "build", "cmake", "bin", "llama-quantize");

/** Dimensions that every type quantizes as itself: K-quants need rows of a multiple of 256 values. */
export const QUANTIZABLE: TestModelOptions = { arch: "dream", vocab: 4096, embd: 256, layers: 2, heads: 4, headsKv: 2, ff: 512, type: "f16", seed: 5 };

/** The model for these options quantized to `type` by llama.cpp's own llama-quantize (built with the addon), cached. */
export function quantizedTestModel(type: QuantType, options: TestModelOptions = QUANTIZABLE): string {
    const source = testModel(options);
    const path = source.replace(/\.gguf$/, `-${type}.gguf`);
    if (!existsSync(path)) {
        if (!existsSync(QUANTIZE)) throw new Error(`${QUANTIZE} is missing: build the native addon first`);
        const tmp = `${path}.${process.pid}.tmp`;
        const r = spawnSync(QUANTIZE, [source, tmp, type, "1"], { encoding: "utf8" });
        if (r.status !== 0) throw new Error(`llama-quantize ${type} failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
        renameSync(tmp, path);
    }
    return path;
}

/** The demo's stand-in (docs/building.md, "The main job"): larger than the test models, so its noise is more varied. */
export function standInModel(arch: "dream" | "llada" = "dream"): string {
    return testModel({ arch, embd: 256, layers: 4, heads: 4, headsKv: 4, ff: 1024, type: "f16", seed: 7 });
}

/** A file that is not GGUF at all. */
export function notGgufFile(): string {
    mkdirSync(modelDir, { recursive: true });
    const path = join(modelDir, "not-a-model.gguf");
    writeFileSync(path, "def main():\n    print('this is python, not a model')\n");
    return path;
}

/** A real model cut short: its header parses, its tensor data ends early. */
export function truncatedFile(): string {
    const full = readFileSync(testModel({ arch: "dream" }));
    const path = join(modelDir, "truncated.gguf");
    writeFileSync(path, full.subarray(0, Math.floor(full.length * 0.6)));
    return path;
}

/** A GGUF whose header stops in the middle of its metadata. */
export function brokenHeaderFile(): string {
    const full = readFileSync(testModel({ arch: "dream" }));
    const path = join(modelDir, "broken-header.gguf");
    writeFileSync(path, full.subarray(0, 200));
    return path;
}

/** A file that is only the four bytes of the GGUF magic. */
export function magicOnlyFile(): string {
    mkdirSync(modelDir, { recursive: true });
    const path = join(modelDir, "magic-only.gguf");
    writeFileSync(path, "GGUF");
    return path;
}

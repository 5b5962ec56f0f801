// Checks a model file before llama.cpp sees it, so that bad input gets a clear message instead of an abort,
// and reads what the decoder needs from its GGUF metadata (ggufHeader.ts).
import { stat } from "node:fs/promises";
import { GgufHeaderError, readGgufHeader, startsWithGgufMagic, type GgufHeader, type GgufMetaValue } from "./ggufHeader";
import type { NativeAddon } from "./native";

/** Architectures llama.cpp v0.4.0's llama_model_is_diffusion() accepts (llm_arch_is_diffusion in src/llama-arch.cpp). */
export const DIFFUSION_ARCHITECTURES = ["dream", "llada", "llada-moe", "rnd1"] as const;

export type ModelFileProblem = "missing" | "not-gguf" | "corrupt" | "truncated" | "autoregressive" | "bad-hyperparameters" | "no-mask-token";

export class ModelFileError extends Error {
    constructor(
        readonly path: string,
        readonly problem: ModelFileProblem,
        detail: string
    ) {
        super(`${path}: ${detail}`);
        this.name = "ModelFileError";
    }
}

export interface ModelFileInfo {
    path: string;
    name?: string;
    architecture: string;
    /** Dream: position p is predicted by row p - 1. Missing key means true, as in llama.cpp. */
    shiftLogits: boolean;
    maskToken: number;
    eosToken?: number;
    padToken?: number;
    contextLength?: number;
    chatTemplate?: string;
    fileBytes: number;
}

const asNumber = (v: unknown) => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined);

/** A stat or read failure as the user should read it. */
function unreadable(path: string, e: NodeJS.ErrnoException): ModelFileError {
    switch (e.code) {
        case "ENOENT":
            return new ModelFileError(path, "missing", "model file not found");
        case "ELOOP":
            return new ModelFileError(path, "missing", "the path is a loop of symbolic links");
        case "EACCES":
        case "EPERM":
            return new ModelFileError(path, "missing", "permission denied: the file, or a folder on its path, cannot be read");
        case "ENOTDIR":
            return new ModelFileError(path, "missing", "model file not found (a part of the path is not a folder)");
        default:
            return new ModelFileError(path, "corrupt", `the file cannot be read (${e.code ?? e.message})`);
    }
}

/** The checks that read no more than the file's first four bytes: the path is a readable file that starts with the
 * GGUF magic. Cheap enough to run as soon as the model setting changes (the server does, to show a bad path in the
 * status at once); inspectModelFile runs them first. Returns the file's size. */
export async function checkModelFileStart(path: string): Promise<number> {
    try {
        const st = await stat(path);
        if (st.isDirectory()) throw new ModelFileError(path, "missing", "is a folder, not a model file");
        if (!st.isFile()) throw new ModelFileError(path, "missing", "is not a file");
        if (!(await startsWithGgufMagic(path, st.size))) throw new ModelFileError(path, "not-gguf", "not a GGUF model file");
        return st.size;
    } catch (e) {
        if (e instanceof ModelFileError) throw e;
        throw unreadable(path, e as NodeJS.ErrnoException);
    }
}

export async function inspectModelFile(path: string, addon: NativeAddon): Promise<ModelFileInfo> {
    const size = await checkModelFileStart(path);

    let header: GgufHeader;
    try {
        header = await readGgufHeader(path, size);
    } catch (e) {
        if (e instanceof GgufHeaderError) {
            if (e.notGguf) throw new ModelFileError(path, "not-gguf", `not a GGUF model file (${e.message})`);
            throw new ModelFileError(path, "corrupt", `the GGUF header cannot be read, the file is truncated or corrupt: ${e.message}`);
        }
        throw unreadable(path, e as NodeJS.ErrnoException);
    }

    // Tensor data must all lie inside the file.
    let end = 0;
    for (const t of header.tensors) {
        const bytes = addon.tensorBytes(
            t.ggmlType,
            t.dims[0],
            t.dims.slice(1).reduce((a, b) => a * b, 1)
        );
        if (bytes === null) {
            throw new ModelFileError(path, "corrupt", `tensor ${t.name} has a type (${t.ggmlType}) or shape this llama.cpp cannot read`);
        }
        end = Math.max(end, t.fileOffset + bytes);
    }
    if (end > size) {
        throw new ModelFileError(path, "truncated", `the file is truncated: ${size} bytes, but its tensors need ${end} (an interrupted download?)`);
    }

    const meta = header.metadata;
    const architecture = meta.get("general.architecture");
    if (typeof architecture !== "string") {
        throw new ModelFileError(path, "corrupt", "the file names no architecture (general.architecture)");
    }
    if (!(DIFFUSION_ARCHITECTURES as readonly string[]).includes(architecture)) {
        throw new ModelFileError(
            path,
            "autoregressive",
            `this is an autoregressive model (architecture '${architecture}'); Dream-Coder needs a diffusion model ` +
                `(${DIFFUSION_ARCHITECTURES.join(", ")}), such as Dream-Coder-v0-Instruct-7B`
        );
    }
    const hyperparameterProblem = checkHyperparameters(meta, architecture);
    if (hyperparameterProblem) throw new ModelFileError(path, "bad-hyperparameters", hyperparameterProblem);

    const tokens = meta.get("tokenizer.ggml.tokens");
    const vocabulary = Array.isArray(tokens) ? tokens.length : 0;
    if (vocabulary === 0) throw new ModelFileError(path, "corrupt", "the file has no vocabulary (tokenizer.ggml.tokens)");
    const maskToken = asNumber(meta.get("tokenizer.ggml.mask_token_id"));
    if (maskToken === undefined) {
        throw new ModelFileError(path, "no-mask-token", "the model has no mask token (tokenizer.ggml.mask_token_id), which diffusion decoding needs");
    }
    if (!Number.isInteger(maskToken) || maskToken < 0 || maskToken >= vocabulary) {
        throw new ModelFileError(
            path,
            "no-mask-token",
            `the mask token id (tokenizer.ggml.mask_token_id = ${maskToken}) is outside the vocabulary of ${vocabulary} tokens`
        );
    }
    const shift = meta.get("diffusion.shift_logits");
    const template = meta.get("tokenizer.chat_template");
    const name = meta.get("general.name");
    return {
        path,
        name: typeof name === "string" ? name : undefined,
        architecture,
        shiftLogits: typeof shift === "boolean" ? shift : true,
        maskToken,
        eosToken: asNumber(meta.get("tokenizer.ggml.eos_token_id")),
        padToken: asNumber(meta.get("tokenizer.ggml.padding_token_id")),
        contextLength: asNumber(meta.get(`${architecture}.context_length`)),
        chatTemplate: typeof template === "string" ? template : undefined,
        fileBytes: size
    };
}

// llama.cpp v0.4.0's limits (src/llama-hparams.h) and rope scaling names (src/llama-model.cpp).
const LLAMA_MAX_LAYERS = 512;
const LLAMA_MAX_EXPERTS = 1024;
const ROPE_SCALING_TYPES = ["none", "linear", "yarn", "longrope"];

/**
 * The hyperparameters llama.cpp asserts on (GGML_ASSERT aborts the whole process) while loading or running the
 * diffusion architectures — llama_model_base::load_hparams and the graphs in src/models/{dream,llada,llada-moe,
 * rnd1}.cpp — checked here first. Returns a sentence naming the field, or undefined when all are sound.
 */
function checkHyperparameters(meta: Map<string, GgufMetaValue>, arch: string): string | undefined {
    const key = (k: string) => `${arch}.${k}`;
    class Unusable extends Error {}
    const fail = (why: string): never => {
        throw new Unusable(why);
    };
    /** Whole numbers ≥ 0: one, or one per layer; `fallback` when the key is absent (undefined: required). */
    const values = (k: string, fallback?: number[]): number[] => {
        const v = meta.get(key(k));
        if (v === undefined) return fallback ?? fail(`${key(k)} is missing`);
        const ns = (Array.isArray(v) ? v : [v]).map(asNumber);
        if (ns.length === 0 || ns.some((n) => n === undefined || !Number.isInteger(n) || n < 0)) {
            fail(`${key(k)} is ${Array.isArray(v) ? "an array" : String(v)}, not a whole number`);
        }
        return ns as number[];
    };
    const value = (k: string, fallback?: number) => values(k, fallback === undefined ? undefined : [fallback])[0];
    try {
        if (value("context_length") < 1) fail(`${key("context_length")} is 0`);
        const embd = value("embedding_length");
        if (embd < 1) fail(`${key("embedding_length")} is 0`);
        const layers = value("block_count");
        if (layers < 1 || layers > LLAMA_MAX_LAYERS) fail(`${key("block_count")} is ${layers}; llama.cpp needs 1 to ${LLAMA_MAX_LAYERS} layers`);
        const nextn = value("nextn_predict_layers", 0);
        if (nextn > layers) fail(`${key("nextn_predict_layers")} (${nextn}) is more than ${key("block_count")} (${layers})`);

        const experts = value("expert_count", 0);
        const used = Math.max(...values("expert_used_count", [0]));
        const groups = value("expert_group_count", 0);
        const groupUsed = value("expert_group_used_count", 0);
        if (experts > LLAMA_MAX_EXPERTS) fail(`${key("expert_count")} is ${experts}, more than llama.cpp's ${LLAMA_MAX_EXPERTS}`);
        if (used > experts) fail(`${key("expert_used_count")} (${used}) is more than ${key("expert_count")} (${experts})`);
        if ((arch === "llada-moe" || arch === "rnd1") && (experts === 0 || used === 0)) {
            fail(`a ${arch} model needs ${key("expert_count")} and ${key("expert_used_count")} above 0 (they are ${experts} and ${used})`);
        }
        if (experts > 0 && used === 0) fail(`${key("expert_used_count")} is 0 while ${key("expert_count")} is ${experts}`);
        if (experts > 0 && groups >= experts) fail(`${key("expert_group_count")} (${groups}) is not less than ${key("expert_count")} (${experts})`);
        if (experts === 0 && groups !== 0) fail(`${key("expert_group_count")} is ${groups} in a model without experts`);
        if (groups > 1 && (experts % groups !== 0 || groupUsed === 0 || groupUsed >= groups)) {
            fail(
                `${key("expert_group_count")} (${groups}) and ${key("expert_group_used_count")} (${groupUsed}) do not fit ${key("expert_count")} (${experts})`
            );
        }

        const heads = values("attention.head_count");
        const headsKv = values("attention.head_count_kv", heads);
        for (const [k, vs] of [
            ["attention.head_count", heads],
            ["attention.head_count_kv", headsKv]
        ] as const) {
            if (vs.length !== 1 && vs.length !== layers) fail(`${key(k)} has ${vs.length} entries for ${layers} layers`);
        }
        heads.forEach((h, l) => {
            const kv = headsKv[headsKv.length === 1 ? 0 : l];
            if (h < 1) fail(`${key("attention.head_count")} is 0`);
            if (kv < 1 || h % kv !== 0) fail(`${key("attention.head_count")} (${h}) is not a multiple of ${key("attention.head_count_kv")} (${kv})`);
        });
        const headSize = value("attention.key_length", Math.floor(embd / heads[0]));
        if (headSize < 1) fail(`${key("embedding_length")} (${embd}) is smaller than ${key("attention.head_count")} (${heads[0]})`);
        const valueHeadSize = value("attention.value_length", Math.floor(embd / heads[0]));
        if (valueHeadSize !== headSize) fail(`the key and value head sizes differ (${headSize} and ${valueHeadSize})`);
        const rotary = value("rope.dimension_count", headSize);
        if (rotary !== headSize) fail(`${key("rope.dimension_count")} (${rotary}) is not the head size (${headSize})`);
        const scaling = meta.get(key("rope.scaling.type"));
        if (scaling !== undefined && !ROPE_SCALING_TYPES.includes(String(scaling))) {
            fail(`${key("rope.scaling.type")} is "${String(scaling)}", not one of ${ROPE_SCALING_TYPES.join(", ")}`);
        }
        return undefined;
    } catch (e) {
        if (e instanceof Unusable) return `the model's hyperparameters are unusable: ${e.message}`;
        throw e;
    }
}

// Checks a model file before llama.cpp sees it, so that bad input gets a clear message instead of an abort,
// and reads what the decoder needs from its GGUF metadata (through node-llama-cpp's GGUF reader).
import { open, stat } from "node:fs/promises";
import type { NativeAddon } from "./native";

/** Architectures llama.cpp v0.4.0's llama_model_is_diffusion() accepts (llm_arch_is_diffusion in src/llama-arch.cpp). */
export const DIFFUSION_ARCHITECTURES = ["dream", "llada", "llada-moe", "rnd1"] as const;

export type ModelFileProblem = "missing" | "not-gguf" | "corrupt" | "truncated" | "autoregressive" | "no-mask-token";

export class ModelFileError extends Error {
    constructor(readonly path: string, readonly problem: ModelFileProblem, detail: string) {
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

type Metadata = Record<string, unknown>;

function lookup(meta: Metadata, key: string): unknown {
    let cur: unknown = meta;
    for (const part of key.split(".")) {
        if (cur === null || typeof cur !== "object") return undefined;
        cur = (cur as Metadata)[part];
    }
    return cur;
}

const asNumber = (v: unknown) => (typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined);

export async function inspectModelFile(path: string, addon: NativeAddon): Promise<ModelFileInfo> {
    let size: number;
    try {
        const st = await stat(path);
        if (!st.isFile()) throw new ModelFileError(path, "missing", "is not a file");
        size = st.size;
    } catch (e) {
        if (e instanceof ModelFileError) throw e;
        throw new ModelFileError(path, "missing", "model file not found");
    }

    const head = Buffer.alloc(4);
    const fh = await open(path, "r");
    try {
        await fh.read(head, 0, 4, 0);
    } finally {
        await fh.close();
    }
    if (head.toString("latin1") !== "GGUF") {
        throw new ModelFileError(path, "not-gguf", "not a GGUF model file (it does not start with the GGUF magic)");
    }

    const { readGgufFileInfo } = await import("node-llama-cpp");
    let info: Awaited<ReturnType<typeof readGgufFileInfo>>;
    try {
        info = await readGgufFileInfo(path, { logWarnings: false, spliceSplitFiles: false });
    } catch (e) {
        throw new ModelFileError(path, "corrupt", `the GGUF header cannot be read, the file is truncated or corrupt (${(e as Error).message})`);
    }

    // Tensor data must all lie inside the file.
    let end = 0;
    for (const t of info.tensorInfo ?? []) {
        const dims = t.dimensions.map(Number);
        const bytes = addon.tensorBytes(t.ggmlType, dims[0] ?? 1, dims.slice(1).reduce((a, b) => a * b, 1));
        if (bytes === null) {
            throw new ModelFileError(path, "corrupt", `tensor ${t.name} has a type (${t.ggmlType}) or shape this llama.cpp cannot read`);
        }
        end = Math.max(end, Number(t.fileOffset) + bytes);
    }
    if (end > size) {
        throw new ModelFileError(path, "truncated", `the file is truncated: ${size} bytes, but its tensors need ${end} (an interrupted download?)`);
    }

    const meta = info.metadata as unknown as Metadata;
    const architecture = lookup(meta, "general.architecture");
    if (typeof architecture !== "string") {
        throw new ModelFileError(path, "corrupt", "the file names no architecture (general.architecture)");
    }
    if (!(DIFFUSION_ARCHITECTURES as readonly string[]).includes(architecture)) {
        throw new ModelFileError(path, "autoregressive",
            `this is an autoregressive model (architecture '${architecture}'); Dream-Coder needs a diffusion model ` +
            `(${DIFFUSION_ARCHITECTURES.join(", ")}), such as Dream-Coder-v0-Instruct-7B`);
    }
    const maskToken = asNumber(lookup(meta, "tokenizer.ggml.mask_token_id"));
    if (maskToken === undefined) {
        throw new ModelFileError(path, "no-mask-token", "the model has no mask token (tokenizer.ggml.mask_token_id), which diffusion decoding needs");
    }
    const shift = lookup(meta, "diffusion.shift_logits");
    const template = lookup(meta, "tokenizer.chat_template");
    const name = lookup(meta, "general.name");
    return {
        path,
        name: typeof name === "string" ? name : undefined,
        architecture,
        shiftLogits: typeof shift === "boolean" ? shift : true,
        maskToken,
        eosToken: asNumber(lookup(meta, "tokenizer.ggml.eos_token_id")),
        padToken: asNumber(lookup(meta, "tokenizer.ggml.padding_token_id")),
        contextLength: asNumber(lookup(meta, `${architecture}.context_length`)),
        chatTemplate: typeof template === "string" ? template : undefined,
        fileBytes: size
    };
}

// A Hugging Face checkpoint folder (config.json, safetensors, tokenizer files, model card) to the GGUF that llama.cpp's
// convert_hf_to_gguf.py writes for it, without Python: the same metadata keys, values, types and order, the same
// tokenizer arrays (vocab.ts), tensor names, shapes, types and bytes. The header goes first (every size follows from
// the shapes), then the tensors stream through in fixed-size chunks, so memory stays bounded whatever the model's size.
import { type FileHandle, open, readFile, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import {
    architectureParameters,
    blockCount,
    ggufTensorName,
    HF_ARCHITECTURES,
    isSkippedTensor,
    KvList,
    permuteHeads,
    type Architecture
} from "./architectures";
import { convertElements, GGML_TYPE_SIZE, GgmlType, type GgufKv, type GgufTensorEntry, GgufStreamWriter } from "./gguf";
import { CheckpointError } from "./checkpointError";
import { generalMetadata } from "./metadata";
import { type CheckpointTensor, checkpointTensors, readChunks, readRange } from "./safetensors";
import { vocabMetadata } from "./vocab";

/** As convert_hf_to_gguf.py's --outtype; "auto": the checkpoint's own 16-bit type (BF16 or F16), F16 for an F32 one. */
export type ConvertOutType = "auto" | "f32" | "f16" | "bf16";

export interface ConvertProgress {
    tensorsDone: number;
    tensorsTotal: number;
    bytesDone: number;
    bytesTotal: number;
}

/** Bytes read and converted at a time: the bound on the converter's memory for tensor data. */
const CHUNK_BYTES = 4 << 20;

/** The checkpoint classes this converter supports, as a user knows them. */
const SUPPORTED = "DreamModel (Dream, Dream-Coder, DiffuCoder, DreamOn) and LLaDAModelLM (LLaDA)";

/**
 * Reads config.json's object and says which GGUF architecture it converts to, or throws CheckpointError naming the
 * architecture found and the ones supported. Used before downloading gigabytes.
 */
export function checkpointArchitecture(config: unknown): Architecture {
    const c = typeof config === "object" && config !== null ? (config as Record<string, unknown>) : {};
    // get_model_architecture: architectures[0], or the text model's in a multimodal config.
    const textConfig = typeof c.text_config === "object" && c.text_config !== null ? (c.text_config as Record<string, unknown>) : {};
    const list = Array.isArray(textConfig.architectures) ? textConfig.architectures : c.architectures;
    const name = Array.isArray(list) && typeof list[0] === "string" ? list[0] : undefined;
    if (name === undefined) throw new CheckpointError(`the checkpoint's config.json names no architecture: this converter supports ${SUPPORTED}`);
    if (name === "LLaDAMoEModel" || name === "LLaDAMoEModelLM") {
        throw new CheckpointError(`the checkpoint is ${name} (LLaDA-MoE), which this converter does not support yet: it supports ${SUPPORTED}`);
    }
    const arch = HF_ARCHITECTURES[name];
    if (!arch) throw new CheckpointError(`the checkpoint's architecture is ${name}, which this converter does not support: it supports ${SUPPORTED}`);
    return arch;
}

/** A checkpoint folder's config.json as an object, or a CheckpointError saying it is missing or damaged. */
export async function readCheckpointConfig(dir: string): Promise<Record<string, unknown>> {
    const file = join(dir, "config.json");
    let text: string;
    try {
        text = await readFile(file, "utf8");
    } catch {
        throw new CheckpointError(
            `${dir} has no config.json: give the folder of a Hugging Face checkpoint, which holds config.json, the safetensors files and the tokenizer`
        );
    }
    try {
        const config = JSON.parse(text);
        if (typeof config === "object" && config !== null && !Array.isArray(config)) return config;
    } catch {}
    throw new CheckpointError(`${file} is not a JSON object: download the checkpoint again`);
}

/** One tensor of the GGUF: its entry in the table and where its data comes from. */
interface PlannedTensor extends GgufTensorEntry {
    type: GgmlType;
    source: CheckpointTensor;
    /** LLaDA q/k: un-permute by this many heads. */
    permuteHeads?: number;
}

const FILE_TYPE: Record<Exclude<ConvertOutType, "auto">, number> = { f32: 0, f16: 1, bf16: 32 }; // LlamaFileType
const TENSOR_TYPE: Record<Exclude<ConvertOutType, "auto">, GgmlType> = { f32: GgmlType.F32, f16: GgmlType.F16, bf16: GgmlType.BF16 };

/** --outtype auto: the dtype of the first tensor of two or more dimensions that is BF16 or F16, else F16. */
function guessOutType(tensors: CheckpointTensor[]): Exclude<ConvertOutType, "auto"> {
    for (const t of tensors) {
        if (t.shape.length < 2) continue;
        if (t.dtype === "BF16") return "bf16";
        if (t.dtype === "F16") return "f16";
    }
    return "f16";
}

/** prepare_tensors: each tensor's GGUF name, shape (reversed) and type. */
function planTensors(
    arch: Architecture,
    tensors: CheckpointTensor[],
    hparams: Record<string, unknown>,
    outType: Exclude<ConvertOutType, "auto">
): PlannedTensor[] {
    const blocks = blockCount(hparams);
    const planned: PlannedTensor[] = [];
    const names = new Set<string>();
    for (const source of tensors) {
        if (isSkippedTensor(source.name)) continue;
        const name = ggufTensorName(arch, source.name, blocks);
        if (names.has(name)) throw new CheckpointError(`the checkpoint has two tensors that are both ${name}: it is damaged`);
        names.add(name);
        // 1-D tensors and norms stay F32, as does anything that is not a weight matrix (biases).
        const type = source.shape.length <= 1 || name.endsWith("_norm.weight") || !name.endsWith(".weight") ? GgmlType.F32 : TENSOR_TYPE[outType];
        const elements = source.shape.reduce((a, b) => a * b, 1);
        const heads = permuteHeads(arch, source.name, hparams);
        if (heads !== undefined && (source.shape[0] % (2 * heads) !== 0 || heads === 0)) {
            throw new CheckpointError(
                `tensor ${source.name} has ${source.shape[0]} rows, which do not split into ${heads} heads: the checkpoint does not match its config`
            );
        }
        planned.push({ name, dims: [...source.shape].reverse(), type, bytes: elements * GGML_TYPE_SIZE[type], source, permuteHeads: heads });
    }
    return planned;
}

/** The source elements of a tensor in the GGUF's order, in chunks of at most CHUNK_BYTES. */
async function* sourceChunks(file: FileHandle, t: PlannedTensor): AsyncGenerator<Buffer> {
    const { source } = t;
    if (t.permuteHeads === undefined) {
        yield* readChunks(file, source.offset, source.bytes, CHUNK_BYTES);
        return;
    }
    // Within each head, output row 2j is input row j and row 2j+1 is input row half+j (LLaDAModel.permute).
    const rows = source.shape[0];
    const rowBytes = source.bytes / rows;
    const headRows = rows / t.permuteHeads;
    const half = headRows / 2;
    const step = Math.max(1, Math.floor(CHUNK_BYTES / (2 * rowBytes)));
    for (let head = 0; head < t.permuteHeads; head++) {
        const first = source.offset + head * headRows * rowBytes;
        for (let j = 0; j < half; j += step) {
            const n = Math.min(step, half - j);
            const a = await readRange(file, first + j * rowBytes, n * rowBytes);
            const b = await readRange(file, first + (half + j) * rowBytes, n * rowBytes);
            const out = Buffer.allocUnsafe(2 * n * rowBytes);
            for (let r = 0; r < n; r++) {
                a.copy(out, 2 * r * rowBytes, r * rowBytes, (r + 1) * rowBytes);
                b.copy(out, (2 * r + 1) * rowBytes, r * rowBytes, (r + 1) * rowBytes);
            }
            yield out;
        }
    }
}

function cancelled(): Error {
    const e = new Error("the conversion was cancelled");
    e.name = "AbortError";
    return e;
}

/**
 * Converts a Hugging Face checkpoint folder to GGUF at `outFile` (written as outFile + ".part", renamed when
 * complete; removed on failure/cancel). Streams tensor by tensor.
 */
export async function convertCheckpoint(
    dir: string,
    outFile: string,
    options: { outType?: ConvertOutType; signal?: AbortSignal; onProgress?: (p: ConvertProgress) => void } = {}
): Promise<{ architecture: string; tensors: number; bytes: number }> {
    const { signal, onProgress } = options;
    if (signal?.aborted) throw cancelled();
    const hparams = await readCheckpointConfig(dir);
    const arch = checkpointArchitecture(hparams);
    const tensors = await checkpointTensors(dir);
    const outType = options.outType === undefined || options.outType === "auto" ? guessOutType(tensors) : options.outType;
    const planned = planTensors(arch, tensors, hparams, outType);
    const total = planned.reduce((sum, t) => sum + t.bytes / GGML_TYPE_SIZE[t.type], 0);

    // The metadata in convert_hf_to_gguf.py's order: architecture, type, general.*, the architecture's keys, the
    // quantization version, the tokenizer.
    const kv = new KvList();
    kv.str("general.architecture", arch);
    kv.str("general.type", "model");
    for (const { key, value } of await generalMetadata(dir, hparams, { total, shared: total, expert: 0, expertCount: 0 })) kv.set(key, value);
    await architectureParameters(kv, arch, hparams, dir, FILE_TYPE[outType]);
    kv.u32("general.quantization_version", 2, "quantization version");
    for (const { key, value } of await vocabMetadata(dir, hparams, arch)) kv.set(key, value);
    const kvs: GgufKv[] = [...kv].map(([key, value]) => ({ key, value }));

    const part = `${outFile}.part`;
    const progress: ConvertProgress = { tensorsDone: 0, tensorsTotal: planned.length, bytesDone: 0, bytesTotal: planned.reduce((s, t) => s + t.bytes, 0) };
    let out: FileHandle | undefined;
    const sources = new Map<string, FileHandle>();
    try {
        try {
            out = await open(part, "w");
        } catch (e) {
            throw new CheckpointError(`cannot write ${part} (${(e as Error).message}): choose a folder you can write to`);
        }
        const writer = await GgufStreamWriter.start(out, kvs, planned);
        onProgress?.({ ...progress });
        for (const t of planned) {
            let file = sources.get(t.source.file);
            if (!file) {
                file = await open(t.source.file, "r");
                sources.set(t.source.file, file);
            }
            for await (const chunk of sourceChunks(file, t)) {
                if (signal?.aborted) throw cancelled();
                const converted = convertElements(chunk, t.source.dtype, t.type);
                await writer.data(converted);
                progress.bytesDone += converted.length;
            }
            await writer.endTensor();
            progress.tensorsDone++;
            onProgress?.({ ...progress });
        }
        await out.close();
        out = undefined;
        await rename(part, outFile);
        return { architecture: arch, tensors: planned.length, bytes: writer.bytes };
    } catch (e) {
        await out?.close().catch(() => {});
        await rm(part, { force: true });
        throw e;
    } finally {
        for (const file of sources.values()) await file.close().catch(() => {});
    }
}

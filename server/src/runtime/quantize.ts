// Quantizes a converted GGUF with llama.cpp's own quantizer (the addon's quantize(), on a worker thread), so that
// a checkpoint converted in the editor becomes the file users run without llama.cpp's command-line tools.
import { rename, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { QUANT_TYPES, type QuantType } from "../../../common/protocol";
import { readGgufHeader } from "./ggufHeader";
import { inspectModelFile } from "./modelFile";
import { loadAddon, type NativeQuantization } from "./native";

/** Each type's llama_ftype (llama.cpp's include/llama.h), which the addon passes to llama_model_quantize. */
const LLAMA_FTYPE: Record<QuantType, number> = { Q4_K_M: 15, Q5_K_M: 17, Q6_K: 18, Q8_0: 7, Q4_0: 2, F16: 1, BF16: 32 };

/** ggml types llama.cpp quantizes from (F32, F16, BF16); any other tensor type means the input is quantized already,
 *  which llama.cpp refuses ("requantizing ... is disabled") only after it has written part of the output. */
const UNQUANTIZED_GGML_TYPES = [0, 1, 30];

export interface QuantizeProgress {
    tensorsDone: number;
    tensorsTotal: number;
}

export interface QuantizeOptions {
    /** Default Q4_K_M. */
    type?: QuantType;
    /** CPU threads llama.cpp quantizes with; default all the machine's. */
    threads?: number;
    signal?: AbortSignal;
    /** After each tensor written. */
    onProgress?: (p: QuantizeProgress) => void;
    /** The rows llama.cpp converts at once, in bytes (source, floats and result); default QUANTIZE_BUFFER_BYTES. */
    bufferBytes?: number;
}

/** llama.cpp's own default (8 GiB) would hold a 7B model's 545M-weight embedding as floats, 2.2 GB, at once; rows are
 *  quantized one by one, so a smaller buffer changes the memory a quantization needs, not the file it writes. */
export const QUANTIZE_BUFFER_BYTES = 128 << 20;

/**
 * Writes `input` (an F32, F16 or BF16 GGUF of a diffusion model) quantized to `options.type` at `output`: llama.cpp
 * writes `output` + ".part", renamed to `output` when complete. A bad input, a failure or a cancel (`signal`)
 * rejects with a sentence and leaves neither file.
 */
export async function quantizeModel(input: string, output: string, options: QuantizeOptions = {}): Promise<void> {
    const { type = QUANT_TYPES[0], threads = availableParallelism(), signal, onProgress, bufferBytes = QUANTIZE_BUFFER_BYTES } = options;
    const ftype = LLAMA_FTYPE[type];
    if (ftype === undefined) throw new Error(`unknown quantization type '${type}': use one of ${QUANT_TYPES.join(", ")}`);
    const cancelled = () => new Error(`the quantization of ${input} to ${type} was cancelled`);
    if (signal?.aborted) throw cancelled();

    const addon = loadAddon();
    const info = await inspectModelFile(input, addon);
    const { metadata, tensors } = await readGgufHeader(input, info.fileBytes);
    if (tensors.some((t) => !UNQUANTIZED_GGML_TYPES.includes(t.ggmlType))) {
        const name = typeNamed(metadata.get("general.file_type"));
        throw new Error(`${input} is already quantized${name ? ` (${name})` : ""}: quantize the F16, BF16 or F32 GGUF the conversion wrote instead`);
    }

    const part = `${output}.part`;
    try {
        await writeFile(part, "");
    } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const why = code === "ENOENT" ? "its folder does not exist" : code === "EACCES" || code === "EPERM" ? "permission denied" : (e as Error).message;
        throw new Error(`cannot write the quantized model to ${part}: ${why}`);
    }
    if (signal?.aborted) {
        await rm(part, { force: true });
        throw cancelled();
    }
    const total = tensors.length;
    let job: NativeQuantization | undefined;
    const cancel = () => job?.cancel();
    signal?.addEventListener("abort", cancel, { once: true });
    try {
        // The fraction is (i + 1) / total in a float: rounding gives back the count exactly.
        job = addon.quantize(
            input,
            part,
            { ftype, threads, bufferBytes },
            onProgress && ((f) => onProgress({ tensorsDone: Math.round(f * total), tensorsTotal: total }))
        );
        await job.done;
        if (signal?.aborted) throw cancelled();
        await rename(part, output);
    } catch (e) {
        await rm(part, { force: true });
        throw signal?.aborted ? cancelled() : e;
    } finally {
        signal?.removeEventListener("abort", cancel);
    }
}

/** The type a GGUF's general.file_type names, when it is one of ours. */
function typeNamed(fileType: unknown): QuantType | undefined {
    return QUANT_TYPES.find((t) => LLAMA_FTYPE[t] === Number(fileType));
}

/** The type of the model file at `path` (its general.file_type), or undefined when it is missing, not GGUF or another type. */
export async function quantizationOf(path: string): Promise<QuantType | undefined> {
    const size = await stat(path).then(
        (s) => s.size,
        () => 0
    );
    if (!size) return undefined;
    return readGgufHeader(path, size).then(
        (h) => typeNamed(h.metadata.get("general.file_type")),
        () => undefined
    );
}

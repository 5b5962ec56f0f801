// Every custom LSP message of Dream-Coder, declared once: the server implements them and the client (and the
// tests and the CLI's benchmark) import the same types. Standard messages (textDocument/inlineCompletion,
// textDocument/codeAction, $/progress, $/cancelRequest) are used as LSP 3.18 defines them.
import {
    NotificationType,
    ProgressType,
    RequestType,
    RequestType0,
    type PartialResultParams,
    type Position,
    type Range,
    type TextEdit,
    type VersionedTextDocumentIdentifier,
    type WorkDoneProgressParams
} from "vscode-languageserver-protocol";

/** How a result came about: every generated token with the step that revealed it, and the timings. */
export interface DenoiseTrace {
    /** The generated tokens in document order; `hole` indexes the result's holes. End-of-text tokens are left out. */
    tokens: { text: string; step: number; hole: number }[];
    /** The steps the decoder ran (the last one's index + 1): the scale of `step`. Skipped steps, which would
     *  reveal nothing, count here but run no forward pass. */
    totalSteps: number;
    /** Forward passes of the model: a step that would reveal nothing runs none. */
    forwardPasses: number;
    totalMs: number;
    msPerStep: number;
    forwardMs: number;
    sampleMs: number;
    /** Positions whose cached cells the run kept from the document's previous request (cache reuse). */
    reusedTokens: number;
    tokensPerSecond: number;
    /** Variable-length holes: each hole's length after each step (indexed by `step`), as the model grew and shrank it. */
    holeLengths?: number[][];
}

/** A job's view of the document as the steps go: every hole's text, still-masked tokens shown as PLACEHOLDER. */
export interface DenoisePartial {
    /** Steps done (the step's index + 1), never more than totalSteps. */
    step: number;
    /** The steps the decoder plans as of this one; equal to `step` on a finished job's last partial. Variable-length
     *  holes change the plan as they grow and shrink. */
    totalSteps: number;
    holes: { range: Range; text: string }[];
}
export const PLACEHOLDER = "░";
/** Sent through $/progress on the request's partialResultToken after every step. */
export const denoisePartial = new ProgressType<DenoisePartial>();

/** What every editing job returns. `stale`: the document changed while it ran, so `edits` is empty. */
export interface EditResult {
    edits: TextEdit[];
    stale: boolean;
    trace: DenoiseTrace | null;
}

export interface FillHolesParams extends WorkDoneProgressParams, PartialResultParams {
    textDocument: VersionedTextDocumentIdentifier;
    /** Only the holes inside this range; the whole document when absent. */
    range?: Range;
}
export interface FillHolesResult extends EditResult {
    holes: number;
}
/** Fills every hole marker (in the range) jointly in one denoising run: one edit per hole. */
export const fillHoles = new RequestType<FillHolesParams, FillHolesResult, void>("dreamCoder/fillHoles");

export interface RewriteParams extends WorkDoneProgressParams, PartialResultParams {
    textDocument: VersionedTextDocumentIdentifier;
    range: Range;
    instruction: string;
    /** Overrides the dreamCoder.rewrite.mode setting. */
    mode?: "instruct" | "remask";
}
export interface RewriteResult extends EditResult {
    /** The selection as rewritten; the edits turn the old selection into it span by span. */
    text: string;
}
export const rewrite = new RequestType<RewriteParams, RewriteResult, void>("dreamCoder/rewrite");

export interface SketchParams extends WorkDoneProgressParams, PartialResultParams {
    textDocument: VersionedTextDocumentIdentifier;
    /** Where the body goes: after a signature and/or docstring. */
    position: Position;
}
export const sketch = new RequestType<SketchParams, EditResult, void>("dreamCoder/sketch");

/** A checkpoint on the Hugging Face Hub: downloaded, converted and quantized on the user's machine. */
export interface CheckpointSource {
    repo: string;
    revision: string;
    /** The checkpoint's download size, approximate (the Hub's listing gives the exact one). */
    sizeBytes: number;
}
/** A ready-made GGUF on the Hugging Face Hub, known by its exact file name. */
export interface GgufSource {
    repo: string;
    file: string;
    sizeBytes: number;
    sha256?: string;
}
export interface CatalogModel {
    id: string;
    name: string;
    architecture: string;
    /** The model file's size, once downloaded or converted. */
    sizeBytes: number;
    /** The one model the pickers mark as recommended (and the default of a user with no model set). */
    recommended?: boolean;
    /** A file that ships inside the package (relative to its root): nothing to download. */
    bundled?: string;
    checkpoint?: CheckpointSource;
    /** Tried before the checkpoint; a GGUF that is gone from the Hub falls back to converting the checkpoint. */
    gguf?: GgufSource;
    /** How each source is known to exist. */
    known: string;
    /** The downloaded file, when it is there. */
    path: string | null;
}
export const listModels = new RequestType0<{ models: CatalogModel[]; selected: string }, void>("dreamCoder/listModels");

/** The model file types a download or conversion can end with (libllama's quantizer; F16/BF16: unquantized). */
export const QUANT_TYPES = ["Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0", "Q4_0", "F16", "BF16"] as const;
export type QuantType = (typeof QUANT_TYPES)[number];
/** Bits a weight takes in each type, on average over a 7B model's tensors (llama.cpp's quantize table): the size of a
 * model file is about weights × this / 8. */
export const BITS_PER_WEIGHT: Record<QuantType, number> = { Q4_K_M: 4.89, Q5_K_M: 5.69, Q6_K: 6.56, Q8_0: 8.5, Q4_0: 4.55, F16: 16, BF16: 16 };

/** A pipeline's progress: stage `stage` of `stages` (a model's download, convert, quantize; a runtime build's unpack,
 * configure, compile), `fraction` of it done. */
export interface PullProgress {
    stage: number;
    stages: number;
    title: string;
    fraction: number;
    detail: string;
}

export interface DownloadModelParams extends WorkDoneProgressParams {
    id: string;
    /** Q4_K_M when absent. */
    quantization?: QuantType;
    keepCheckpoint?: boolean;
    /** A Hugging Face access token for a gated repository (the client keeps it in its secret storage). */
    token?: string;
}
/** Makes a catalog model present: a GGUF download, or a checkpoint download, conversion and quantization (resuming
 * what a previous run finished), reported through work-done progress. */
export const downloadModel = new RequestType<DownloadModelParams, { path: string }, void>("dreamCoder/downloadModel");

export interface ConvertCheckpointParams extends WorkDoneProgressParams {
    /** A Hugging Face checkpoint folder on this machine (config.json, tokenizer files, .safetensors). */
    folder: string;
    quantization?: QuantType;
}
/** Converts a local checkpoint folder into a GGUF file in the models directory. */
export const convertCheckpoint = new RequestType<ConvertCheckpointParams, { path: string }, void>("dreamCoder/convertCheckpoint");

/** The runtimes "Build the Runtime for This Machine" makes from the source the package carries (server/src/builder/):
 * llama.cpp's CPU backend alone, or with one GPU backend. */
export const RUNTIME_TARGETS = ["cpu", "vulkan", "cuda", "metal"] as const;
export type RuntimeTarget = (typeof RUNTIME_TARGETS)[number];
export interface RuntimeTargetInfo {
    gpu: RuntimeTarget;
    /** "CPU", "Vulkan", "CUDA", "Metal". */
    name: string;
    /** What this machine lacks to build it, one sentence each naming what to install; empty: it can be built here. */
    problems: string[];
}
/** The targets with what each lacks here, and the built runtime the server would prefer (null: none, or one built by
 * another version of the extension). */
export const runtimeTargets = new RequestType0<
    {
        targets: RuntimeTargetInfo[];
        built: { gpu: RuntimeTarget; file: string } | null;
        /** The package carries no runtime for this system (macOS) and none is built: models load only after a build. */
        missing: boolean;
    },
    void
>("dreamCoder/runtimeTargets");
export interface BuildRuntimeParams extends WorkDoneProgressParams {
    gpu: RuntimeTarget;
    /** Parallel compile jobs; this machine's cores when absent. */
    jobs?: number;
}
/** Builds patched llama.cpp and the addon for this machine into ~/.cache/dream-coder/runtime/, reported through
 * work-done progress (unpacking, configuring, compiling) and cancelled with the request. It replaces the built runtime
 * there was; the server loads it when it starts again. */
export const buildRuntime = new RequestType<BuildRuntimeParams, { file: string; gpu: RuntimeTarget; seconds: number }, void>("dreamCoder/buildRuntime");

/** What caused a failed request, in its error's `data`, so that the client can offer the action that fixes it:
 * no model set, a catalog model not downloaded, a model file that cannot be used (missing, a folder, not GGUF,
 * damaged, not a diffusion model), no hole marker to fill, a download or conversion that failed, a gated
 * repository that needs a Hugging Face token. */
export type Problem = "no-model" | "not-downloaded" | "model-file" | "no-hole" | "download" | "hub-login" | "no-runtime";
export interface ProblemData {
    problem: Problem;
}

/** unset: no model setting; idle: set, loads on first use; then loading, ready, busy (a job runs), error. */
export type ServerState = "unset" | "idle" | "loading" | "ready" | "busy" | "error";
export interface ServerStatus {
    state: ServerState;
    /** The model's file name or catalog id. */
    model: string;
    /** Where the model runs, in words: "Vulkan0 (NVIDIA GeForce RTX 4070), 29 of 29 layers", "CPU", or with the
     *  build an installed .vsix picked, "CPU (avx512 build)". */
    backend: string;
    /** The GPU holding layers, by ggml's name ("Vulkan0"); absent on the CPU. */
    gpu?: string;
    /** Loading: 0..1. */
    progress?: number;
    /** Busy: the running job's step. */
    step?: number;
    /** Busy: the running job's planned steps (DenoisePartial.totalSteps). */
    totalSteps?: number;
    /** Error: what went wrong, in words. */
    message?: string;
    /** The last finished job's latency. */
    lastLatencyMs?: number;
}
export const status = new NotificationType<ServerStatus>("dreamCoder/status");

/** Commands the server's code actions name: the client implements them (they ask for input or show previews). */
export const CLIENT_COMMANDS = {
    fillHoles: "dreamCoder.fillHoles",
    rewriteSelection: "dreamCoder.rewriteSelection"
} as const;

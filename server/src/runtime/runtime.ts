// The runtime the language server imports: a loaded diffusion model, requests laid out as fixed text and
// holes, one decode at a time, steps streamed, cancellation through an AbortSignal.
import { inspectModelFile, type ModelFileInfo } from "./modelFile";
import { CpuLoad } from "./cpuLoad";
import { cpuRuntimeOnly, loadRuntime, type DecodeParams, type FitContext, type LoadedRuntime, type NativeModel, type NativeModelInfo } from "./native";

/** One sampler of the machine's load for every model of the process. */
const cpuLoad = new CpuLoad();

/** A piece of the sequence: fixed text, fixed text with special tokens parsed (chat markup), or a hole of `hole`
 *  tokens; with `maxLength` above `hole`, a hole that starts at `hole` tokens and may grow to `maxLength` or shrink
 *  (a model with expand and delete tokens: NativeModelInfo.expandToken). */
export type Segment = string | { special: string } | { hole: number; maxLength?: number };

export interface ChatMessage {
    role: "system" | "user" | "assistant";
    content: string;
}

/** The CPU threads a model loads with when none are named. */
const DEFAULT_THREADS = 2;

/** Absent fields: DEFAULT_THREADS, no GPU layers. */
export interface LoadOptions {
    threads?: number;
    /** Each request runs on `threads` or fewer: as many as the cores other programs leave free (cpuLoad.ts).
     *  A request's own `threads` parameter overrides it. */
    adaptiveThreads?: boolean;
    /** Layers to offload to the GPU of a GPU runtime (0 = CPU only, negative = all), or "auto": as many as fit
     *  with `fitContext`'s KV cache and compute buffer (llama.cpp's fit). */
    gpuLayers?: number | "auto";
    fitContext?: FitContext;
    onProgress?: (fraction: number) => void;
    /** The runtime to load it with; default loadRuntime()'s (tests and benchmarks compare the GPU and CPU ones). */
    runtime?: LoadedRuntime;
    /** Where a GPU runtime that could not load the model says so, before the CPU runtime loads it instead. */
    onFallback?: (sentence: string) => void;
}

export interface StepEvent {
    /** The step's index in the schedule (steps that would reveal nothing are skipped, so an index may be missing). */
    step: number;
    /** The steps the decoder plans as of this one: at least step + 1, and step + 1 on a finished run's last event. */
    totalSteps: number;
    /** Sequence positions revealed this step, and their tokens. */
    positions: number[];
    tokens: number[];
    forwardMs: number;
    sampleMs: number;
    /** Positions the forward pass computed (the whole sequence, or a cached mode's block), and whether it was a full pass. */
    rows: number;
    full: boolean;
    /** A block start that kept the cells of the key's last request (reuseKey) and re-decoded only what changed. */
    reused: boolean;
    /** Bytes read out of llama.cpp's output buffer this step: logits rows (4 × n_vocab each) or, greedy with
     *  deviceReductions, 20 bytes a row. */
    copiedBytes: number;
    /** The confidence of each revealed position (NaN: filled by earlyStop). */
    confidences: number[];
    /** With traceLogits: the masked positions considered and their raw logits rows (n_vocab each). */
    candidates?: number[];
    logits?: Float32Array;
    /** Variable-length holes: each hole's tokens after the step (masks included); `positions` are those before the
     *  step grew or shrank the holes. */
    holeTokens?: number[][];
}

export interface DecodeOptions extends DecodeParams {
    signal?: AbortSignal;
    onStep?: (event: StepEvent) => void;
}

export interface HoleResult {
    /** The hole's text: its tokens up to the first end-of-text ("shorter than the hole"), places left masked dropped. */
    text: string;
    /** The tokens `text` is made of. */
    textTokens: number[];
    /** Every place of the hole, as decoded. */
    tokens: number[];
    /** The step that revealed each of the hole's tokens: the generation order. */
    revealStep: number[];
    start: number;
    length: number;
}

export interface DecodeResult {
    holes: HoleResult[];
    tokens: Int32Array;
    revealStep: Int32Array;
    /** Forward passes of the model (a step that would reveal nothing runs none). */
    forwardPasses: number;
    /** Forward passes over the whole sequence: every step in exact mode, one refresh per block in the cached modes. */
    fullPasses: number;
    /** Positions whose cached cells were kept from the key's last request (reuseKey); 0 without reuse. */
    reusedTokens: number;
    totalMs: number;
    msPerStep: number;
    tokensPerSecond: number;
    forwardMs: number;
    sampleMs: number;
    /** All steps' copiedBytes. */
    copiedBytes: number;
    /** The compute buffers llama.cpp reserved for the request's context, on all devices (its largest graph). */
    computeBytes: number;
    /** The CPU threads it ran on (the request's, the busy machine's share, or the model's). */
    threads: number;
}

export interface SequenceLayout {
    tokens: Int32Array;
    holes: LayoutHole[];
}

/** A hole of a layout: `length` masks at `start`; `maxLength` above `length`: variable length. */
export interface LayoutHole {
    start: number;
    length: number;
    maxLength?: number;
}

export class DecodeCancelledError extends Error {
    constructor() {
        super("the request was cancelled");
        this.name = "AbortError";
    }
}

export class DiffusionModel {
    private queue: Promise<unknown> = Promise.resolve();
    /** No new work is taken once disposing starts; the native model stays usable until the running job ends. */
    private disposed = false;
    private freed = false;
    readonly info: NativeModelInfo;
    private readonly endTokens: Set<number>;

    private constructor(
        private readonly native: NativeModel,
        /** The runtime that loaded it (the GPU runtime, or the CPU runtime it fell back to). */
        private readonly runtime: LoadedRuntime,
        readonly file: ModelFileInfo,
        /** The threads the model was loaded with, and whether requests adapt them to the machine's load. */
        private readonly threads: number,
        private readonly adaptiveThreads: boolean
    ) {
        this.info = native.info();
        this.endTokens = new Set(this.info.endTokens);
    }

    /** Checks the file (clear errors for missing, corrupt, truncated, autoregressive, maskless files), then loads it. */
    static async load(path: string, options: LoadOptions = {}): Promise<DiffusionModel> {
        let runtime = options.runtime ?? loadRuntime();
        const file = await inspectModelFile(path, runtime.addon);
        const threads = options.threads ?? DEFAULT_THREADS;
        // Sampling starts with the load, so that the first request already sees how busy the machine is.
        if (options.adaptiveThreads) cpuLoad.start();
        const load = (r: LoadedRuntime) =>
            r.addon.loadModel(path, { threads, gpuLayers: r.gpu ? options.gpuLayers : 0, fitContext: options.fitContext }, options.onProgress);
        let native: NativeModel;
        try {
            native = await load(runtime);
        } catch (e) {
            // A GPU that fails on this model (out of memory, a driver error) still leaves the CPU.
            if (!runtime.gpu || options.gpuLayers === 0) throw new Error(`${path}: ${oneLine(e)}`);
            options.onFallback?.(`the GPU runtime could not load ${path} (${oneLine(e)}): running on the CPU`);
            runtime = cpuRuntimeOnly();
            native = await load(runtime).catch((e2: Error) => {
                throw new Error(`${path}: ${oneLine(e2)}`);
            });
        }
        return new DiffusionModel(native, runtime, file, threads, options.adaptiveThreads ?? false);
    }

    /**
     * Where it runs, in words: "Vulkan0 (NVIDIA GeForce RTX 4070), 29 of 29 layers" with layers on a GPU (a part:
     * the rest on the CPU); else "CPU", with the build an installed .vsix picked ("CPU (avx512 build)") or a GPU
     * runtime's own CPU code ("CPU (Vulkan build)").
     */
    get runsOn(): { backend: string; gpu?: string } {
        const layers = this.info.gpuLayers;
        const device = this.runtime.addon.devices().find((d) => d.type === "gpu");
        if (layers > 0 && device) return { backend: `${device.name} (${device.description}), ${layers} of ${this.info.nLayer + 1} layers`, gpu: device.name };
        return { backend: this.runtime.build === "build from source" ? "CPU" : `CPU (${this.runtime.build})` };
    }

    tokenize(text: string, options: { addSpecial?: boolean; parseSpecial?: boolean } = {}): Int32Array {
        return this.live().tokenize(text, options.addSpecial ?? false, options.parseSpecial ?? false);
    }

    detokenize(tokens: ArrayLike<number>, renderSpecial = false): string {
        return this.live().detokenize(Int32Array.from(tokens), renderSpecial);
    }

    isEndToken(token: number): boolean {
        return this.endTokens.has(token);
    }

    /** The prompt for `messages` through the model's own chat template, ready for the assistant's reply. */
    async formatChat(messages: ChatMessage[]): Promise<string> {
        const { Template } = await import("@huggingface/jinja");
        const source = this.info.chatTemplate ?? this.file.chatTemplate;
        if (!source) throw new Error(`${this.file.path} has no chat template: use a base-model request (text and holes) instead`);
        return new Template(source).render({
            messages,
            add_generation_prompt: true,
            bos_token: this.info.bos >= 0 ? this.detokenize([this.info.bos], true) : "",
            eos_token: this.info.eos >= 0 ? this.detokenize([this.info.eos], true) : ""
        });
    }

    /** Lays segments out as tokens: text tokenized piece by piece, holes as runs of mask tokens. */
    layout(segments: Segment[]): SequenceLayout {
        const out: number[] = [];
        const holes: LayoutHole[] = [];
        let grow = 0;
        // One token at a time: spreading a long text's tokens into push() overflows the call stack.
        const append = (tokens: Int32Array) => {
            for (const t of tokens) out.push(t);
        };
        if (this.info.addBos && this.info.bos >= 0) out.push(this.info.bos);
        for (const seg of segments) {
            if (typeof seg === "string") {
                append(this.tokenize(seg));
            } else if ("special" in seg) {
                append(this.tokenize(seg.special, { parseSpecial: true }));
            } else {
                if (!Number.isInteger(seg.hole) || seg.hole < 1) throw new RangeError(`a hole needs a positive whole number of tokens, not ${seg.hole}`);
                const maxLength = seg.maxLength ?? seg.hole;
                if (!Number.isInteger(maxLength) || maxLength < seg.hole) {
                    throw new RangeError(`a hole's maximum length must be a whole number of tokens no smaller than its ${seg.hole}, not ${seg.maxLength}`);
                }
                // A shifted model reads position p from row p - 1: nothing predicts position 0.
                if (out.length === 0 && this.info.shiftLogits) out.push(this.info.bos >= 0 ? this.info.bos : this.info.eos);
                holes.push(maxLength > seg.hole ? { start: out.length, length: seg.hole, maxLength } : { start: out.length, length: seg.hole });
                grow += maxLength - seg.hole;
                for (let i = 0; i < seg.hole; i++) out.push(this.info.mask);
            }
        }
        if (holes.length === 0) throw new RangeError("the request has no hole to fill");
        this.checkFits(out.length + grow);
        return { tokens: Int32Array.from(out), holes };
    }

    /** Refuses a sequence of `tokens` longer than the model's trained context, saying both sizes. */
    checkFits(tokens: number): void {
        if (tokens > this.info.nCtxTrain) {
            throw new RangeError(`the request needs ${tokens} tokens, more than the model's trained context of ${this.info.nCtxTrain}`);
        }
    }

    /** Decodes every hole of the sequence jointly. Rejects with DecodeCancelledError when `signal` aborts. */
    async decode(segments: Segment[], options: DecodeOptions = {}): Promise<DecodeResult> {
        return this.decodeLayout(this.layout(segments), options);
    }

    decodeLayout(layout: SequenceLayout, options: DecodeOptions = {}): Promise<DecodeResult> {
        const { signal, onStep, ...params } = options;
        return this.exclusive(signal, async (native) => {
            // Chosen when the request runs, not when it was queued: the load is the one it will meet. 0 is the
            // native default (the model's count), named here so that the result can say it.
            params.threads ||= this.adaptiveThreads ? cpuLoad.threadsFor(this.threads) : this.threads;
            const holes = Int32Array.from(layout.holes.flatMap((h) => [h.start, h.length, h.maxLength ?? h.length]));
            const abort = () => native.cancel();
            signal?.addEventListener("abort", abort);
            try {
                const r = await native.decode(
                    layout.tokens,
                    holes,
                    params,
                    onStep &&
                        ((s) =>
                            onStep({
                                step: s.step,
                                totalSteps: s.totalSteps,
                                positions: [...s.positions],
                                tokens: [...s.tokens],
                                forwardMs: s.forwardMs,
                                sampleMs: s.sampleMs,
                                rows: s.rows,
                                full: s.full,
                                reused: s.reused,
                                copiedBytes: s.copiedBytes,
                                confidences: [...s.confidences],
                                candidates: s.candidates && [...s.candidates],
                                logits: s.logits,
                                holeTokens: s.holeLengths && splitHoles(s.holeTokens!, s.holeLengths)
                            }))
                );
                if (r.cancelled) throw new DecodeCancelledError();
                const ended = layout.holes.map((_, i) => ({ start: r.holes[2 * i], length: r.holes[2 * i + 1] }));
                const generated = ended.reduce((a, h) => a + h.length, 0);
                return {
                    holes: ended.map((h) => this.holeResult(h, r.tokens, r.revealStep)),
                    tokens: r.tokens,
                    revealStep: r.revealStep,
                    forwardPasses: r.forwardPasses,
                    fullPasses: r.fullPasses,
                    reusedTokens: r.reusedTokens,
                    totalMs: r.totalMs,
                    msPerStep: r.forwardPasses ? r.totalMs / r.forwardPasses : 0,
                    tokensPerSecond: r.totalMs > 0 ? generated / (r.totalMs / 1000) : 0,
                    forwardMs: r.forwardMs,
                    sampleMs: r.sampleMs,
                    copiedBytes: r.copiedBytes,
                    computeBytes: r.computeBytes,
                    threads: params.threads
                };
            } finally {
                signal?.removeEventListener("abort", abort);
            }
        });
    }

    /** One bidirectional forward pass: every row of logits (row-major). Memory: tokens × vocabulary floats. */
    forwardLogits(tokens: Int32Array, signal?: AbortSignal): Promise<Float32Array> {
        return this.exclusive(signal, (native) => native.forwardLogits(tokens));
    }

    /** Cancels queued and running work, waits for it, and frees the model. */
    async dispose(): Promise<void> {
        if (this.disposed) return;
        this.disposed = true;
        this.native.cancel();
        await this.queue.catch(() => undefined);
        this.freed = true;
        this.native.dispose();
    }

    private holeResult(h: { start: number; length: number }, tokens: Int32Array, revealStep: Int32Array): HoleResult {
        const ids = [...tokens.subarray(h.start, h.start + h.length)];
        const end = ids.findIndex((t) => this.isEndToken(t));
        // A place still masked after the last step (its prediction was the mask) adds nothing.
        const textTokens = (end < 0 ? ids : ids.slice(0, end)).filter((t) => t !== this.info.mask);
        return {
            text: this.detokenize(textTokens),
            textTokens,
            tokens: ids,
            revealStep: [...revealStep.subarray(h.start, h.start + h.length)],
            start: h.start,
            length: h.length
        };
    }

    private live(): NativeModel {
        if (this.freed) throw new Error("the model has been disposed");
        return this.native;
    }

    /** Runs `job` after every earlier job: the native model decodes one request at a time. */
    private exclusive<T>(signal: AbortSignal | undefined, job: (native: NativeModel) => Promise<T>): Promise<T> {
        if (this.disposed) throw new Error("the model has been disposed");
        const native = this.native;
        const run = this.queue
            .catch(() => undefined)
            .then(() => {
                if (signal?.aborted) throw new DecodeCancelledError();
                if (this.disposed) throw new Error("the model has been disposed");
                return job(native);
            });
        this.queue = run;
        return run;
    }
}

/** A step's hole tokens, hole after hole, cut into one array a hole. */
function splitHoles(tokens: Int32Array, lengths: Int32Array): number[][] {
    const holes: number[][] = [];
    let at = 0;
    for (const n of lengths) {
        holes.push([...tokens.subarray(at, at + n)]);
        at += n;
    }
    return holes;
}

/** An error's message on one line: llama.cpp's log comes back line by line, and a message is one sentence everywhere. */
function oneLine(e: unknown): string {
    return String((e as Error).message ?? e)
        .split("\n")
        .map((l) => l.trim())
        .filter(Boolean)
        .join("; ");
}

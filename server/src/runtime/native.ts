// The Node-API addon's surface (native/src/addon.cpp), typed, and where to find the built file.
import { existsSync, readFileSync } from "node:fs";
import { packagedFile } from "../packageFiles";

export type Algorithm = "origin" | "maskgit_plus" | "topk_margin" | "entropy";
export type Schedule = "timestep" | "block";
/** none: exact, every step recomputes the sequence; prefix / dual: Fast-dLLM's KV caches (docs/speed.md). */
export type CacheMode = "none" | "prefix" | "dual";

/** Decoding parameters; every field has the default documented in docs/runtime.md "Decoding parameters". */
export interface DecodeParams {
    steps?: number;
    algorithm?: Algorithm;
    schedule?: Schedule;
    eps?: number;
    blockLength?: number;
    temperature?: number;
    topP?: number;
    topK?: number;
    seed?: number;
    algTemp?: number;
    confidenceThreshold?: number;
    entropyBound?: number;
    cache?: CacheMode;
    /** Cached modes: refill the cache with a full pass before every step (tests: must equal exact mode). */
    refreshEveryStep?: boolean;
    /** Cached modes: the KV cache's type. f32 (default) keeps cached logits equal to a full pass's; f16 is faster. */
    cacheType?: "f32" | "f16";
    eotPenalty?: number;
    eotPenaltyDecay?: number;
    earlyStop?: boolean;
    traceLogits?: boolean;
    /**
     * Cached modes: keep this key's cache (a document's) after the request; the next request with the key
     * re-decodes only the tokens that changed and the holes, not the whole window (docs/speed.md).
     */
    reuseKey?: string;
    /** A full pass after this many requests reused a key's cache (default 16) ... */
    reuseMaxRequests?: number;
    /** ... or once this many tokens outside the holes changed since the last full pass (default 256). */
    reuseMaxChanged?: number;
    /** Greedy decoding: llama.cpp reduces each logits row on its device and copies out 20 bytes a row instead of
     *  the row (native/patches/0002). "auto" (default): where the logits are on a GPU (on the CPU backend the
     *  host scan is faster); true: always (tests); false: never (the rows, scanned on the host). */
    deviceReductions?: boolean | "auto";
}

export interface NativeModelInfo {
    architecture: string;
    description: string;
    nVocab: number;
    nCtxTrain: number;
    shiftLogits: boolean;
    mask: number;
    bos: number;
    eos: number;
    addBos: boolean;
    endTokens: Int32Array;
    chatTemplate: string | null;
    sizeBytes: number;
}

export interface NativeStep {
    step: number;
    positions: Int32Array;
    tokens: Int32Array;
    forwardMs: number;
    sampleMs: number;
    rows: number;
    full: boolean;
    reused: boolean;
    copiedBytes: number;
    confidences: Float32Array;
    candidates?: Int32Array;
    logits?: Float32Array;
}

export interface NativeDecodeResult {
    tokens: Int32Array;
    revealStep: Int32Array;
    forwardPasses: number;
    fullPasses: number;
    reusedTokens: number;
    totalMs: number;
    forwardMs: number;
    sampleMs: number;
    copiedBytes: number;
    cancelled: boolean;
}

export interface NativeModel {
    info(): NativeModelInfo;
    tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
    detokenize(tokens: Int32Array, renderSpecial: boolean): string;
    decode(tokens: Int32Array, holes: Int32Array, params: DecodeParams, onStep?: (s: NativeStep) => void): Promise<NativeDecodeResult>;
    forwardLogits(tokens: Int32Array): Promise<Float32Array>;
    cancel(): void;
    dispose(): void;
}

export interface NativeDevice {
    name: string;
    description: string;
    type: "cpu" | "gpu" | "other";
}

export interface NativeAddon {
    loadModel(path: string, options: { threads?: number; gpuLayers?: number }, onProgress?: (p: number) => void): Promise<NativeModel>;
    tensorBytes(ggmlType: number, ne0: number, rows: number): number | null;
    devices(): NativeDevice[];
    systemInfo(): string;
}

/** The builds of scripts/build-native.mjs: this machine's CPU (a build from source), then the portable one (the .vsix's). */
const ADDON_FILE = "native/build/cmake/Release/dream_native.node";
const PORTABLE_ADDON_FILE = "native/build/cmake-portable/Release/dream_native.node";
/** What the portable build's code assumes of an x86-64 CPU; without one of them it would die with SIGILL, not say why. */
const PORTABLE_CPU_FLAGS = ["avx2", "fma", "f16c"];
let addon: NativeAddon | undefined;

/** The CPU flags of `cpuinfo` (Linux's /proc/cpuinfo) that the portable build needs and the CPU lacks. */
export function missingPortableCpuFlags(cpuinfo: string): string[] {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(cpuinfo)?.[1] ?? "").trim().split(/\s+/));
    return PORTABLE_CPU_FLAGS.filter((f) => !flags.has(f));
}

/** The built addon: $DREAM_CODER_ADDON, else the nearest package folder's build, this machine's before the portable one. */
export function loadAddon(): NativeAddon {
    if (addon) return addon;
    const found = process.env.DREAM_CODER_ADDON ?? packagedFile(ADDON_FILE, PORTABLE_ADDON_FILE);
    if (!found || !existsSync(found)) {
        const where = found ? `$DREAM_CODER_ADDON names ${found}, which does not exist` : `no ${ADDON_FILE} in any folder above ${__dirname}`;
        throw new Error(`the native runtime is not built (${where}): run "npm run build:native"`);
    }
    if (found.endsWith(PORTABLE_ADDON_FILE) && process.platform === "linux" && process.arch === "x64") {
        const missing = missingPortableCpuFlags(readFileSync("/proc/cpuinfo", "utf8"));
        if (missing.length > 0)
            throw new Error(
                `this CPU lacks ${missing.join(", ").toUpperCase()}, which the packaged runtime needs: build Dream-Coder from source on this machine (docs/building.md), which compiles for its CPU`
            );
    }
    addon = require(found) as NativeAddon;
    return addon;
}

// The Node-API addon's surface (native/src/addon.cpp), typed, and where to find the built file.
import { existsSync } from "node:fs";
import { join } from "node:path";
import cpuBuilds from "../../../native/cpu-builds.json";
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
    /** CPU threads for this request (1 to 512); absent or 0: the model's, or fewer on a busy machine (LoadOptions.adaptiveThreads). */
    threads?: number;
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

/** A running quantization (addon quantize()): `done` settles when llama.cpp is finished; cancel() stops it after the
 *  tensor being written, and `done` rejects ("the quantization was cancelled"). */
export interface NativeQuantization {
    done: Promise<void>;
    cancel(): void;
}

export interface NativeAddon {
    loadModel(path: string, options: { threads: number; gpuLayers?: number }, onProgress?: (p: number) => void): Promise<NativeModel>;
    /** llama.cpp's quantizer on a worker thread: `ftype` is a llama_ftype (quantize.ts), threads 1 to 512, `bufferBytes`
     *  the rows it holds at once (0: llama.cpp's 8 GiB); onProgress gets the fraction of tensors written after each one.
     *  llama.cpp writes `output` itself, an incomplete file on failure. */
    quantize(
        input: string,
        output: string,
        options: { ftype: number; threads: number; bufferBytes?: number },
        onProgress?: (fraction: number) => void
    ): NativeQuantization;
    tensorBytes(ggmlType: number, ne0: number, rows: number): number | null;
    devices(): NativeDevice[];
    systemInfo(): string;
}

// Where the runtime's files are, from the package (or checkout) root; the tests check the package against these.
/** The build from source (scripts/build-native.mjs): for this machine's CPU. */
export const ADDON_FILE = "native/build/cmake/Release/dream_native.node";
/** The packaged CPU builds (native/cpu-builds.json), best first, and the file of each. */
export type PackagedBuild = keyof typeof cpuBuilds.builds;
export const PACKAGED_BUILDS = Object.keys(cpuBuilds.builds) as PackagedBuild[];
export const packagedAddonFile = (build: PackagedBuild) => `native/build/cmake-${build}/Release/dream_native.node`;
/** The CPU probe (native/src/cpu_features.cpp), built for any x86-64 CPU beside the portable build: in a package,
 *  it says which packaged build this CPU runs. */
export const CPU_PROBE_FILE = "native/build/cmake-portable/Release/dream_cpu.node";
let addon: NativeAddon | undefined;
let addonBuild: PackagedBuild | undefined;

/** The instruction sets `build`'s code assumes (named as in /proc/cpuinfo) that `features` lacks: without one of them
 *  that build would die with SIGILL, not say why. */
export function missingCpuFlags(build: PackagedBuild, features: readonly string[]): string[] {
    const needs = cpuBuilds.builds[build].flatMap((option) => cpuBuilds.cpuFlags[option as keyof typeof cpuBuilds.cpuFlags]);
    return needs.filter((f) => !features.includes(f));
}

/** The packaged builds a CPU with `features` runs, best first; null (not x86-64, none of these sets) gives the most
 *  portable one, which is ggml's generic build there. */
export function packagedBuildsFor(features: readonly string[] | null): PackagedBuild[] {
    if (features === null) return PACKAGED_BUILDS.slice(-1);
    return PACKAGED_BUILDS.filter((b) => missingCpuFlags(b, features).length === 0);
}

/** Why this Linux cannot load the packaged builds, or null: they need glibc (`glibc`: the version it runs, undefined
 *  without one, as on Alpine's musl) of at least the version they were linked against. */
export function glibcProblem(glibc: string | undefined): string | null {
    const needed = cpuBuilds.glibc;
    const [major, minor] = (glibc ?? "").split(".").map(Number);
    const [needMajor, needMinor] = needed.split(".").map(Number);
    if (glibc && (major > needMajor || (major === needMajor && minor >= needMinor))) return null;
    const has = glibc ? `glibc ${glibc}` : "no glibc (musl, as on Alpine?)";
    return `this Linux has ${has}, and the packaged runtime needs glibc ${needed} or newer: build Dream-Coder from source on this machine (docs/building.md)`;
}

/** The best packaged build that this CPU runs in the package at `root`, or a sentence for a system or CPU that runs none. */
function packagedAddon(root: string): string {
    if (process.platform === "linux") {
        // Node's diagnostic report names the glibc it runs on (none: musl); a host without reports is not checked.
        const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
        const problem = header ? glibcProblem(header.glibcVersionRuntime) : null;
        if (problem) throw new Error(problem);
    }
    const features = process.arch === "x64" ? requirePackaged<{ features(): string[] }>(join(root, CPU_PROBE_FILE)).features() : null;
    const builds = packagedBuildsFor(features);
    if (builds.length === 0 && features) {
        const portable = PACKAGED_BUILDS[PACKAGED_BUILDS.length - 1];
        throw new Error(
            `this CPU lacks ${missingCpuFlags(portable, features).join(", ").toUpperCase()}, which the packaged runtime needs: build Dream-Coder from source on this machine (docs/building.md), which compiles for its CPU`
        );
    }
    addonBuild = builds.find((b) => existsSync(join(root, packagedAddonFile(b))));
    if (!addonBuild) throw new Error(`the native runtime is not built (no ${packagedAddonFile(builds[0])} in ${root}): run "npm run build:native"`);
    return join(root, packagedAddonFile(addonBuild));
}

/** Which packaged CPU build loadAddon() loaded; undefined for a build from source or $DREAM_CODER_ADDON. */
export function loadedPackagedBuild(): PackagedBuild | undefined {
    return addonBuild;
}

/** The built addon: $DREAM_CODER_ADDON, else the nearest package folder's: its build from source (for this machine's
 *  CPU), else the best of its packaged builds that the CPU runs. */
export function loadAddon(): NativeAddon {
    if (addon) return addon;
    const found = process.env.DREAM_CODER_ADDON ?? packagedFile(ADDON_FILE, CPU_PROBE_FILE);
    if (!found || !existsSync(found)) {
        const where = found ? `$DREAM_CODER_ADDON names ${found}, which does not exist` : `no ${ADDON_FILE} in any folder above ${__dirname}`;
        throw new Error(`the native runtime is not built (${where}): run "npm run build:native"`);
    }
    const probe = join(CPU_PROBE_FILE); // with this platform's separators, as packagedFile gives it
    if (!found.endsWith(probe)) {
        addon = require(found) as NativeAddon;
        return addon;
    }
    addon = requirePackaged<NativeAddon>(packagedAddon(found.slice(0, -probe.length)));
    return addon;
}

/** Loads a file of the packaged runtime, or says why this system cannot. */
function requirePackaged<T>(file: string): T {
    try {
        return require(file) as T;
    } catch (e) {
        // E.g. an older libstdc++ than the build machine's, or another OS: the loader's first line names the problem.
        const why = (e as Error).message.split("\n")[0];
        throw new Error(`the packaged runtime does not load on this system (${why}): build Dream-Coder from source on this machine (docs/building.md)`);
    }
}

// The Node-API addon's surface (native/src/addon.cpp), typed, and where to find the built file.
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import cpuBuilds from "../../../native/cpu-builds.json";
import { builtRuntime } from "../builder/built";
import { TARGET_NAMES } from "../builder/prerequisites";
import { RUNTIME_SOURCE_FILE } from "../builder/source";
import type { Algorithm, CacheMode, Schedule } from "../../../common/decoding";
import { packagedFile } from "../packageFiles";

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
    /** Fixed-length holes: once a hole's places up to a revealed line break are all revealed, the rest of the hole
     *  is end-of-text and its steps are not run (line completions, which keep only the first line). */
    stopAtLineEnd?: boolean;
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
    /** Variable-length holes: the tokens that grow and shrink a hole, instead of the model's (NativeModelInfo). */
    expandToken?: number;
    deleteToken?: number;
}

export interface NativeModelInfo {
    architecture: string;
    /** The model's repeating layers; `gpuLayers` of nLayer + 1 (the output layer counts as one) run on a GPU. */
    nLayer: number;
    gpuLayers: number;
    description: string;
    nVocab: number;
    nCtxTrain: number;
    shiftLogits: boolean;
    mask: number;
    bos: number;
    eos: number;
    addBos: boolean;
    endTokens: Int32Array;
    /** Variable-length holes (DreamOn): the token that grows a hole and the one that shrinks it; -1 when the model
     *  has none (its holes have fixed lengths). */
    expandToken: number;
    deleteToken: number;
    chatTemplate: string | null;
    sizeBytes: number;
}

export interface NativeStep {
    step: number;
    totalSteps: number;
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
    /** Variable-length holes: every hole's tokens after the step, hole after hole, and each hole's length. */
    holeTokens?: Int32Array;
    holeLengths?: Int32Array;
}

export interface NativeDecodeResult {
    tokens: Int32Array;
    revealStep: Int32Array;
    /** Where each hole ended: (start, length) pairs. */
    holes: Int32Array;
    forwardPasses: number;
    fullPasses: number;
    reusedTokens: number;
    totalMs: number;
    forwardMs: number;
    sampleMs: number;
    copiedBytes: number;
    computeBytes: number;
    cancelled: boolean;
}

export interface NativeModel {
    info(): NativeModelInfo;
    tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Int32Array;
    detokenize(tokens: Int32Array, renderSpecial: boolean): string;
    /** `holes`: (start, length, maxLength) triples; maxLength above length makes the hole's length variable. */
    decode(tokens: Int32Array, holes: Int32Array, params: DecodeParams, onStep?: (s: NativeStep) => void): Promise<NativeDecodeResult>;
    forwardLogits(tokens: Int32Array): Promise<Float32Array>;
    cancel(): void;
    dispose(): void;
}

export interface NativeDevice {
    /** ggml's name: "CPU", "Vulkan0", "CUDA0", "MTL0". */
    name: string;
    /** The driver's name for it, e.g. "NVIDIA GeForce RTX 4070" or "llvmpipe (LLVM 15.0.6, 256 bits)". */
    description: string;
    type: "cpu" | "gpu" | "other";
    /** A GPU that shares the system's memory. */
    integrated: boolean;
    memoryFree: number;
    memoryTotal: number;
}

/** The context llama.cpp fits the GPU layers for (gpuLayers "auto"): the cached modes' context for a request of
 *  `tokens` tokens with `sequences` reuse slots and at most `outputs` output rows a step, and the device memory to
 *  leave free (default 512 MiB). */
export interface FitContext {
    tokens: number;
    outputs: number;
    sequences: number;
    marginBytes?: number;
}

/** A running quantization (addon quantize()): `done` settles when llama.cpp is finished; cancel() stops it after the
 *  tensor being written, and `done` rejects ("the quantization was cancelled"). */
export interface NativeQuantization {
    done: Promise<void>;
    cancel(): void;
}

export interface NativeAddon {
    /** gpuLayers: a count (negative: all), or "auto" with fitContext: as many as llama.cpp's fit finds room for. */
    loadModel(
        path: string,
        options: { threads: number; gpuLayers?: number | "auto"; fitContext?: FitContext },
        onProgress?: (p: number) => void
    ): Promise<NativeModel>;
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
    /** Documents whose caches the cached modes keep at once (DecodeParams.reuseKey). */
    reuseSlots: number;
}

// Where the runtime's files are, from the package (or checkout) root; the tests check the package against these.
/** The build from source (scripts/build-native.mjs): for this machine's CPU. */
export const ADDON_FILE = "native/build/cmake/Release/dream_native.node";
/** A system a package is built for, as Node names it (`${process.platform}-${process.arch}`): "linux-x64", "win32-x64". */
export type Target = string;
/** The system this process runs on. */
export const HOST_TARGET: Target = `${process.platform}-${process.arch}`;
/** The processor architectures with packaged CPU builds (native/cpu-builds.json). */
export type PackagedArch = "x64" | "arm64";
const archOf = (target: Target) => target.split("-")[1] as PackagedArch;
const HOST_ARCH = archOf(HOST_TARGET);
/** The packaged CPU builds for a processor architecture (native/cpu-builds.json), best first; none for another. */
export const packagedBuilds = (arch: PackagedArch = HOST_ARCH): string[] => Object.keys(cpuBuilds[arch]?.builds ?? {});
export const PACKAGED_BUILDS = packagedBuilds();
/** A packaged build's folder: cmake-BUILD/ when built on the system it is for, cmake-BUILD-TARGET/ when cross-built
 *  (scripts/build-native.mjs --target TARGET). The runtime looks for both; a package holds its target's only. */
const packagedFolder = (build: string, crossTarget?: Target) => `native/build/cmake-${build}${crossTarget ? `-${crossTarget}` : ""}/Release`;
export const packagedAddonFile = (build: string, crossTarget?: Target) => `${packagedFolder(build, crossTarget)}/dream_native.node`;
/** The CPU probe (native/src/cpu_features.cpp), built for any CPU of its architecture beside the most portable build:
 *  in a package, it says which packaged build this CPU runs. */
export const cpuProbeFile = (crossTarget?: Target) =>
    `${packagedFolder(packagedBuilds(crossTarget ? archOf(crossTarget) : HOST_ARCH).at(-1) ?? "portable", crossTarget)}/dream_cpu.node`;
export const CPU_PROBE_FILE = cpuProbeFile();
/** Where a package for this system has the probe: built here, or cross-built for it. */
const PROBE_FILES = [CPU_PROBE_FILE, cpuProbeFile(HOST_TARGET)].map((f) => join(f));
const buildTable = cpuBuilds as unknown as Record<PackagedArch, { builds: Record<string, string[]>; cpuFlags: Record<string, string[]> }>;
/** The packaged GPU build: Vulkan, whose loader (libvulkan) GPU drivers install, on the portable build's CPU code
 *  (scripts/build-native.mjs --cpu portable --gpu vulkan), so it needs what that build needs of the CPU. */
export const PACKAGED_GPU_FILE = "native/build/cmake-portable-vulkan/Release/dream_native.node";
const PACKAGED_GPU_CPU_BUILD = "portable";
/** GPU builds from source (scripts/build-native.mjs --gpu NAME, for this machine's CPU), looked for in a checkout. */
const SOURCE_GPU_FILES = ["cuda", "metal", "vulkan"].map((gpu) => `native/build/cmake-${gpu}/Release/dream_native.node`);

/** The systems `npm run package` makes a .vsix for; macOS's carry no runtime (see packageRuntimeFiles). */
export const PACKAGE_TARGETS: Target[] = ["linux-x64", "win32-x64", "linux-arm64", "darwin-arm64", "darwin-x64"];

/** The runtime files the .vsix for `target` carries, from the package root, when packed on `packedOn`: its CPU builds
 *  (with the OpenMP runtime they load, on Linux) and the CPU probe, and on Linux x86-64 the Vulkan build. None for
 *  macOS: nothing here builds for it, and its users build the runtime on their Mac (Build the Runtime for This
 *  Machine…, from the source archive every package carries). */
export function packageRuntimeFiles(target: Target, packedOn: Target = HOST_TARGET): string[] {
    if (target.startsWith("darwin-")) return [];
    const cross = target === packedOn ? undefined : target;
    const withLibs = (addon: string) => [addon, ...(target.startsWith("linux-") ? [`${addon.slice(0, addon.lastIndexOf("/"))}/libgomp.so.1`] : [])];
    const files = packagedBuilds(archOf(target)).flatMap((b) => withLibs(packagedAddonFile(b, cross)));
    files.push(cpuProbeFile(cross));
    if (target === "linux-x64" && !cross) files.push(...withLibs(PACKAGED_GPU_FILE));
    return files;
}

/** Where the model runs: "auto" (a GPU runtime's GPU when it finds one, else the CPU), "cpu", or "VulkanN": that
 *  device of the Vulkan driver's list (ggml's GGML_VK_VISIBLE_DEVICES), a CPU Vulkan driver such as lavapipe
 *  included, which "auto" leaves out. package.json's dreamCoder.device declares the same. */
export type DevicePreference = string;

/** The addon the process runs on, and in words which build it is and why (for the log and the status bar). */
export interface LoadedRuntime {
    addon: NativeAddon;
    /** Whether it is a GPU build that found a GPU: models load with gpuLayers as asked; otherwise with none. */
    gpu: boolean;
    /** e.g. "Vulkan build", "avx512 build", "build from source". */
    build: string;
    /** Why a GPU runtime is not the one running, where one was looked for (one sentence), or undefined. */
    fallback?: string;
}

let preference: DevicePreference = "auto";
let runtime: LoadedRuntime | undefined;
let cpuRuntime: LoadedRuntime | undefined;
let addonBuild: string | undefined;

/** Where the next first load looks; the first load decides for the process (the client restarts the language
 *  server when dreamCoder.device changes). False when a runtime of another choice is already loaded. */
export function preferDevice(device: DevicePreference): boolean {
    if (runtime && device !== preference) return false;
    preference = device;
    return true;
}

/** The built addon the process runs on (loadRuntime()'s). */
export function loadAddon(): NativeAddon {
    return loadRuntime().addon;
}

/**
 * The runtime, loaded on first use: $DREAM_CODER_ADDON when set; else, unless the device preference is "cpu", a GPU
 * build (one built for this machine by Build the Runtime for This Machine… in a package, a checkout's from source,
 * else the packaged Vulkan build) when it loads and finds a GPU (or the Vulkan device named); else the CPU runtime
 * (cpuRuntimeOnly()).
 */
export function loadRuntime(): LoadedRuntime {
    if (runtime) return runtime;
    const forced = process.env.DREAM_CODER_ADDON;
    if (forced) {
        if (!existsSync(forced))
            throw new Error(`the native runtime is not built ($DREAM_CODER_ADDON names ${forced}, which does not exist): run "npm run build:native"`);
        const addon = require(forced) as NativeAddon;
        runtime = { addon, gpu: addon.devices().some((d) => d.type === "gpu"), build: "$DREAM_CODER_ADDON" };
        return runtime;
    }
    let fallback: string | undefined;
    const built = machineBuilt();
    const gpuFile = preference === "cpu" ? null : built && built.gpu !== "cpu" ? built.file : packagedFile(...SOURCE_GPU_FILES, PACKAGED_GPU_FILE);
    // The packaged one's CPU code must run on this CPU: loading it runs ggml's initialisation (SIGILL without AVX2).
    // Its folder has the CPU probe in a checkout; a package carries the probe once, beside the portable build.
    const probe =
        gpuFile &&
        [join(dirname(gpuFile), "dream_cpu.node"), ...PROBE_FILES.map((p) => join(gpuFile.slice(0, -join(PACKAGED_GPU_FILE).length), p))].find(existsSync);
    const lacking =
        gpuFile?.endsWith(join(PACKAGED_GPU_FILE)) && process.arch === "x64" && probe ? missingCpuFlags(PACKAGED_GPU_CPU_BUILD, cpuFeatures(probe) ?? []) : [];
    if (lacking.length) fallback = `this CPU lacks ${lacking.join(", ").toUpperCase()}, which the Vulkan runtime's CPU code needs`;
    else if (gpuFile) {
        const named = /^vulkan(\d+)$/i.exec(preference);
        // ggml reads it once, when the addon loads: the named device only (and not skipped for being a CPU).
        if (named) process.env.GGML_VK_VISIBLE_DEVICES = named[1];
        try {
            const addon = require(gpuFile) as NativeAddon;
            if (addon.devices().some((d) => d.type === "gpu")) {
                const build =
                    gpuFile === built?.file
                        ? `${TARGET_NAMES[built.gpu]} build for this machine`
                        : gpuFile.endsWith(join(PACKAGED_GPU_FILE))
                          ? "Vulkan build"
                          : "GPU build from source";
                runtime = { addon, gpu: true, build };
                return runtime;
            }
            fallback = named
                ? `dreamCoder.device names ${preference}, which the Vulkan driver does not list (vulkaninfo --summary numbers the devices)`
                : "no GPU found for the Vulkan runtime";
        } catch (e) {
            // No Vulkan loader (libvulkan.so.1), or a driver that fails: the first line says which.
            fallback = `the GPU runtime does not load on this system (${(e as Error).message.split("\n")[0]})`;
        }
    }
    runtime = { ...cpuRuntimeOnly(), fallback: fallback && `${fallback}: running on the CPU` };
    return runtime;
}

/** The runtime in words, for a benchmark's header: its build and, for a GPU build, the GPU it found. */
export function describeRuntime(): string {
    const r = loadRuntime();
    const gpu = r.gpu ? r.addon.devices().find((d) => d.type === "gpu") : undefined;
    return `${r.build}${gpu ? `, ${gpu.name} (${gpu.description})` : ", CPU"}`;
}

/** The CPU runtime: the nearest package folder's build from source (for this machine's CPU), else the best of its
 *  packaged builds that the CPU runs. What a model falls back to when the GPU runtime cannot load it. */
export function cpuRuntimeOnly(): LoadedRuntime {
    if (cpuRuntime) return cpuRuntime;
    const built = machineBuilt();
    if (built?.gpu === "cpu") {
        cpuRuntime = { addon: require(built.file) as NativeAddon, gpu: false, build: "build for this machine" };
        return cpuRuntime;
    }
    const found = runtimeHome();
    if (found?.endsWith(join(RUNTIME_SOURCE_FILE))) throw new NoRuntimeError();
    if (!found) throw new Error(`the native runtime is not built (no ${ADDON_FILE} in any folder above ${__dirname}): run "npm run build:native"`);
    const probe = PROBE_FILES.find((p) => found.endsWith(p));
    if (!probe) {
        cpuRuntime = { addon: require(found) as NativeAddon, gpu: false, build: "build from source" };
    } else {
        const addon = requirePackaged<NativeAddon>(packagedAddon(found.slice(0, -probe.length), found));
        cpuRuntime = { addon, gpu: false, build: `${addonBuild} build` };
    }
    return cpuRuntime;
}

/** A package with no runtime for this system (macOS's carry none) and none built for this machine: what models load
 *  with must be built first. */
export function runtimeMissing(): boolean {
    return !!runtimeHome()?.endsWith(join(RUNTIME_SOURCE_FILE)) && !builtRuntime();
}

/** The nearest folder's runtime, by its first file found: this machine's build from source (a checkout), a packaged
 *  CPU probe (a package with builds for this system), or only the runtime builder's source (a package with none, as
 *  macOS's); null where none is. */
function runtimeHome(): string | null {
    return packagedFile(ADDON_FILE, ...PROBE_FILES, join(RUNTIME_SOURCE_FILE));
}

/** Loading a model where runtimeMissing(): the sentence says what to do. */
export class NoRuntimeError extends Error {
    constructor() {
        const gpu = process.platform === "darwin" ? "Metal, for Apple GPUs: needs Xcode's command line tools and CMake" : "needs CMake and a C/C++ compiler";
        super(
            `this package carries no runtime for ${process.platform}-${process.arch}: build it on this machine with "Build the Runtime for This Machine…" (a few minutes; ${gpu})`
        );
        this.name = "NoRuntimeError";
    }
}

/** The instruction sets `build`'s code assumes (named as in /proc/cpuinfo) that `features` lacks: without one of them
 *  that build would die with SIGILL, not say why. */
export function missingCpuFlags(build: string, features: readonly string[], arch: PackagedArch = HOST_ARCH): string[] {
    const { builds, cpuFlags } = buildTable[arch];
    return builds[build].flatMap((option) => cpuFlags[option]).filter((f) => !features.includes(f));
}

/** The packaged builds a CPU with `features` runs, best first; null (the probe reads nothing on this system) gives
 *  the most portable one. */
export function packagedBuildsFor(features: readonly string[] | null, arch: PackagedArch = HOST_ARCH): string[] {
    const builds = packagedBuilds(arch);
    if (features === null) return builds.slice(-1);
    return builds.filter((b) => missingCpuFlags(b, features, arch).length === 0);
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

/** The best packaged build that this CPU runs in the package at `root` (whose CPU probe is `probe`), or a sentence for
 *  a system or CPU that runs none. */
function packagedAddon(root: string, probe: string): string {
    if (process.platform === "linux") {
        // Node's diagnostic report names the glibc it runs on (none: musl); a host without reports is not checked.
        const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
        const problem = header ? glibcProblem(header.glibcVersionRuntime) : null;
        if (problem) throw new Error(problem);
    }
    const features = cpuFeatures(probe);
    const builds = packagedBuildsFor(features);
    if (builds.length === 0 && features) {
        const portable = PACKAGED_BUILDS[PACKAGED_BUILDS.length - 1];
        throw new Error(
            `this CPU lacks ${missingCpuFlags(portable, features).join(", ").toUpperCase()}, which the packaged runtime needs: build Dream-Coder from source on this machine (docs/building.md), which compiles for its CPU`
        );
    }
    const files = builds.flatMap((b) => [packagedAddonFile(b, HOST_TARGET), packagedAddonFile(b)].map((f) => ({ build: b, file: join(root, f) })));
    const found = files.find((f) => existsSync(f.file));
    if (!found) throw new Error(`the native runtime is not built (no ${packagedAddonFile(builds[0])} in ${root}): run "npm run build:native"`);
    addonBuild = found.build;
    return found.file;
}

/** Which packaged CPU build loadAddon() loaded; undefined for a build from source or $DREAM_CODER_ADDON. */
export function loadedPackagedBuild(): string | undefined {
    return addonBuild;
}

/** The runtime Build the Runtime for This Machine… made (server/src/builder/), while it matches this package: preferred
 *  over the packaged builds. Not in a checkout, whose own build from source is for this machine already. */
function machineBuilt(): ReturnType<typeof builtRuntime> {
    const home = runtimeHome();
    return home && !home.endsWith(join(ADDON_FILE)) ? builtRuntime() : undefined;
}

/** The instruction sets this CPU has that the packaged builds use, as the CPU probe `probe` (native/src/cpu_features.cpp)
 *  reads them; null where it reads none (not x86-64, or arm64 outside Linux). */
function cpuFeatures(probe: string): string[] | null {
    return requirePackaged<{ features(): string[] | null }>(probe).features();
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

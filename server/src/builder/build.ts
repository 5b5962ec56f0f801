// Builds the runtime for this machine from the source archive the package carries: patched llama.cpp and the addon,
// with CMake (Ninja where installed), Release, GGML_NATIVE (this CPU's instruction sets) and one GPU backend. The
// work happens in a staging folder (runtime/.work/<target>: the unpacked source, CMake's build folder, build.log);
// only a finished build is moved into runtime/<target>/, so a cancelled or failed build leaves no half-built runtime
// in place. The staging folder is kept after a failure or a cancel (the next build of the same target and source
// resumes where it stopped) and removed after a success. The language server (dreamCoder/buildRuntime) and the
// CLI (dream-coder runtime build) both call buildRuntime.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, readdirSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import manifest from "../../../package.json";
import type { PullProgress } from "../../../common/protocol";
import { BUILT_ADDON, type BuiltRuntime, machineId, type RuntimeStamp, runtimeDirectory } from "./built";
import { type BuildHost, checkPrerequisites, RUNTIME_TARGETS, type RuntimeTarget, systemHost, TARGET_NAMES, type Toolchain } from "./prerequisites";
import { runtimeSource, sourceHash, unpackSource } from "./source";

export interface BuildOptions {
    gpu: RuntimeTarget;
    /** Parallel compile jobs (default: this machine's cores). */
    jobs?: number;
    signal?: AbortSignal;
    /** Three stages: unpacking the source, configuring, compiling. */
    onProgress?: (p: PullProgress) => void;
    /** Every line CMake and the compilers print (also written to build.log). */
    onOutput?: (line: string) => void;
    /** The runtime folder (default: ~/.cache/dream-coder/runtime). */
    dir?: string;
    /** The source archive (default: the package's). */
    source?: string;
    host?: BuildHost;
    /** The version the stamp names (default: package.json's). */
    packageVersion?: string;
}

export interface BuildResult extends BuiltRuntime {
    /** How long it took, in seconds. */
    seconds: number;
}

/** Why a build did not end with a runtime: missing tools, another build running, cancelled, or CMake failed. */
export class RuntimeBuildError extends Error {
    constructor(
        message: string,
        readonly reason: "prerequisites" | "busy" | "cancelled" | "failed",
        /** Prerequisites: each missing one's sentence (the message joins them). */
        readonly problems: string[] = [message]
    ) {
        super(message);
        this.name = "RuntimeBuildError";
    }
}

const STAGES = ["Unpacking the source", "Configuring", "Compiling"] as const;

/** Builds the `gpu` runtime for this machine and puts it in place of the built runtime there was; resolves to it. */
export async function buildRuntime(options: BuildOptions): Promise<BuildResult> {
    const { gpu, signal } = options;
    if (!RUNTIME_TARGETS.includes(gpu))
        throw new RuntimeBuildError(`"${gpu}" is not a runtime the builder makes: use ${RUNTIME_TARGETS.join(", ")}.`, "prerequisites");
    const host = options.host ?? systemHost();
    const started = Date.now();
    const check = await checkPrerequisites(gpu, host);
    if (check.problems.length) throw new RuntimeBuildError(check.problems.join(" "), "prerequisites", check.problems);
    const tools = check.tools as Toolchain;
    const archive = options.source ?? runtimeSource();
    const hash = sourceHash(archive);
    const dir = options.dir ?? runtimeDirectory();
    const workRoot = join(dir, ".work");
    const work = join(workRoot, gpu);
    const report = (stage: number, fraction: number, detail: string) =>
        options.onProgress?.({ stage: stage + 1, stages: STAGES.length, title: STAGES[stage], fraction: Math.max(0, Math.min(1, fraction)), detail });

    await mkdir(workRoot, { recursive: true });
    const unlock = await lock(join(workRoot, "lock"));
    try {
        // One staging folder at a time: another target's is dropped; this target's is kept if it unpacked this source.
        for (const other of readdirSync(workRoot).filter((f) => f !== gpu && f !== "lock")) await rm(join(workRoot, other), { recursive: true, force: true });
        const src = join(work, "source");
        const hashFile = join(work, "source-hash");
        if (!existsSync(hashFile) || (await readFile(hashFile, "utf8")) !== hash) {
            await rm(work, { recursive: true, force: true });
            report(0, 0, archive);
            const files = await unpackSource(archive, src, (fraction, path) => report(0, fraction, path), signal).catch((e) => {
                throw signal?.aborted ? cancelled(gpu) : e;
            });
            report(0, 1, `${files} files`);
            await writeFile(hashFile, hash);
        } else {
            report(0, 1, "unpacked by an earlier build");
        }
        signal?.throwIfAborted();

        const build = join(work, "build");
        const logFile = join(work, "build.log");
        const log = createWriteStream(logFile, { flags: "a" });
        const run = (stage: number, args: string[]) =>
            runCmake(gpu, STAGES[stage], tools.cmake, args, {
                host,
                tools,
                log,
                logFile,
                signal,
                report: (f, d) => report(stage, f, d),
                onOutput: options.onOutput
            });
        try {
            log.write(`\n== ${new Date().toISOString()}: ${TARGET_NAMES[gpu]} runtime, source ${hash}, ${machineId()}\n`);
            report(1, 0, "CMake");
            await run(1, configureArgs(gpu, src, build, tools, host));
            const jobs = options.jobs ?? availableParallelism();
            report(2, 0, `${jobs} jobs`);
            await run(2, ["--build", build, "--config", "Release", "--target", "dream_native", "--parallel", String(jobs)]);
        } finally {
            await new Promise((resolve) => log.end(resolve));
        }

        const addon = join(build, "Release", BUILT_ADDON);
        if (!existsSync(addon))
            throw new RuntimeBuildError(`The build finished without ${BUILT_ADDON} in ${dirname(addon)}: see ${join(work, "build.log")}.`, "failed");
        signal?.throwIfAborted();
        const seconds = Math.round((Date.now() - started) / 1000);
        const stamp: RuntimeStamp = {
            packageVersion: options.packageVersion ?? manifest.version,
            sourceHash: hash,
            gpu,
            machine: machineId(),
            built: new Date().toISOString(),
            seconds
        };
        const file = await install(dir, gpu, addon, join(work, "build.log"), stamp);
        await rm(work, { recursive: true, force: true });
        return { file, gpu, seconds };
    } catch (e) {
        if (signal?.aborted && !(e instanceof RuntimeBuildError && e.reason === "cancelled")) throw cancelled(gpu);
        throw e;
    } finally {
        await unlock();
    }
}

function cancelled(gpu: RuntimeTarget): RuntimeBuildError {
    return new RuntimeBuildError(`The ${TARGET_NAMES[gpu]} runtime build was cancelled; nothing was installed (the next build resumes its work).`, "cancelled");
}

/** CMake's configure command line for `gpu`: the same project as npm run build:native (native/CMakeLists.txt), without
 *  cmake-js; what cmake-js would pass (the Node-API headers, the output folder, macOS's link flags) is passed here. */
export function configureArgs(
    gpu: RuntimeTarget,
    src: string,
    build: string,
    tools: Pick<Toolchain, "ninja" | "nvcc">,
    host: Pick<BuildHost, "platform" | "arch">
): string[] {
    const on = (yes: boolean) => (yes ? "ON" : "OFF");
    const defs: Record<string, string> = {
        CMAKE_BUILD_TYPE: "Release",
        LLAMA_CPP_DIR: join(src, "llama.cpp"),
        CMAKE_JS_INC: [join(src, "node-api-headers"), join(src, "node-addon-api")].join(";"),
        NODE_ADDON_API_DIR: join(src, "node-addon-api"),
        CMAKE_CXX_FLAGS: "-DBUILDING_NODE_EXTENSION",
        CMAKE_LIBRARY_OUTPUT_DIRECTORY: join(build, "Release"),
        // For this machine: ggml's CPU code uses its instruction sets (-march=native), CUDA its GPU's architecture.
        GGML_NATIVE: "ON",
        DC_LLAMA_TOOLS: "OFF",
        GGML_CUDA: on(gpu === "cuda"),
        GGML_VULKAN: on(gpu === "vulkan"),
        // On by default on macOS: named, so that the cpu target there is the CPU alone.
        GGML_METAL: on(gpu === "metal")
    };
    if (gpu === "cuda") {
        // CMake uses the nvcc the check found (maybe in /usr/local/cuda/bin, off PATH). ggml-cuda picks the architectures:
        // this machine's GPU with GGML_NATIVE (CUDA 11.6 and CMake 3.24 or newer), else a list covering the common ones.
        defs.CMAKE_CUDA_COMPILER = tools.nvcc!;
        // Multi-GPU collectives: a system NCCL would become a shared library the addon needs; one GPU does without.
        defs.GGML_CUDA_NCCL = "OFF";
    }
    if (host.platform === "darwin") {
        // What cmake-js passes on macOS: Node-API's symbols come from the process that loads the addon.
        defs.CMAKE_SHARED_LINKER_FLAGS = "-undefined dynamic_lookup";
        defs.CMAKE_CXX_FLAGS += " -D_DARWIN_USE_64_BIT_INODE=1 -D_LARGEFILE_SOURCE -D_FILE_OFFSET_BITS=64";
        defs.CMAKE_OSX_ARCHITECTURES = host.arch === "x64" ? "x86_64" : host.arch;
    }
    return [
        "-S",
        join(src, "native"),
        "-B",
        build,
        ...(tools.ninja ? ["-G", "Ninja", `-DCMAKE_MAKE_PROGRAM=${tools.ninja}`] : []),
        "--no-warn-unused-cli",
        ...Object.entries(defs).map(([k, v]) => `-D${k}=${v}`)
    ];
}

/** How far a build is, from a line of its output: Ninja's "[n/N] …", Make's "[ p%] …"; undefined for other lines. */
export function buildFraction(line: string): number | undefined {
    const ninja = /^\[(\d+)\/(\d+)\]/.exec(line);
    if (ninja) return Number(ninja[1]) / Math.max(1, Number(ninja[2]));
    const make = /^\[\s*(\d+)%\]/.exec(line);
    return make ? Number(make[1]) / 100 : undefined;
}

/** A build's progress over its output lines, only ever growing: a nested build's lines (ggml-vulkan builds its shader
 *  generator as an ExternalProject, whose own "[1/4] …" Ninja prints) and Ninja's total growing do not move it back. */
export function progressOf(): (line: string) => number | undefined {
    let done = 0;
    let total = 0;
    return (line) => {
        const f = buildFraction(line);
        if (f === undefined || f < done) return undefined;
        // Ninja: the outer build printed its total first; a line with a smaller one is a nested build's.
        const steps = Number(/^\[\d+\/(\d+)\]/.exec(line)?.[1] ?? 0);
        if (steps < total) return undefined;
        total = steps;
        done = f;
        return f;
    };
}

interface RunContext {
    host: BuildHost;
    tools: Toolchain;
    log: NodeJS.WritableStream;
    logFile: string;
    signal?: AbortSignal;
    report: (fraction: number, detail: string) => void;
    onOutput?: (line: string) => void;
}

/** Runs CMake in its own process group (a cancel stops the compilers it started too), its output to the log. */
async function runCmake(gpu: RuntimeTarget, what: string, cmake: string, args: string[], ctx: RunContext): Promise<void> {
    ctx.signal?.throwIfAborted();
    ctx.log.write(`$ ${[cmake, ...args].map((a) => (/[\s;"']/.test(a) ? JSON.stringify(a) : a)).join(" ")}\n`);
    const env = { ...ctx.host.env };
    // ggml-cuda's CMake also looks for the toolkit from nvcc's folder; where that is off PATH it goes in front.
    if (ctx.tools.nvcc) env.PATH = [dirname(ctx.tools.nvcc), env.PATH].filter(Boolean).join(delimiter);
    const child = spawn(cmake, args, { env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    const tail: string[] = [];
    let fraction = 0;
    const progress = progressOf();
    const onLine = (line: string) => {
        ctx.log.write(`${line}\n`);
        ctx.onOutput?.(line);
        tail.push(line);
        if (tail.length > 200) tail.shift();
        const f = progress(line);
        if (f !== undefined) {
            fraction = f;
            ctx.report(f, line.replace(/^\[[^\]]*\]\s*/, "").slice(0, 120));
        } else if (line.startsWith("-- ")) {
            ctx.report(fraction, line.slice(3, 123));
        }
    };
    createInterface({ input: child.stdout! }).on("line", onLine);
    createInterface({ input: child.stderr! }).on("line", onLine);
    const stop = () => killGroup(child);
    ctx.signal?.addEventListener("abort", stop, { once: true });
    // CMake runs in a process group of its own, which would outlive this process: a process that exits (the language
    // server shut down, the CLI ended) stops it first. SIGTERM, not SIGKILL: Ninja starts each compiler in a process
    // group of its own, which only Ninja itself, on SIGTERM, stops; killed, it would leave them compiling.
    const onExit = () => signalGroup(child, "SIGTERM");
    process.once("exit", onExit);
    try {
        const code = await new Promise<number | null>((resolve, reject) => {
            child.on("error", reject);
            child.on("close", (c) => resolve(c));
        });
        if (ctx.signal?.aborted) throw cancelled(gpu);
        if (code !== 0) {
            throw new RuntimeBuildError(
                `The ${TARGET_NAMES[gpu]} runtime build failed while ${what.toLowerCase()} (cmake exited with ${code ?? "a signal"}): ${errorLines(tail).join(" / ")} — the whole output is in ${ctx.logFile}.`,
                "failed"
            );
        }
    } finally {
        ctx.signal?.removeEventListener("abort", stop);
        process.off("exit", onExit);
    }
}

/** The lines of a failed build's output that say what went wrong: CMake's and the compilers' errors, else its end. */
export function errorLines(lines: string[]): string[] {
    // "error" as a word: a compiler's command line (-Werror=…) is no error.
    const errors = lines.filter((l) => /\berror\b|could not find|not found|no such file/i.test(l) && !/^\[\d+\/\d+\]|^FAILED:/.test(l)).map((l) => l.trim());
    return (errors.length ? errors.slice(0, 6) : lines.slice(-6)).map((l) => (l.length > 300 ? `${l.slice(0, 300)}…` : l));
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
    try {
        process.kill(-child.pid!, signal);
    } catch {
        // already gone
    }
}

/** Stops a process group: SIGTERM, then SIGKILL if it is still there after 5 s. */
function killGroup(child: ChildProcess): void {
    signalGroup(child, "SIGTERM");
    const timer = setTimeout(() => signalGroup(child, "SIGKILL"), 5000);
    child.once("close", () => clearTimeout(timer));
}

/** Puts the finished addon in place as runtime/<gpu>/, replacing the built runtime there was (of any target). */
async function install(dir: string, gpu: RuntimeTarget, addon: string, log: string, stamp: RuntimeStamp): Promise<string> {
    const fresh = join(dir, `.new-${gpu}-${process.pid}`);
    await rm(fresh, { recursive: true, force: true });
    await mkdir(fresh, { recursive: true });
    await copyFile(addon, join(fresh, BUILT_ADDON));
    await copyFile(log, join(fresh, "build.log"));
    await writeFile(join(fresh, "stamp.json"), `${JSON.stringify(stamp, null, 2)}\n`);
    const target = join(dir, gpu);
    const old = join(dir, `.old-${gpu}-${process.pid}`);
    // A loaded addon stays mapped in the process that loaded it when its folder is renamed and removed (Linux, macOS).
    if (existsSync(target)) await rename(target, old);
    await rename(fresh, target);
    await rm(old, { recursive: true, force: true });
    for (const other of RUNTIME_TARGETS.filter((g) => g !== gpu)) await rm(join(dir, other), { recursive: true, force: true });
    return join(target, BUILT_ADDON);
}

/** One build at a time on this machine (two editor windows share the folder): a lock file naming the process. */
async function lock(file: string): Promise<() => Promise<void>> {
    for (let attempt = 0; ; attempt++) {
        try {
            await writeFile(file, String(process.pid), { flag: "wx" });
            return () => rm(file, { force: true });
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw e;
            const pid = Number(await readFile(file, "utf8").catch(() => ""));
            if (pid && pid !== process.pid && alive(pid)) {
                throw new RuntimeBuildError(`Another runtime build is running (process ${pid}): wait for it to finish, or cancel it.`, "busy");
            }
            if (pid === process.pid)
                throw new RuntimeBuildError("A runtime build is already running in this process: wait for it to finish, or cancel it.", "busy");
            await rm(file, { force: true }); // left by a process that is gone
        }
    }
}

function alive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

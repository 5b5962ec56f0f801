// What building the runtime needs on this machine, checked before anything is built: each missing tool is one
// sentence that names what to install. The machine is a BuildHost (platform, environment, a command runner, the
// install prefixes searched for libraries), so that the tests can check every sentence with a fake one on Linux.
import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, readdirSync, realpathSync, statSync } from "node:fs";
import { delimiter, dirname, join, normalize } from "node:path";
import { RUNTIME_TARGETS, type RuntimeTarget } from "../../../common/protocol";

export { RUNTIME_TARGETS, type RuntimeTarget };
export const TARGET_NAMES: Record<RuntimeTarget, string> = { cpu: "CPU", vulkan: "Vulkan", cuda: "CUDA", metal: "Metal" };

/** The CMake each target needs: the highest cmake_minimum_required of the CMakeLists files it configures
 *  (native/CMakeLists.txt 3.18, llama.cpp and ggml 3.14, ggml-cuda 3.18, ggml-vulkan 3.19; the builder test reads
 *  them from the archive). */
export const CMAKE_MINIMUM: Record<RuntimeTarget, string> = { cpu: "3.18", vulkan: "3.19", cuda: "3.18", metal: "3.18" };
/** The CUDA toolkit llama.cpp's CUDA backend needs: ggml-cuda's CMakeLists builds for architecture 86 (RTX 3000)
 *  unless CMake finds this machine's GPU itself (CUDA 11.6 and CMake 3.24 or newer), and 86 needs CUDA 11.1. */
export const CUDA_MINIMUM = "11.1";

export interface RunResult {
    /** The exit code; null when the program could not be started. */
    code: number | null;
    /** stdout and stderr together. */
    output: string;
}

/** The machine the builder checks and builds on. */
export interface BuildHost {
    platform: NodeJS.Platform;
    arch: string;
    /** PATH, CC, CXX, CUDA_PATH, VULKAN_SDK are read. */
    env: NodeJS.ProcessEnv;
    /** Runs a program to ask it something (a version); never rejects. */
    run(file: string, args: string[]): Promise<RunResult>;
    /** Install prefixes searched for the Vulkan headers, loader and SPIR-V headers (after $VULKAN_SDK). */
    prefixes: string[];
    /** Where the CUDA toolkit is when $CUDA_PATH does not say (its bin/ may be off PATH): /usr/local/cuda. */
    cudaHome: string;
}

/** Runs `file` with `args`, its output collected; a program that cannot be started gives code null. */
export function runProgram(file: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
    return new Promise((resolve) => {
        let output = "";
        const child = spawn(file, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        child.stdout.on("data", (d) => (output += d));
        child.stderr.on("data", (d) => (output += d));
        child.on("error", (e) => resolve({ code: null, output: e.message }));
        child.on("close", (code) => resolve({ code: code ?? -1, output }));
    });
}

/** This machine. On macOS a program started from the Dock gets a short PATH: Homebrew's folders are added. */
export function systemHost(): BuildHost {
    const env = { ...process.env };
    if (process.platform === "darwin") {
        const path = (env.PATH ?? "").split(delimiter).filter(Boolean);
        env.PATH = [...path, ...["/opt/homebrew/bin", "/usr/local/bin"].filter((d) => !path.includes(d))].join(delimiter);
    }
    return {
        platform: process.platform,
        arch: process.arch,
        env,
        run: (file, args) => runProgram(file, args, env),
        prefixes: process.platform === "darwin" ? ["/opt/homebrew", "/usr/local", "/usr"] : ["/usr/local", "/usr"],
        cudaHome: "/usr/local/cuda"
    };
}

/** The first executable `name` on the host's PATH, or undefined. */
export function findOnPath(host: Pick<BuildHost, "env">, name: string): string | undefined {
    for (const dir of (host.env.PATH ?? "").split(delimiter).filter(Boolean)) {
        const file = join(dir, name);
        if (isExecutable(file)) return file;
    }
    return undefined;
}

function isExecutable(file: string): boolean {
    try {
        accessSync(file, constants.X_OK);
        return statSync(file).isFile();
    } catch {
        return false;
    }
}

/** A folder's entries, or undefined for what is no folder. */
function readdirSafe(dir: string): string[] | undefined {
    try {
        return readdirSync(dir);
    } catch {
        return undefined;
    }
}

/** A compiler named by an environment variable (CC, CXX: a name on PATH or a path, maybe with flags after it), else
 *  the first of `names` on PATH. */
function findCompiler(host: BuildHost, variable: string, names: string[]): string | undefined {
    const named = host.env[variable]?.trim().split(/\s+/)[0];
    if (named) return named.includes("/") ? (isExecutable(named) ? named : undefined) : findOnPath(host, named);
    for (const name of names) {
        const found = findOnPath(host, name);
        if (found) return found;
    }
    return undefined;
}

/** "3.25.1" ≥ "3.19"? Missing parts count as 0. */
export function versionAtLeast(version: string, minimum: string): boolean {
    const a = version.split(".").map(Number);
    const b = minimum.split(".").map(Number);
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
        const x = a[i] || 0;
        const y = b[i] || 0;
        if (x !== y) return x > y;
    }
    return true;
}

/** The tools a build uses, found by checkPrerequisites. */
export interface Toolchain {
    cmake: string;
    cmakeVersion: string;
    /** Ninja where it is installed (the build's progress is then counted in its steps); else CMake's default generator. */
    ninja?: string;
    cxx: string;
    nvcc?: string;
    cudaVersion?: string;
}

export interface PrerequisiteCheck {
    /** One sentence for each missing prerequisite, naming what to install; empty when the target can be built. */
    problems: string[];
    /** Complete when `problems` is empty. */
    tools: Partial<Toolchain>;
}

/** How to install a package on this platform, for the sentences: Debian/Ubuntu's apt names on Linux, Homebrew's on macOS. */
function install(host: BuildHost, apt: string, brew?: string): string {
    if (host.platform === "darwin") return brew ? `brew install ${brew}` : "";
    return `on Debian or Ubuntu: sudo apt-get install ${apt}`;
}

/** Checks what building `gpu` needs on `host`; nothing is built or changed. */
export async function checkPrerequisites(gpu: RuntimeTarget, host: BuildHost = systemHost()): Promise<PrerequisiteCheck> {
    const problems: string[] = [];
    const tools: Partial<Toolchain> = {};
    if (host.platform === "win32") {
        return { problems: ["The runtime builder does not build on Windows yet: it builds on Linux and macOS."], tools };
    }
    if (host.platform !== "linux" && host.platform !== "darwin") {
        return { problems: [`The runtime builder builds on Linux and macOS, not on ${host.platform}.`], tools };
    }
    if (gpu === "metal" && host.platform !== "darwin") {
        problems.push("Metal is Apple's GPU interface and builds on macOS only: on this machine build the vulkan or cuda runtime (or cpu).");
    }
    if (gpu === "cuda" && host.platform === "darwin") {
        problems.push("CUDA does not run on macOS: build the metal runtime (llama.cpp's default there) or cpu.");
    }

    // CMake, at least the version the target's CMakeLists files ask for.
    const minimum = CMAKE_MINIMUM[gpu];
    const cmake = findOnPath(host, "cmake");
    const getCmake = `install CMake ${minimum} or newer (${[install(host, "cmake", "cmake"), "or from cmake.org"].filter(Boolean).join(", ")})`;
    if (!cmake) {
        problems.push(`CMake is not installed (no cmake on PATH): ${getCmake}.`);
    } else {
        const r = await host.run(cmake, ["--version"]);
        const version = /cmake version (\d+\.\d+(?:\.\d+)?)/i.exec(r.output)?.[1];
        if (!version) problems.push(`${cmake} --version did not say which CMake it is (${firstLine(r.output)}): ${getCmake}.`);
        else if (!versionAtLeast(version, minimum))
            problems.push(`CMake ${version} (${cmake}) is older than ${minimum}, which the ${TARGET_NAMES[gpu]} build needs: ${getCmake}.`);
        else Object.assign(tools, { cmake, cmakeVersion: version });
    }
    tools.ninja = findOnPath(host, "ninja");

    // C and C++ compilers: on macOS Apple's, from the Xcode command line tools (which also give the Metal SDK).
    const xcode = host.platform === "darwin" ? await host.run("xcode-select", ["-p"]) : undefined;
    if (xcode && xcode.code !== 0) {
        problems.push("The Xcode command line tools are not installed (xcode-select -p finds none): install them with xcode-select --install.");
    } else {
        const cxx = findCompiler(host, "CXX", ["c++", "g++", "clang++"]);
        const cc = findCompiler(host, "CC", ["cc", "gcc", "clang"]);
        if (!cxx || !cc) {
            const missing = [!cc && "C", !cxx && "C++"].filter(Boolean).join(" and ");
            const looked = [
                !cc && (host.env.CC ? `$CC is ${host.env.CC}` : "cc, gcc, clang"),
                !cxx && (host.env.CXX ? `$CXX is ${host.env.CXX}` : "c++, g++, clang++")
            ];
            const how = xcode ? "install the Xcode command line tools (xcode-select --install)" : `install GCC (${install(host, "g++")})`;
            problems.push(`No ${missing} compiler was found (${looked.filter(Boolean).join("; ")}): ${how}.`);
        } else {
            tools.cxx = cxx;
        }
    }

    if (gpu === "cuda" && host.platform !== "darwin") await checkCuda(host, problems, tools);
    if (gpu === "vulkan") checkVulkan(host, problems);
    return { problems, tools };
}

function firstLine(text: string): string {
    return text.trim().split("\n")[0] || "no output";
}

/** nvcc where CMake would look for it: PATH, $CUDA_PATH/bin, /usr/local/cuda/bin. */
export function findNvcc(host: BuildHost): string | undefined {
    const onPath = findOnPath(host, "nvcc");
    if (onPath) return onPath;
    for (const dir of [host.env.CUDA_PATH && join(host.env.CUDA_PATH, "bin"), join(host.cudaHome, "bin")]) {
        if (dir && isExecutable(join(dir, "nvcc"))) return join(dir, "nvcc");
    }
    return undefined;
}

async function checkCuda(host: BuildHost, problems: string[], tools: Partial<Toolchain>): Promise<void> {
    const getCuda = `install the CUDA toolkit ${CUDA_MINIMUM} or newer (developer.nvidia.com/cuda-downloads, or ${install(host, "nvidia-cuda-toolkit")})`;
    const nvcc = findNvcc(host);
    if (!nvcc) {
        problems.push(`The CUDA compiler nvcc was not found (on PATH, in $CUDA_PATH/bin or /usr/local/cuda/bin): ${getCuda}.`);
        return;
    }
    const r = await host.run(nvcc, ["--version"]);
    const version = /release (\d+\.\d+)/.exec(r.output)?.[1];
    if (!version) {
        problems.push(`${nvcc} --version did not say which CUDA it is (${firstLine(r.output)}): ${getCuda}.`);
    } else if (!versionAtLeast(version, CUDA_MINIMUM)) {
        problems.push(`${nvcc} is CUDA ${version}, and llama.cpp's CUDA backend needs CUDA ${CUDA_MINIMUM} or newer: ${getCuda}.`);
    } else {
        Object.assign(tools, { nvcc, cudaVersion: version });
        // cuBLAS, which ggml-cuda links (CUDA::cublas): part of NVIDIA's toolkit, a package of its own elsewhere (a
        // toolkit from pip or conda may lack it). Looked for beside the toolkit nvcc belongs to: nvcc --dryrun names
        // it (TOP), also through a wrapper script; else the folder above nvcc's.
        const dry = await host.run(nvcc, ["--dryrun", "-x", "cu", "-c", "/dev/null", "-o", "/dev/null"]);
        const top = /^#\$ TOP=(.+)$/m.exec(dry.output)?.[1]?.trim() ?? join(dirname(realpathSafe(nvcc)), "..");
        const targets = join(top, "targets");
        const dirs = [...libDirs(top), ...(readdirSafe(targets) ?? []).map((t) => join(targets, t, "lib"))];
        if (!dirs.some((d) => existsSync(join(d, "libcublas.so")))) {
            problems.push(
                `cuBLAS (libcublas.so), which llama.cpp's CUDA backend links, was not found beside ${nvcc} (in ${normalize(top)}): install the CUDA toolkit's cuBLAS (NVIDIA's cuda-toolkit or libcublas-dev packages, ${install(host, "nvidia-cuda-toolkit")}).`
            );
        }
    }
}

function realpathSafe(file: string): string {
    try {
        return realpathSync(file);
    } catch {
        return file;
    }
}

/** The folders a prefix keeps libraries in: lib, lib64 and Debian's multiarch lib/<triplet>. */
function libDirs(prefix: string): string[] {
    const lib = join(prefix, "lib");
    const multiarch = (readdirSafe(lib) ?? []).filter((d) => /-linux-gnu/.test(d)).map((d) => join(lib, d));
    return [lib, join(prefix, "lib64"), ...multiarch];
}

/** What ggml-vulkan's CMakeLists asks for: find_package(Vulkan COMPONENTS glslc) (headers, loader, glslc) and
 *  find_package(SPIRV-Headers CONFIG). */
function checkVulkan(host: BuildHost, problems: string[]): void {
    const sdk = host.env.VULKAN_SDK;
    const prefixes = [...(sdk ? [sdk] : []), ...host.prefixes];
    const getSdk = (apt: string, brew: string) =>
        host.platform === "darwin"
            ? `install the Vulkan SDK (vulkan.lunarg.com) or brew install ${brew}`
            : `install the Vulkan SDK (vulkan.lunarg.com), or ${install(host, apt)}`;
    const loader = host.platform === "darwin" ? "libvulkan.dylib" : "libvulkan.so";
    if (!prefixes.some((p) => existsSync(join(p, "include", "vulkan", "vulkan.h")))) {
        problems.push(`The Vulkan headers (vulkan/vulkan.h) were not found: ${getSdk("libvulkan-dev", "vulkan-headers")}.`);
    }
    if (!prefixes.some((p) => libDirs(p).some((d) => existsSync(join(d, loader))))) {
        problems.push(`The Vulkan loader library (${loader}) was not found: ${getSdk("libvulkan-dev", "vulkan-loader")}.`);
    }
    if (!findOnPath(host, "glslc") && !(sdk && isExecutable(join(sdk, "bin", "glslc")))) {
        problems.push(`The Vulkan shader compiler glslc was not found (on PATH or in $VULKAN_SDK/bin): ${getSdk("glslc", "shaderc")}.`);
    }
    const spirv = (p: string) => [join(p, "share", "cmake"), ...libDirs(p).map((d) => join(d, "cmake")), join(p, "share")];
    if (!prefixes.some((p) => spirv(p).some((d) => existsSync(join(d, "SPIRV-Headers", "SPIRV-HeadersConfig.cmake"))))) {
        problems.push(`The SPIR-V headers (SPIRV-HeadersConfig.cmake) were not found: ${getSdk("spirv-headers", "spirv-headers")}.`);
    }
}

#!/usr/bin/env node
// Builds native/ (the addon) against llama.cpp from node-llama-cpp's bundled git release, with our patches.
// Offline: the source comes from node_modules/node-llama-cpp/llama/gitRelease.bundle.
// Skips all work when the addon sources, patches and build switches are unchanged since the last build.
//
//   node scripts/build-native.mjs [--gpu cuda|metal|vulkan] [--cpu native|NAME] [--target PLATFORM-ARCH] [--force]
//   (or DREAM_CODER_GPU=cuda DREAM_CODER_CPU=portable npm run build:native)
//
// --cpu native (the default): ggml's CPU code for this machine's CPU (-march=native), in native/build/cmake/.
// --cpu NAME: one of the packaged CPU builds of native/cpu-builds.json, in native/build/cmake-NAME/: on x86-64,
// portable (any CPU with AVX2, FMA and F16C: Intel Haswell and AMD Excavator or later) or avx512 (AVX-512 with VBMI
// and VNNI: Intel Ice Lake, AMD Zen 4 and later); on arm64, armv8 (any) or dotprod. A package carries them all, since
// it runs on other CPUs than the one that built it (a -march=native build from an AVX-512 machine dies with SIGILL
// elsewhere), and the runtime loads the best one the CPU runs.
// --target PLATFORM-ARCH (as Node names them, e.g. win32-x64, linux-arm64): cross-compiles a packaged CPU build for
// that system with the CMake toolchain file native/toolchains/TARGET.cmake, into native/build/cmake-NAME-TARGET/.
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundle, clonePatchedLlama, llamaPkg, patches, requireBundle } from "./llama-source.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const buildDir = join(nativeDir, "build");
const srcDir = join(buildDir, "llama.cpp");
const stampFile = join(buildDir, "stamp.json");

const args = process.argv.slice(2);
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const gpuArg = option("--gpu") ?? process.env.DREAM_CODER_GPU;
const gpu = (gpuArg || "cpu").toLowerCase();
// Each backend's option on, the others off (all named: a build folder's CMake cache keeps what it was last given).
const gpuOptions = { cuda: "GGML_CUDA", metal: "GGML_METAL", vulkan: "GGML_VULKAN" };
const gpuFlags = Object.fromEntries(
    ["cpu", ...Object.keys(gpuOptions)].map((g) => [g, Object.entries(gpuOptions).map(([name, option]) => `${option}=${name === g ? "ON" : "OFF"}`)])
);
if (!(gpu in gpuFlags)) {
    console.error(`unknown GPU backend '${gpu}': use cpu, cuda, metal or vulkan`);
    process.exit(2);
}
const host = `${process.platform}-${process.arch}`;
const target = option("--target") ?? host;
const cross = target !== host;
const toolchain = join(nativeDir, "toolchains", `${target}.cmake`);
if (cross && !existsSync(toolchain)) {
    const known = readdirSync(join(nativeDir, "toolchains")).map((f) => f.replace(/\.cmake$/, ""));
    console.error(`no toolchain for target '${target}': this machine builds ${host}, and cross-builds ${known.join(", ")}`);
    process.exit(2);
}
const targetArch = target.split("-")[1];
const archBuilds = JSON.parse(readFileSync(join(root, "native", "cpu-builds.json"), "utf8"))[targetArch];
if (cross && !archBuilds) {
    console.error(`native/cpu-builds.json has no packaged CPU builds for ${targetArch}`);
    process.exit(2);
}
// A cross build is a packaged one: by default the target's most portable.
const cpuArg = option("--cpu") ?? process.env.DREAM_CODER_CPU ?? (cross ? Object.keys(archBuilds.builds).at(-1) : undefined);
const cpu = (cpuArg || "native").toLowerCase();
// The packaged CPU builds (native/cpu-builds.json): GGML_NATIVE off and the instruction sets named (x86-64: ggml's
// options, on when listed; arm64: -march's extensions); the package needs only the addon, so no llama.cpp tools (the
// tests use the native build's). They run on other systems than this one, where GCC's OpenMP runtime (libgomp), which
// ggml's threads use, may be missing: it is copied beside the addon, which looks there first (DC_BUNDLE_OPENMP).
// ggml's own thread pool instead (GGML_OPENMP off) was measured 1.2x slower on idle cores and 1.8x with both cores
// busy (docs/building.md).
const cpuFlags = cross ? {} : { native: [] };
for (const [name, on] of Object.entries(archBuilds?.builds ?? {})) {
    const instructionSets =
        targetArch === "x64"
            ? Object.keys(archBuilds.cpuFlags).map((o) => `${o}=${on.includes(o) ? "ON" : "OFF"}`)
            : [`GGML_CPU_ARM_ARCH=${on.length ? ["armv8.2-a", ...on].join("+") : "armv8-a"}`];
    cpuFlags[name] = ["GGML_NATIVE=OFF", ...instructionSets, "DC_LLAMA_TOOLS=OFF", "GGML_OPENMP=ON", "DC_BUNDLE_OPENMP=ON"];
}
if (!(cpu in cpuFlags)) {
    console.error(`unknown CPU target '${cpu}' for ${target}: use ${Object.keys(cpuFlags).join(", ")}`);
    process.exit(2);
}
if (cross && gpu !== "cpu") {
    console.error(`a cross build (${target}) is a CPU build: --gpu ${gpu} builds on the machine it is for`);
    process.exit(2);
}
// cmake/ for this machine's CPU, cmake-CPU/ for a packaged CPU build, with -GPU/ for a GPU backend (cmake-vulkan/,
// cmake-portable-vulkan/) and -TARGET/ for a cross build (cmake-portable-win32-x64/): each keeps its own CMake cache.
const buildName = ["cmake", cpu !== "native" && cpu, gpu !== "cpu" && gpu, cross && target].filter(Boolean).join("-");
const cmakeOut = join(buildDir, buildName);
const jobs = Number(process.env.DREAM_CODER_JOBS) || availableParallelism();

function sh(cmd, argv, opts = {}) {
    execFileSync(cmd, argv, { stdio: "inherit", ...opts });
}

function filesUnder(dir) {
    return readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
        .sort();
}

requireBundle();
const hash = (files, extra) => {
    const h = createHash("sha256").update(extra);
    for (const f of files) h.update(f.slice(root.length)).update(readFileSync(f));
    return h.digest("hex").slice(0, 16);
};
const llamaInfo = readFileSync(join(llamaPkg, "llama.cpp.info.json"), "utf8");
const sourceHash = hash(patches, llamaInfo + statSync(bundle).size);
const addonHash = hash(
    [join(nativeDir, "CMakeLists.txt"), ...filesUnder(join(nativeDir, "src")), join(nativeDir, "package.json")],
    sourceHash + gpu + cpu + target + cpuFlags[cpu].join(" ") + (cross ? readFileSync(toolchain, "utf8") : "")
);
const addonPath = join(cmakeOut, "Release", "dream_native.node");

// { sourceHash, addons: { [build folder]: addonHash } }: the llama.cpp tree is shared by the builds.
const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, "utf8")) : {};
stamp.addons ??= {};
if (!args.includes("--force") && stamp.addons[buildName] === addonHash && existsSync(addonPath)) {
    console.log(`native addon up to date (${gpu}, ${cpu} CPU, ${target}): ${addonPath}`);
    process.exit(0);
}

const started = Date.now();
mkdirSync(buildDir, { recursive: true });
if (stamp.sourceHash !== sourceHash || !existsSync(join(srcDir, "CMakeLists.txt"))) {
    console.log(`preparing llama.cpp from ${bundle} with ${patches.length} patch(es)`);
    rmSync(srcDir, { recursive: true, force: true });
    for (const folder of readdirSync(buildDir).filter((f) => f.startsWith("cmake"))) rmSync(join(buildDir, folder), { recursive: true, force: true });
    clonePatchedLlama(srcDir);
    stamp.sourceHash = sourceHash;
    stamp.addons = {};
    writeFileSync(stampFile, JSON.stringify(stamp));
}

const cmakeDefs = [
    `LLAMA_CPP_DIR=${srcDir}`,
    "CMAKE_BUILD_TYPE=Release",
    ...gpuFlags[gpu],
    ...cpuFlags[cpu],
    ...(cross ? [`CMAKE_TOOLCHAIN_FILE=${toolchain}`] : [])
];
// configure, then build: `cmake-js build` alone configures only a new folder, so in an existing one changed
// switches (another GPU backend, a build's new options) would not reach CMake's cache.
for (const command of ["configure", "build"]) {
    sh(
        process.execPath,
        [
            join(root, "node_modules", "cmake-js", "bin", "cmake-js"),
            command,
            "--directory",
            nativeDir,
            "--out",
            cmakeOut,
            "--generator",
            "Ninja",
            "--parallel",
            String(jobs),
            "--log-level",
            "warn",
            ...cmakeDefs.map((d) => `--CD${d}`)
        ],
        { cwd: root }
    );
}

stamp.addons[buildName] = addonHash;
writeFileSync(stampFile, JSON.stringify(stamp));
console.log(`native addon built (${gpu}, ${cpu} CPU, ${target}) in ${((Date.now() - started) / 1000).toFixed(0)} s: ${addonPath}`);

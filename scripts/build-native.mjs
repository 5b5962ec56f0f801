#!/usr/bin/env node
// Builds native/ (the addon) against llama.cpp from node-llama-cpp's bundled git release, with our patches.
// Offline: the source comes from node_modules/node-llama-cpp/llama/gitRelease.bundle.
// Skips all work when the addon sources, patches and build switches are unchanged since the last build.
//
//   node scripts/build-native.mjs [--gpu cuda|metal|vulkan] [--force]
//   (or DREAM_CODER_GPU=cuda npm run build:native)
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const nativeDir = join(root, "native");
const buildDir = join(nativeDir, "build");
const srcDir = join(buildDir, "llama.cpp");
const cmakeOut = join(buildDir, "cmake");
const stampFile = join(buildDir, "stamp.json");
const llamaPkg = join(root, "node_modules", "node-llama-cpp", "llama");
const bundle = join(llamaPkg, "gitRelease.bundle");

const args = process.argv.slice(2);
const gpuArg = args.includes("--gpu") ? args[args.indexOf("--gpu") + 1] : process.env.DREAM_CODER_GPU;
const gpu = (gpuArg || "cpu").toLowerCase();
const gpuFlags = {
    cpu: ["GGML_METAL=OFF"],
    cuda: ["GGML_CUDA=ON", "GGML_METAL=OFF"],
    metal: ["GGML_METAL=ON"],
    vulkan: ["GGML_VULKAN=ON", "GGML_METAL=OFF"]
};
if (!(gpu in gpuFlags)) {
    console.error(`unknown GPU backend '${gpu}': use cpu, cuda, metal or vulkan`);
    process.exit(2);
}
const jobs = Number(process.env.DREAM_CODER_JOBS) || availableParallelism();

function sh(cmd, argv, opts = {}) {
    execFileSync(cmd, argv, { stdio: "inherit", ...opts });
}

function filesUnder(dir) {
    return readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
        .sort();
}

if (!existsSync(bundle)) {
    console.error(`llama.cpp source bundle not found at ${bundle}: run npm ci first`);
    process.exit(1);
}
const patches = filesUnder(join(nativeDir, "patches")).filter((f) => f.endsWith(".patch"));
const hash = (files, extra) => {
    const h = createHash("sha256").update(extra);
    for (const f of files) h.update(f.slice(root.length)).update(readFileSync(f));
    return h.digest("hex").slice(0, 16);
};
const llamaInfo = readFileSync(join(llamaPkg, "llama.cpp.info.json"), "utf8");
const sourceHash = hash(patches, llamaInfo + statSync(bundle).size);
const addonHash = hash([join(nativeDir, "CMakeLists.txt"), ...filesUnder(join(nativeDir, "src")), join(nativeDir, "package.json")], sourceHash + gpu);
const addonPath = join(cmakeOut, "Release", "dream_native.node");

const stamp = existsSync(stampFile) ? JSON.parse(readFileSync(stampFile, "utf8")) : {};
if (!args.includes("--force") && stamp.addonHash === addonHash && existsSync(addonPath)) {
    console.log(`native addon up to date (${gpu}): ${addonPath}`);
    process.exit(0);
}

const started = Date.now();
mkdirSync(buildDir, { recursive: true });
if (stamp.sourceHash !== sourceHash || !existsSync(join(srcDir, "CMakeLists.txt"))) {
    console.log(`preparing llama.cpp from ${bundle} with ${patches.length} patch(es)`);
    rmSync(srcDir, { recursive: true, force: true });
    rmSync(cmakeOut, { recursive: true, force: true });
    sh("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundle, srcDir]);
    for (const patch of patches) {
        console.log(`applying ${patch.slice(root.length + 1)}`);
        sh("git", ["apply", "--whitespace=nowarn", patch], { cwd: srcDir });
    }
    writeFileSync(stampFile, JSON.stringify({ sourceHash }));
}

const cmakeDefs = [`LLAMA_CPP_DIR=${srcDir}`, "CMAKE_BUILD_TYPE=Release", ...gpuFlags[gpu]];
sh(
    process.execPath,
    [
        join(root, "node_modules", "cmake-js", "bin", "cmake-js"),
        "build",
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

writeFileSync(stampFile, JSON.stringify({ sourceHash, addonHash, gpu }));
console.log(`native addon built (${gpu}) in ${((Date.now() - started) / 1000).toFixed(0)} s: ${addonPath}`);

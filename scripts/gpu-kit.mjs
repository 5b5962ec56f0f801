#!/usr/bin/env node
// Prepares native/build/gpu-kit/: what scripts/bench-gpu.sh needs on a bare GPU machine that has a compiler,
// CMake, nvcc (for CUDA; glslc and the Vulkan headers for Vulkan) and Python but no Node, no node_modules and no
// network. One ignored folder, so it travels as one `carry` path of the device tool (64 MiB for the tree and everything carried):
//   node.tar.xz   this machine's Node binary (the addon is a Node-API module; the benchmarks are JS)
//   src.tar.xz    llama.cpp cloned from node-llama-cpp's bundle with native/patches applied (llama-source.mjs, as build-native.mjs
//                 does, so the kit always matches the patches of this checkout), trimmed to what native/CMakeLists.txt builds (smaller than the
//                 35 MB git bundle + patches, and nothing to clone or apply there), the Node-API headers and
//                 node-addon-api, and the Qwen2.5 chat template the generated dream model carries
//   js/, runtime-bench.js   the benchmark and CLI entry points bundled by esbuild with their node_modules dependencies,
//                 in the same layout as out/ (lspClient finds server.js beside cli/)
//
//   node scripts/gpu-kit.mjs [--js]   (--js: refresh only js/, after a TypeScript change)
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { nodeLlamaCppDownloaderOnly } from "./esbuild-node-llama-cpp.mjs";
import { clonePatchedLlama, requireBundle } from "./llama-source.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const kit = join(root, "native", "build", "gpu-kit");
const LIMIT_MIB = 56; // the device tool carries 64 MiB with the working tree; leave the tree room

requireBundle();
const jsOnly = process.argv.includes("--js") && existsSync(join(kit, "src.tar.xz"));
if (!jsOnly) rmSync(kit, { recursive: true, force: true });
rmSync(join(kit, "js"), { recursive: true, force: true });
mkdirSync(kit, { recursive: true });
const stage = join(root, "native", "build", "gpu-kit-stage");
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
// Reproducible archives (names sorted, fixed times and owners): bench-gpu.sh unpacks an archive again only when
// its hash changes, and unchanged sources keep an old build up to date.
const xz = (out, dir, entries) =>
    execFileSync("tar", ["--sort=name", "--mtime=2026-01-01 00:00Z", "--owner=0", "--group=0", "--numeric-owner", "-cJf", out, "-C", dir, ...entries], {
        stdio: "inherit",
        env: { ...process.env, XZ_OPT: "-6 -T2" }
    });

if (!jsOnly) {
    // Node: the binary running this script (Linux x64 expected: the device is x86-64).
    mkdirSync(join(stage, "node", "bin"), { recursive: true });
    copyFileSync(process.execPath, join(stage, "node", "bin", "node"));
    xz(join(kit, "node.tar.xz"), stage, ["node"]);

    const llama = join(stage, "llama-full");
    clonePatchedLlama(llama);
    // llama.cpp: what the top-level CMakeLists, ggml (CPU, CUDA and Vulkan backends), src, common, vendor and the
    // three tools native/CMakeLists.txt adds read. The other GPU backends are only entered when switched on.
    const skipBackends = new Set([
        "ggml-cann",
        "ggml-et",
        "ggml-hexagon",
        "ggml-metal",
        "ggml-musa",
        "ggml-opencl",
        "ggml-openvino",
        "ggml-sycl",
        "ggml-virtgpu",
        "ggml-webgpu",
        "ggml-zdnn",
        "ggml-zendnn"
    ]);
    const keep = [
        "CMakeLists.txt",
        "LICENSE",
        "cmake",
        "ggml",
        "src",
        "include",
        "common",
        "vendor",
        "tools/llama-bench",
        "tools/quantize",
        "examples/diffusion",
        "models/templates/Qwen-Qwen2.5-7B-Instruct.jinja"
    ];
    for (const p of keep) {
        cpSync(join(llama, p), join(stage, "llama.cpp", p), {
            recursive: true,
            filter: (src) => !(dirname(src).endsWith(join("ggml", "src")) && skipBackends.has(src.split("/").pop()))
        });
    }
    cpSync(join(root, "node_modules", "node-api-headers", "include"), join(stage, "node-api-headers"), { recursive: true });
    mkdirSync(join(stage, "node-addon-api"));
    for (const f of readdirSync(join(root, "node_modules", "node-addon-api")).filter((f) => f.endsWith(".h"))) {
        copyFileSync(join(root, "node_modules", "node-addon-api", f), join(stage, "node-addon-api", f));
    }
    xz(join(kit, "src.tar.xz"), stage, ["llama.cpp", "node-api-headers", "node-addon-api"]);
}

// JS: bundled like scripts/bundle.mjs does for the extension (node-llama-cpp reduced to its downloader).
const onlyWhatWeUse = nodeLlamaCppDownloaderOnly(root);
const common = {
    absWorkingDir: root,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    logLevel: "warning",
    external: ["vscode", "@reflink/reflink"],
    plugins: [onlyWhatWeUse],
    define: { "import.meta.url": "__importMetaUrl" },
    banner: { js: 'const __importMetaUrl = require("node:url").pathToFileURL(__filename).href;' }
};
await build({ ...common, entryPoints: ["bench/bench-model.ts", "server/src/cli/main.ts", "server/src/server.ts"], outbase: ".", outdir: join(kit, "js") });
// The runtime bench finds the repository (its dual+reuse cells edit server/src/*.ts) three folders above its
// own: at native/build/gpu-kit/ that is the checkout's root, as it is for out/bench/ after tsc.
await build({ ...common, entryPoints: ["bench/runtime-bench.ts"], outfile: join(kit, "runtime-bench.js") });
rmSync(stage, { recursive: true, force: true });

const du = (p) => (statSync(p).isDirectory() ? readdirSync(p).reduce((a, f) => a + du(join(p, f)), 0) : statSync(p).size);
const sizes = Object.fromEntries(
    readdirSync(kit)
        .filter((f) => f !== "manifest.json")
        .map((f) => [f, du(join(kit, f))])
);
const total = Object.values(sizes).reduce((a, b) => a + b, 0);
writeFileSync(join(kit, "manifest.json"), JSON.stringify({ node: process.version, sizes, date: new Date().toISOString() }, null, 2));
for (const [f, s] of Object.entries(sizes)) console.log(`${f.padEnd(12)} ${(s / 2 ** 20).toFixed(1)} MiB`);
console.log(`gpu kit: ${(total / 2 ** 20).toFixed(1)} MiB in ${kit}`);
if (total > LIMIT_MIB * 2 ** 20) {
    console.error(`the kit is over ${LIMIT_MIB} MiB: it would not travel with the working tree`);
    process.exit(1);
}

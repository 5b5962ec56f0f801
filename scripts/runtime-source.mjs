#!/usr/bin/env node
// Makes native/build/runtime-source.tar.br: the source the runtime builder (server/src/builder/) compiles on a user's
// machine ("Dream-Coder: Build the Runtime for This Machine…", `dream-coder runtime build`), carried in the .vsix:
//   llama.cpp/          node-llama-cpp's bundled llama.cpp with native/patches applied (llama-source.mjs, as
//                       build-native.mjs builds it), trimmed to what native/CMakeLists.txt configures with
//                       DC_LLAMA_TOOLS=OFF: the CPU, CUDA, Metal, Vulkan and BLAS backends of ggml, no others, no
//                       docs, tests, tools, examples or models; of common/, the files the addon compiles itself
//   native/             CMakeLists.txt and src/ (the addon)
//   node-api-headers/   the Node-API C headers (node-api-headers' include/), so no Node headers are downloaded
//   node-addon-api/     node-addon-api's C++ headers
//   manifest.json       what went in: llama.cpp's release, the patches, the header packages' versions
// A ustar archive written by server/src/builder/tar.ts (out/ must be built: setup.sh runs this after tsc), compressed
// with Brotli by Node's zlib, which the builder unpacks it with: no tar or xz program needed on the user's machine.
// Brotli at quality 9 (a 24-bit window): 1.7 MiB in 2 s here, against gzip -9's 2.2 MiB; quality 11 gives 1.5 MiB but
// takes 32 s, on every change to native/src. Reproducible:
// the same inputs give the same bytes (the builder's stamps name the archive's hash). Skips all work when its
// inputs are unchanged since the last run (native/build/runtime-source.stamp); --force makes it again.
//
//   node scripts/runtime-source.mjs [--force] [--out FILE]
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants } from "node:zlib";
import { bundle, clonePatchedLlama, llamaPkg, patches, requireBundle } from "./llama-source.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const out = args.includes("--out") ? args[args.indexOf("--out") + 1] : join(root, "native", "build", "runtime-source.tar.br");
const stampFile = `${out.replace(/\.tar\.br$/, "")}.stamp`;
const tarModule = join(root, "out", "server", "src", "builder", "tar.js");
if (!existsSync(tarModule)) {
    console.error(`${tarModule} is missing: compile the TypeScript first (npx tsc -p .)`);
    process.exit(1);
}
const { writeTar } = createRequire(import.meta.url)(tarModule);

// llama.cpp's parts that native/CMakeLists.txt configures and builds with DC_LLAMA_TOOLS=OFF (LLAMA_BUILD_COMMON off:
// no common/, tools/ or examples/).
const KEEP = [
    "CMakeLists.txt",
    "LICENSE",
    "cmake",
    "ggml/CMakeLists.txt",
    "ggml/cmake",
    "ggml/include",
    "ggml/src",
    "include",
    "src",
    "vendor/CMakeLists.txt",
    "vendor/hash"
];
// ggml's backends: the four the builder offers and BLAS (on by default on macOS, with Accelerate). The others are
// only entered when switched on (ggml/src/CMakeLists.txt's ggml_add_backend), which the builder never does.
const BACKENDS = new Set(["ggml-cpu", "ggml-cuda", "ggml-metal", "ggml-vulkan", "ggml-blas"]);
// vendor/CMakeLists.txt always adds these header-only libraries as INTERFACE targets that nothing we build links
// (llama's own sources include none of them): their CMakeLists.txt is all CMake reads (miniaudio.h alone is 4 MB).
const HEADER_ONLY_VENDORS = ["miniaudio", "nlohmann", "sheredom", "stb"];

// The llama.cpp sources native/CMakeLists.txt compiles into the addon itself (${LLAMA_CPP_DIR}/common/fit.cpp, …), and
// the headers beside them.
const addonCmake = readFileSync(join(root, "native", "CMakeLists.txt"), "utf8");
const LLAMA_FILES = [...new Set([...addonCmake.matchAll(/\$\{LLAMA_CPP_DIR\}\/([\w./-]+\.(?:c|cpp))\b/g)].map((m) => m[1]))];

const filesUnder = (dir) =>
    readdirSync(dir, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]))
        .sort();
const addonSources = [join(root, "native", "CMakeLists.txt"), ...filesUnder(join(root, "native", "src"))];
const napiHeaders = join(root, "node_modules", "node-api-headers");
const addonApi = join(root, "node_modules", "node-addon-api");
const addonApiHeaders = readdirSync(addonApi)
    .filter((f) => f.endsWith(".h"))
    .sort()
    .map((f) => join(addonApi, f));
const version = (dir) => JSON.parse(readFileSync(join(dir, "package.json"), "utf8")).version;

requireBundle();
const llamaInfo = JSON.parse(readFileSync(join(llamaPkg, "llama.cpp.info.json"), "utf8"));
const inputs = createHash("sha256")
    .update(readFileSync(fileURLToPath(import.meta.url)))
    .update(readFileSync(tarModule))
    .update(JSON.stringify(llamaInfo) + statSync(bundle).size + version(napiHeaders) + version(addonApi));
for (const f of [...patches, ...addonSources]) inputs.update(relative(root, f)).update(readFileSync(f));
const inputHash = inputs.digest("hex");
if (!args.includes("--force") && existsSync(out) && existsSync(stampFile) && readFileSync(stampFile, "utf8") === inputHash) {
    console.log(`runtime source up to date: ${out}`);
    process.exit(0);
}

const started = Date.now();
const work = mkdtempSync(join(tmpdir(), "dream-coder-runtime-source-"));
try {
    const llama = join(work, "llama.cpp");
    clonePatchedLlama(llama);
    const entries = [];
    const addDir = (path) => entries.push({ path });
    const addFile = (path, file) => entries.push({ path, data: readFileSync(file), executable: (statSync(file).mode & 0o111) !== 0 });
    /** `dir` (absolute) as `as` in the archive, folders included, filtered by the archive path. */
    const addTree = (dir, as, keep = () => true) => {
        if (!statSync(dir).isDirectory()) return addFile(as, dir);
        addDir(as);
        for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
            const path = `${as}/${e.name}`;
            if (keep(path)) addTree(join(dir, e.name), path, keep);
        }
    };
    const backendOf = /^llama\.cpp\/ggml\/src\/(ggml-[^/]+)$/;
    const keepInLlama = (path) => {
        const backend = backendOf.exec(path);
        return !(backend && statSync(join(work, path)).isDirectory() && !BACKENDS.has(backend[1]));
    };
    const parents = new Set();
    const besideAddonFiles = [...new Set(LLAMA_FILES.map((f) => dirname(f)))].flatMap((d) =>
        readdirSync(join(llama, d))
            .filter((f) => f.endsWith(".h"))
            .map((f) => `${d}/${f}`)
    );
    const kept = [...KEEP, ...HEADER_ONLY_VENDORS.map((v) => `vendor/${v}/CMakeLists.txt`), ...LLAMA_FILES, ...besideAddonFiles];
    for (const p of [...new Set(kept)].sort()) {
        // The folders above each kept path, once, before it.
        const parts = `llama.cpp/${p}`.split("/");
        for (let i = 1; i < parts.length; i++) {
            const parent = parts.slice(0, i).join("/");
            if (!parents.has(parent)) addDir(parent);
            parents.add(parent);
        }
        addTree(join(llama, ...p.split("/")), `llama.cpp/${p}`, keepInLlama);
    }
    addDir("native");
    addFile("native/CMakeLists.txt", join(root, "native", "CMakeLists.txt"));
    addTree(join(root, "native", "src"), "native/src");
    addTree(join(napiHeaders, "include"), "node-api-headers");
    addFile("node-api-headers/LICENSE", join(napiHeaders, "LICENSE"));
    addDir("node-addon-api");
    for (const f of addonApiHeaders) addFile(`node-addon-api/${f.split(sep).pop()}`, f);
    addFile("node-addon-api/LICENSE.md", join(addonApi, "LICENSE.md"));
    const manifest = {
        llamaCpp: `${llamaInfo.llamaCppGithubRepo}@${llamaInfo.tag} (node-llama-cpp's bundle)`,
        patches: patches.map((p) => p.split(sep).pop()),
        nodeApiHeaders: version(napiHeaders),
        nodeAddonApi: version(addonApi)
    };
    entries.push({ path: "manifest.json", data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`) });

    const tar = writeTar(entries);
    const br = brotliCompressSync(tar, {
        params: { [constants.BROTLI_PARAM_QUALITY]: 9, [constants.BROTLI_PARAM_LGWIN]: 24, [constants.BROTLI_PARAM_SIZE_HINT]: tar.length }
    });
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(`${out}.partial`, br);
    renameSync(`${out}.partial`, out);
    writeFileSync(stampFile, inputHash);
    const mib = (n) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    const files = entries.filter((e) => e.data).length;
    console.log(
        `runtime source: ${files} files, ${mib(tar.length)} as tar, ${mib(br.length)} compressed, in ${((Date.now() - started) / 1000).toFixed(0)} s: ${out}`
    );
} finally {
    rmSync(work, { recursive: true, force: true });
}

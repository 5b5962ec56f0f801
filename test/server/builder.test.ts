// The runtime builder's parts that need no compiler run: every missing-prerequisite sentence (a fake machine: a PATH of
// stand-in programs, install prefixes, platform), the source archive the package carries (what is in it, that it is
// this checkout's, reproducible, a tar any tar reads), the tar reader's refusals, which built runtime may be used
// (its stamp), and the command line's and the language server's answers before a build starts. The real builds
// are in test/native/runtime-builder.test.ts.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { brotliDecompressSync } from "node:zlib";
import { ErrorCodes, LSPErrorCodes, ResponseError } from "vscode-languageserver-protocol/node";
import { buildFraction, configureArgs, errorLines, progressOf } from "../../server/src/builder/build";
import { BUILT_ADDON, builtRuntime, machineId, type RuntimeStamp } from "../../server/src/builder/built";
import {
    type BuildHost,
    CMAKE_MINIMUM,
    CUDA_MINIMUM,
    checkPrerequisites,
    RUNTIME_TARGETS,
    type RuntimeTarget,
    runProgram,
    versionAtLeast
} from "../../server/src/builder/prerequisites";
import { RUNTIME_SOURCE_FILE, runtimeSource, sourceHash } from "../../server/src/builder/source";
import { readTar, type TarEntry, writeTar } from "../../server/src/builder/tar";
import { startLanguageServer } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";
import { ADDON_FILE, CPU_PROBE_FILE } from "../../server/src/runtime/native";
import { bundlePackagedFill, type PackagedFill } from "../tools/packaged";
import { repoRoot, testModel } from "../tools/test-models";

const scratch = mkdtempSync(join(tmpdir(), "dream-coder-builder-"));
after(() => rmSync(scratch, { recursive: true, force: true }));
let n = 0;
const tmp = (name: string) => mkdtempSync(join(scratch, `${name}-${n++}-`));

/** A folder of stand-in programs: each name maps to its shell script's body (e.g. 'echo "cmake version 3.25.1"'). */
function fakeBin(programs: Record<string, string>): string {
    const bin = tmp("bin");
    for (const [name, body] of Object.entries(programs)) {
        writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
        chmodSync(join(bin, name), 0o755);
    }
    return bin;
}

/** An install prefix with the given files (empty ones). */
function fakePrefix(files: string[]): string {
    const prefix = tmp("prefix");
    for (const f of files) {
        mkdirSync(join(prefix, f, ".."), { recursive: true });
        writeFileSync(join(prefix, f), "");
    }
    return prefix;
}

/** A CUDA toolkit's folder with cuBLAS where NVIDIA's installer puts it. */
const CUDA_TOOLKIT = fakePrefix(["targets/x86_64-linux/lib/libcublas.so"]);

const VULKAN_FILES = {
    headers: "include/vulkan/vulkan.h",
    loader: "lib/x86_64-linux-gnu/libvulkan.so",
    spirv: "share/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake"
};

/** A Linux machine with every tool a build needs (Vulkan and CUDA 12.4 included); `change` takes some away. */
function machine(change: { programs?: Record<string, string | null>; files?: string[]; platform?: NodeJS.Platform; env?: NodeJS.ProcessEnv } = {}): BuildHost {
    const programs: Record<string, string | null> = {
        cmake: 'echo "cmake version 3.25.1"; echo; echo "CMake suite maintained and supported by Kitware (kitware.com/cmake)."',
        ninja: "echo 1.11.1",
        cc: "exit 0",
        "c++": "exit 0",
        glslc: "echo 'shaderc v2023.2'",
        // --version's line, and --dryrun's TOP line naming its toolkit (with cuBLAS).
        nvcc: `echo "Cuda compilation tools, release 12.4, V12.4.131"; echo "#$ TOP=${CUDA_TOOLKIT}/bin/.."`,
        "xcode-select": "echo /Library/Developer/CommandLineTools",
        ...change.programs
    };
    const bin = fakeBin(Object.fromEntries(Object.entries(programs).filter((e): e is [string, string] => e[1] !== null)));
    const env = { PATH: bin, ...change.env };
    return {
        platform: change.platform ?? "linux",
        arch: "x64",
        env,
        run: (file, args) => runProgram(file, args, env),
        prefixes: [fakePrefix(change.files ?? Object.values(VULKAN_FILES))],
        cudaHome: join(scratch, "no-cuda")
    };
}

const problems = async (gpu: RuntimeTarget, host: BuildHost) => (await checkPrerequisites(gpu, host)).problems;

describe("prerequisites", () => {
    test("a machine with everything: no problem for cpu, vulkan and cuda, and the tools are found", async () => {
        const host = machine();
        for (const gpu of ["cpu", "vulkan", "cuda"] as const) assert.deepEqual(await problems(gpu, host), [], gpu);
        const { tools } = await checkPrerequisites("cuda", host);
        assert.equal(tools.cmakeVersion, "3.25.1");
        assert.equal(tools.cudaVersion, "12.4");
        assert.match(tools.ninja ?? "", /\/ninja$/);
        assert.match(tools.nvcc ?? "", /\/nvcc$/);
        // No Ninja: CMake's default generator, not a missing prerequisite.
        const noNinja = await checkPrerequisites("cpu", machine({ programs: { ninja: null } }));
        assert.deepEqual(noNinja.problems, []);
        assert.equal(noNinja.tools.ninja, undefined);
    });

    test("Windows: the builder does not build there yet", async () => {
        assert.deepEqual(await problems("cpu", machine({ platform: "win32" })), [
            "The runtime builder does not build on Windows yet: it builds on Linux and macOS."
        ]);
    });

    test("no CMake, an old CMake, a CMake that does not say its version", async () => {
        assert.deepEqual(await problems("cpu", machine({ programs: { cmake: null } })), [
            "CMake is not installed (no cmake on PATH): install CMake 3.18 or newer (on Debian or Ubuntu: sudo apt-get install cmake, or from cmake.org)."
        ]);
        const host = machine({ programs: { cmake: 'echo "cmake version 3.18.4"' } });
        assert.deepEqual(await problems("cpu", host), []);
        const [old] = await problems("vulkan", host);
        assert.match(old, /^CMake 3\.18\.4 \(\S+\/cmake\) is older than 3\.19, which the Vulkan build needs: install CMake 3\.19 or newer/);
        const [odd] = await problems("cpu", machine({ programs: { cmake: "echo something else" } }));
        assert.match(odd, /\/cmake --version did not say which CMake it is \(something else\): install CMake 3\.18 or newer/);
        // On macOS the sentence says how with Homebrew.
        const [mac] = await problems("metal", machine({ platform: "darwin", programs: { cmake: null } }));
        assert.equal(mac, "CMake is not installed (no cmake on PATH): install CMake 3.18 or newer (brew install cmake, or from cmake.org).");
    });

    test("no C or C++ compiler, and a $CXX that is not there", async () => {
        assert.deepEqual(await problems("cpu", machine({ programs: { cc: null, "c++": null } })), [
            "No C and C++ compiler was found (cc, gcc, clang; c++, g++, clang++): install GCC (on Debian or Ubuntu: sudo apt-get install g++)."
        ]);
        assert.deepEqual(await problems("cpu", machine({ programs: { "c++": null } })), [
            "No C++ compiler was found (c++, g++, clang++): install GCC (on Debian or Ubuntu: sudo apt-get install g++)."
        ]);
        assert.deepEqual(await problems("cpu", machine({ programs: { "c++": null, "clang++": "exit 0" } })), [], "clang++ will do");
        assert.deepEqual(await problems("cpu", machine({ env: { CXX: "/nowhere/g++-14" } })), [
            "No C++ compiler was found ($CXX is /nowhere/g++-14): install GCC (on Debian or Ubuntu: sudo apt-get install g++)."
        ]);
    });

    test("macOS: the Xcode command line tools; Metal builds there, CUDA does not", async () => {
        assert.deepEqual(await problems("metal", machine({ platform: "darwin" })), []);
        assert.deepEqual(await problems("metal", machine({ platform: "darwin", programs: { "xcode-select": "exit 2" } })), [
            "The Xcode command line tools are not installed (xcode-select -p finds none): install them with xcode-select --install."
        ]);
        assert.deepEqual(await problems("cuda", machine({ platform: "darwin" })), [
            "CUDA does not run on macOS: build the metal runtime (llama.cpp's default there) or cpu."
        ]);
    });

    test("Metal on Linux", async () => {
        assert.deepEqual(await problems("metal", machine()), [
            "Metal is Apple's GPU interface and builds on macOS only: on this machine build the vulkan or cuda runtime (or cpu)."
        ]);
    });

    test("CUDA: no nvcc, an nvcc too old, an nvcc that does not say its version, nvcc found through $CUDA_PATH", async () => {
        const getCuda = `install the CUDA toolkit ${CUDA_MINIMUM} or newer (developer.nvidia.com/cuda-downloads, or on Debian or Ubuntu: sudo apt-get install nvidia-cuda-toolkit).`;
        assert.deepEqual(await problems("cuda", machine({ programs: { nvcc: null } })), [
            `The CUDA compiler nvcc was not found (on PATH, in $CUDA_PATH/bin or /usr/local/cuda/bin): ${getCuda}`
        ]);
        const [old] = await problems("cuda", machine({ programs: { nvcc: 'echo "Cuda compilation tools, release 10.2, V10.2.89"' } }));
        assert.equal(old, `${old.split(" ")[0]} is CUDA 10.2, and llama.cpp's CUDA backend needs CUDA ${CUDA_MINIMUM} or newer: ${getCuda}`);
        assert.match(old, /\/nvcc is CUDA 10\.2/);
        const [odd] = await problems("cuda", machine({ programs: { nvcc: "echo nvcc: command crashed; exit 1" } }));
        assert.match(odd, /\/nvcc --version did not say which CUDA it is \(nvcc: command crashed\): install the CUDA toolkit/);
        // Off PATH, in $CUDA_PATH/bin, as a toolkit installed by NVIDIA's installer often is.
        const cuda = tmp("cuda");
        mkdirSync(join(cuda, "bin"));
        copyFileSync(join(machine().env.PATH!, "nvcc"), join(cuda, "bin", "nvcc"));
        const host = machine({ programs: { nvcc: null }, env: { CUDA_PATH: cuda } });
        const found = await checkPrerequisites("cuda", host);
        assert.deepEqual(found.problems, []);
        assert.equal(found.tools.nvcc, join(cuda, "bin", "nvcc"));
        // ... or in /usr/local/cuda/bin (the host's cudaHome).
        assert.deepEqual(await problems("cuda", { ...machine({ programs: { nvcc: null } }), cudaHome: cuda }), []);
    });

    test("CUDA: no cuBLAS beside nvcc's toolkit; Debian's (in the multiarch lib folder) is found", async () => {
        const bare = fakePrefix(["bin/.keep"]);
        const [noBlas] = await problems("cuda", machine({ programs: { nvcc: `echo "release 12.4"; echo "#$ TOP=${bare}/bin/.."` } }));
        assert.match(
            noBlas,
            /^cuBLAS \(libcublas\.so\), which llama\.cpp's CUDA backend links, was not found beside \S+\/nvcc \(in \S+\): install the CUDA toolkit's cuBLAS \(NVIDIA's cuda-toolkit or libcublas-dev packages, on Debian or Ubuntu: sudo apt-get install nvidia-cuda-toolkit\)\.$/
        );
        assert.ok(noBlas.includes(`(in ${bare})`), noBlas);
        const debian = fakePrefix(["lib/x86_64-linux-gnu/libcublas.so"]);
        assert.deepEqual(await problems("cuda", machine({ programs: { nvcc: `echo "release 12.4"; echo "#$ TOP=${debian}/bin/.."` } })), []);
    });

    test("Vulkan: no glslc, no headers, no loader, no SPIR-V headers; all of them in $VULKAN_SDK", async () => {
        const sdk = "install the Vulkan SDK (vulkan.lunarg.com), or on Debian or Ubuntu: sudo apt-get install";
        assert.deepEqual(await problems("vulkan", machine({ programs: { glslc: null } })), [
            `The Vulkan shader compiler glslc was not found (on PATH or in $VULKAN_SDK/bin): ${sdk} glslc.`
        ]);
        const without = (what: keyof typeof VULKAN_FILES) => machine({ files: Object.values(VULKAN_FILES).filter((f) => f !== VULKAN_FILES[what]) });
        assert.deepEqual(await problems("vulkan", without("headers")), [`The Vulkan headers (vulkan/vulkan.h) were not found: ${sdk} libvulkan-dev.`]);
        assert.deepEqual(await problems("vulkan", without("loader")), [`The Vulkan loader library (libvulkan.so) was not found: ${sdk} libvulkan-dev.`]);
        assert.deepEqual(await problems("vulkan", without("spirv")), [`The SPIR-V headers (SPIRV-HeadersConfig.cmake) were not found: ${sdk} spirv-headers.`]);
        assert.equal((await problems("vulkan", machine({ files: [], programs: { glslc: null } }))).length, 4, "each missing part has its sentence");
        // The LunarG SDK's layout: include/, lib/, bin/glslc, lib/cmake/SPIRV-Headers.
        const lunarg = fakePrefix(["include/vulkan/vulkan.h", "lib/libvulkan.so", "lib/cmake/SPIRV-Headers/SPIRV-HeadersConfig.cmake", "bin/glslc"]);
        chmodSync(join(lunarg, "bin", "glslc"), 0o755);
        assert.deepEqual(await problems("vulkan", machine({ files: [], programs: { glslc: null }, env: { VULKAN_SDK: lunarg } })), []);
        // This machine (Debian's libvulkan-dev, glslc, spirv-headers: scripts/setup.sh installs them) has them all.
        assert.deepEqual(await problems("vulkan", { ...machine(), prefixes: ["/usr/local", "/usr"], env: process.env, run: runProgram }), []);
    });

    test("the CMake each target needs is the highest that its CMakeLists files in the archive ask for", () => {
        const files = new Map([...readTar(brotliDecompressSync(readFileSync(runtimeSource())))].filter((e) => e.data).map((e) => [e.path, e.data!.toString()]));
        const minimum = (path: string) => {
            const text = files.get(path);
            assert.ok(text, `${path} is in the archive`);
            return /cmake_minimum_required\s*\(\s*VERSION\s+([\d.]+)/i.exec(text)![1];
        };
        const common = ["native/CMakeLists.txt", "llama.cpp/CMakeLists.txt", "llama.cpp/ggml/CMakeLists.txt"];
        const backend: Record<RuntimeTarget, string[]> = {
            cpu: [],
            cuda: ["llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt"],
            vulkan: ["llama.cpp/ggml/src/ggml-vulkan/CMakeLists.txt", "llama.cpp/ggml/src/ggml-vulkan/vulkan-shaders/CMakeLists.txt"],
            metal: []
        };
        for (const gpu of RUNTIME_TARGETS) {
            const needed = [...common, ...backend[gpu]].map(minimum).reduce((a, b) => (versionAtLeast(a, b) ? a : b));
            assert.equal(CMAKE_MINIMUM[gpu], needed, gpu);
        }
        // CUDA: ggml-cuda's default architectures include 86, which the same file says needs CUDA 11.1.
        const cuda = files.get("llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt")!;
        assert.match(cuda, /APPEND CMAKE_CUDA_ARCHITECTURES 75-virtual 80-virtual 86-real/);
        assert.equal(/#\s*86\s*==.*needs CUDA v([\d.]+)/.exec(cuda)?.[1], CUDA_MINIMUM);
        // GGML_CUDA_NCCL, which the builder turns off, is an option of this llama.cpp.
        assert.match(files.get("llama.cpp/ggml/CMakeLists.txt")!, /option\(GGML_CUDA_NCCL\b/);
    });
});

describe("the source archive", () => {
    const archive = runtimeSource();
    const entries = () => [...readTar(brotliDecompressSync(readFileSync(archive)))];

    test("the package carries it, small, with llama.cpp trimmed to the four backends and the addon's sources", () => {
        assert.equal(archive, join(repoRoot, RUNTIME_SOURCE_FILE));
        assert.ok(readFileSync(archive).length < 3 * 2 ** 20, "under 3 MiB");
        const paths = new Set(entries().map((e) => e.path));
        for (const p of [
            "llama.cpp/CMakeLists.txt",
            "llama.cpp/ggml/src/ggml-cpu/CMakeLists.txt",
            "llama.cpp/ggml/src/ggml-cuda/CMakeLists.txt",
            "llama.cpp/ggml/src/ggml-metal/CMakeLists.txt",
            "llama.cpp/ggml/src/ggml-vulkan/vulkan-shaders/vulkan-shaders-gen.cpp",
            "llama.cpp/ggml/src/ggml-blas/CMakeLists.txt",
            "llama.cpp/vendor/nlohmann/CMakeLists.txt",
            // The llama.cpp files the addon compiles itself (native/CMakeLists.txt), with their headers.
            "llama.cpp/common/fit.cpp",
            "llama.cpp/common/log.h",
            "native/src/fit_log.cpp",
            "native/CMakeLists.txt",
            "node-api-headers/node_api.h",
            "node-addon-api/napi.h",
            "manifest.json"
        ])
            assert.ok(paths.has(p), `${p} is in it`);
        for (const p of [
            "llama.cpp/ggml/src/ggml-sycl",
            "llama.cpp/ggml/src/ggml-opencl",
            "llama.cpp/docs",
            "llama.cpp/tests",
            "llama.cpp/tools",
            "llama.cpp/common/chat.cpp",
            "llama.cpp/models",
            "llama.cpp/vendor/nlohmann/json.hpp"
        ])
            assert.ok(![...paths].some((q) => q === p || q.startsWith(`${p}/`)), `${p} is left out`);
    });

    test("it is this checkout's: native/ as it is here, every patch applied", () => {
        const files = new Map(
            entries()
                .filter((e) => e.data)
                .map((e) => [e.path, e.data!.toString()])
        );
        const nativeFiles = ["CMakeLists.txt", ...readdirSync(join(repoRoot, "native", "src")).map((f) => `src/${f}`)];
        for (const f of nativeFiles) assert.equal(files.get(`native/${f}`), readFileSync(join(repoRoot, "native", f), "utf8"), `native/${f}`);
        const patches = readdirSync(join(repoRoot, "native", "patches")).filter((f) => f.endsWith(".patch"));
        assert.deepEqual(JSON.parse(files.get("manifest.json")!).patches, patches.sort());
        for (const patch of patches) {
            // Every file a patch changes: the lines it adds are there.
            const text = readFileSync(join(repoRoot, "native", "patches", patch), "utf8");
            for (const part of text.split(/^diff --git /m).slice(1)) {
                const file = /^\+\+\+ b\/(\S+)/m.exec(part)?.[1];
                if (!file) continue;
                const added = part
                    .split("\n")
                    .filter((l) => l.startsWith("+") && !l.startsWith("+++") && l.trim().length > 12)
                    .map((l) => l.slice(1));
                const inArchive = files.get(`llama.cpp/${file}`);
                assert.ok(inArchive !== undefined, `${patch} changes ${file}, which the archive has`);
                for (const line of added) assert.ok(inArchive.includes(line), `${patch}: ${file} has "${line.trim()}"`);
            }
        }
    });

    test("the script makes the same bytes again, and any tar reads them", () => {
        const out = join(tmp("again"), "runtime-source.tar.br");
        execFileSync(process.execPath, [join(repoRoot, "scripts", "runtime-source.mjs"), "--out", out], { stdio: "pipe" });
        assert.ok(readFileSync(out).equals(readFileSync(archive)), "reproducible (the archive in the checkout is up to date)");
        const listing = spawnSync("tar", ["-tvf", "-"], { input: brotliDecompressSync(readFileSync(archive)), encoding: "utf8", maxBuffer: 1 << 26 });
        assert.equal(listing.status, 0, listing.stderr);
        const names = listing.stdout
            .trim()
            .split("\n")
            .map((l) => l.split(/\s+/).slice(5).join(" ").replace(/\/$/, ""));
        assert.deepEqual(
            names,
            entries().map((e) => e.path)
        );
        assert.match(listing.stdout, /^-rw-r--r-- 0\/0\s+\d+ 1970-01-01 00:00 llama\.cpp\/CMakeLists\.txt$/m);
    });
});

describe("tar", () => {
    test("long paths, folders and the executable bit go through writeTar and readTar, and GNU tar agrees", () => {
        const deep = `${"a".repeat(90)}/${"b".repeat(60)}/${"c".repeat(95)}.txt`;
        const entries: TarEntry[] = [
            { path: "dir" },
            { path: "dir/file.txt", data: Buffer.from("hello\n") },
            { path: "dir/run.sh", data: Buffer.from("#!/bin/sh\n"), executable: true },
            { path: deep, data: Buffer.alloc(1000, 7) },
            { path: "empty", data: Buffer.alloc(0) }
        ];
        const tar = writeTar(entries);
        assert.deepEqual(
            [...readTar(tar)].map((e) => (e.data ? { ...e, data: Buffer.from(e.data) } : e)),
            entries.map((e) => (e.data ? { executable: false, ...e, data: Buffer.from(e.data) } : e))
        );
        const dir = tmp("untar");
        execFileSync("tar", ["-xf", "-", "-C", dir], { input: tar });
        assert.equal(readFileSync(join(dir, deep)).length, 1000);
        assert.equal(spawnSync(join(dir, "dir", "run.sh")).status, 0, "executable");
        assert.throws(() => writeTar([{ path: `${"x".repeat(101)}`, data: Buffer.alloc(1) }]), /too long for a ustar archive/);
    });

    test("readTar refuses paths that leave the folder, links, a damaged header, a cut archive", () => {
        assert.throws(() => writeTar([{ path: "../evil", data: Buffer.alloc(1) }]), /unsafe path/);
        const evil = writeTar([{ path: "ok/evil", data: Buffer.from("x") }]);
        evil.write("../evi", 0, "ascii");
        // The checksum still matches the changed name once recomputed, so the path check is what refuses it.
        const sum = [...evil.subarray(0, 512)].reduce((a, b, i) => a + (i >= 148 && i < 156 ? 32 : b), 0);
        evil.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
        assert.throws(() => [...readTar(evil)], /unsafe path in archive: "\.\.\/evil"/);
        const dir = tmp("link");
        writeFileSync(join(dir, "target"), "x");
        execFileSync("ln", ["-s", "target", join(dir, "link")]);
        const withLink = execFileSync("tar", ["--format=ustar", "-cf", "-", "-C", dir, "link"]);
        assert.throws(() => [...readTar(withLink)], /link: entry type '2' is not a file or a folder/);
        const damaged = writeTar([{ path: "a", data: Buffer.from("x") }]);
        damaged[0] = "b".charCodeAt(0);
        assert.throws(() => [...readTar(damaged)], /bad header checksum/);
        const cut = writeTar([{ path: "a", data: Buffer.alloc(2000) }]).subarray(0, 1024);
        assert.throws(() => [...readTar(cut)], /a is cut short/);
    });
});

describe("which built runtime is used", () => {
    const PACKAGE_VERSION = (require(join(repoRoot, "package.json")) as { version: string }).version;
    /** `home` with this checkout's addon as its built cpu runtime; the fill runs the package's `script` there, with
     *  the runtime's stamp `s`. */
    const fillWithBuiltRuntime = (script: string, home: string) => {
        const folder = join(home, ".cache", "dream-coder", "runtime", "cpu");
        mkdirSync(folder, { recursive: true });
        symlinkSync(join(repoRoot, ADDON_FILE), join(folder, BUILT_ADDON));
        return (s: RuntimeStamp) => {
            writeFileSync(join(folder, "stamp.json"), JSON.stringify(s));
            return spawnSync(process.execPath, [script, testModel({ arch: "dream" })], {
                encoding: "utf8",
                env: { ...process.env, HOME: home },
                timeout: 120_000
            });
        };
    };
    const source = join(scratch, "source.tar.br");
    writeFileSync(source, "the source archive");
    const stamp = (change: Partial<RuntimeStamp> = {}): RuntimeStamp => ({
        packageVersion: "0.1.0",
        sourceHash: sourceHash(source),
        gpu: "vulkan",
        machine: machineId(),
        built: new Date().toISOString(),
        seconds: 60,
        ...change
    });
    const runtimeDir = (s: RuntimeStamp, addon = true) => {
        const dir = tmp("runtime");
        mkdirSync(join(dir, s.gpu));
        writeFileSync(join(dir, s.gpu, "stamp.json"), JSON.stringify(s));
        if (addon) writeFileSync(join(dir, s.gpu, BUILT_ADDON), "");
        return dir;
    };
    const use = (dir: string) => builtRuntime({ dir, source, packageVersion: "0.1.0" });

    test("the stamp matches this package's version, its source archive and this machine: the built addon", () => {
        const dir = runtimeDir(stamp());
        assert.deepEqual(use(dir), { file: join(dir, "vulkan", BUILT_ADDON), gpu: "vulkan" });
    });

    test("a stamp of another package version is not used", () => {
        assert.equal(use(runtimeDir(stamp({ packageVersion: "0.0.9" }))), undefined);
        // The running package's own version by default: this checkout's package.json.
        const dir = runtimeDir(stamp({ packageVersion: (require(join(repoRoot, "package.json")) as { version: string }).version }));
        assert.ok(builtRuntime({ dir, source }));
    });

    test("nor one built from another source archive, on another machine, without its addon, or with no stamp", () => {
        assert.equal(use(runtimeDir(stamp({ sourceHash: "0123456789abcdef" }))), undefined);
        assert.equal(use(runtimeDir(stamp({ machine: "linux-x64 Some Other CPU" }))), undefined);
        assert.equal(use(runtimeDir(stamp(), false)), undefined);
        assert.equal(use(tmp("empty")), undefined);
        assert.equal(builtRuntime({ dir: runtimeDir(stamp()), source: join(scratch, "no-such-archive") }), undefined, "a package without the archive");
    });

    test("an installed package loads the runtime built for this machine before its packaged ones, while its stamp matches", () => {
        // A package's layout (dist/ with the runtime bundled, the CPU probe, the source archive) without packaged CPU
        // builds, and a home whose ~/.cache/dream-coder/runtime/cpu holds this checkout's build as the built runtime.
        const root = tmp("package");
        const script = bundlePackagedFill(root);
        const link = (from: string, to: string) => {
            mkdirSync(dirname(join(root, to)), { recursive: true });
            symlinkSync(from, join(root, to));
        };
        link(join(repoRoot, "native", "build", "cmake-portable-vulkan", "Release", "dream_cpu.node"), CPU_PROBE_FILE);
        link(runtimeSource(), RUNTIME_SOURCE_FILE);
        const fill = fillWithBuiltRuntime(script, tmp("home"));
        const used = fill(stamp({ gpu: "cpu", packageVersion: PACKAGE_VERSION, sourceHash: sourceHash(runtimeSource()) }));
        assert.equal(used.status, 0, used.stderr);
        assert.equal((JSON.parse(used.stdout) as PackagedFill).backend, "CPU (build for this machine)");
        // Built by another version: the packaged builds, which this package leaves out.
        const stale = fill(stamp({ gpu: "cpu", packageVersion: "0.0.9", sourceHash: sourceHash(runtimeSource()) }));
        assert.equal(stale.status, 1);
        assert.match(stale.stderr, /the native runtime is not built \(no native\/build\/cmake-\w+\/Release\/dream_native\.node/);
    });

    test("a package with no runtime of its own (macOS's) loads the runtime built for this machine, and without one says to build it", () => {
        // The macOS package's layout: dist/ and the source archive, no CPU probe and no packaged builds.
        const root = tmp("package-without-runtime");
        const script = bundlePackagedFill(root);
        mkdirSync(dirname(join(root, RUNTIME_SOURCE_FILE)), { recursive: true });
        symlinkSync(runtimeSource(), join(root, RUNTIME_SOURCE_FILE));
        const fill = fillWithBuiltRuntime(script, tmp("home-without-runtime"));
        const used = fill(stamp({ gpu: "cpu", packageVersion: PACKAGE_VERSION, sourceHash: sourceHash(runtimeSource()) }));
        assert.equal(used.status, 0, used.stderr);
        assert.equal((JSON.parse(used.stdout) as PackagedFill).backend, "CPU (build for this machine)");
        const stale = fill(stamp({ gpu: "cpu", packageVersion: "0.0.9", sourceHash: sourceHash(runtimeSource()) }));
        assert.equal(stale.status, 1);
        assert.match(stale.stderr, /this package carries no runtime for linux-x64: build it on this machine with "Build the Runtime for This Machine…"/);
    });
});

describe("the build's command lines and output", () => {
    test("configure: Release, GGML_NATIVE, no llama.cpp tools, the chosen backend on and the others off, the headers from the archive", () => {
        const args = configureArgs("vulkan", "/s", "/b", { ninja: "/usr/bin/ninja" }, { platform: "linux", arch: "x64" });
        for (const a of [
            "-DCMAKE_BUILD_TYPE=Release",
            "-DGGML_NATIVE=ON",
            "-DDC_LLAMA_TOOLS=OFF",
            "-DGGML_VULKAN=ON",
            "-DGGML_CUDA=OFF",
            "-DGGML_METAL=OFF",
            "-DLLAMA_CPP_DIR=/s/llama.cpp",
            "-DCMAKE_JS_INC=/s/node-api-headers;/s/node-addon-api",
            "-DNODE_ADDON_API_DIR=/s/node-addon-api"
        ])
            assert.ok(args.includes(a), a);
        assert.deepEqual(args.slice(0, 6), ["-S", "/s/native", "-B", "/b", "-G", "Ninja"]);
        const cuda = configureArgs("cuda", "/s", "/b", { nvcc: "/opt/cuda/bin/nvcc" }, { platform: "linux", arch: "x64" });
        assert.ok(cuda.includes("-DCMAKE_CUDA_COMPILER=/opt/cuda/bin/nvcc") && cuda.includes("-DGGML_CUDA_NCCL=OFF") && !cuda.includes("-G"));
        const metal = configureArgs("metal", "/s", "/b", {}, { platform: "darwin", arch: "arm64" });
        assert.ok(metal.includes("-DGGML_METAL=ON") && metal.includes("-DCMAKE_SHARED_LINKER_FLAGS=-undefined dynamic_lookup"));
        assert.ok(metal.includes("-DCMAKE_OSX_ARCHITECTURES=arm64"));
        assert.ok(configureArgs("cpu", "/s", "/b", {}, { platform: "darwin", arch: "arm64" }).includes("-DGGML_METAL=OFF"), "cpu on macOS: no Metal");
    });

    test("progress from Ninja's and Make's lines; a failure's message keeps the error lines", () => {
        assert.equal(buildFraction("[12/48] Building CXX object llama.cpp/src/CMakeFiles/llama.dir/llama.cpp.o"), 0.25);
        assert.equal(buildFraction("[ 45%] Building C object ggml.c.o"), 0.45);
        assert.equal(buildFraction("-- Configuring done"), undefined);
        // A nested build's lines (an ExternalProject's own Ninja) do not move the progress back.
        const progress = progressOf();
        assert.deepEqual(["[10/100] a", "[1/4] nested", "[4/4] nested", "[11/100] b", "-- x", "[100/100] c"].map(progress), [
            0.1,
            undefined,
            undefined,
            0.11,
            undefined,
            1
        ]);
        const out = [
            "[3/40] Building CXX object a.o",
            "FAILED: a.o",
            "/usr/bin/c++ -Werror=implicit-int -c a.cpp",
            "a.cpp:3:1: error: 'x' was not declared in this scope",
            "ninja: build stopped: subcommand failed."
        ];
        assert.deepEqual(errorLines(out), ["a.cpp:3:1: error: 'x' was not declared in this scope"]);
        assert.deepEqual(errorLines(["one", "two"]), ["one", "two"], "no error line: the end of the output");
    });
});

describe("the command line and the language server", () => {
    const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
    const cli = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, HOME: tmp("home") } });

    test("dream-coder runtime build names what is missing before it builds anything; runtime targets lists the four", () => {
        const metal = cli(["runtime", "build", "--gpu", "metal"]);
        assert.equal(metal.status, 1);
        assert.equal(
            metal.stderr.trim(),
            "dream-coder: Metal is Apple's GPU interface and builds on macOS only: on this machine build the vulkan or cuda runtime (or cpu)."
        );
        const rocm = cli(["runtime", "build", "--gpu", "rocm"]);
        assert.notEqual(rocm.status, 0);
        assert.match(rocm.stderr, /option '--gpu <backend>' argument 'rocm' is invalid\. Allowed choices are cpu, vulkan, cuda, metal/);
        const targets = cli(["runtime", "targets"]);
        assert.equal(targets.status, 0, targets.stderr);
        assert.match(targets.stdout, /^cpu {5}can be built here$/m);
        assert.match(targets.stdout, /^vulkan {2}can be built here$/m);
        assert.match(targets.stdout, /^metal {3}missing prerequisites\n {4}Metal is Apple's GPU interface/m);
        assert.match(targets.stdout, /Built runtime: none for this version \(in .*\/\.cache\/dream-coder\/runtime\)/);
    });

    test("dreamCoder/runtimeTargets and dreamCoder/buildRuntime: the targets with what each lacks; a refusal before anything is built", async () => {
        const server = await startLanguageServer({});
        try {
            const { targets } = await server.connection.sendRequest(lsp.runtimeTargets);
            assert.deepEqual(
                targets.map((t) => t.gpu),
                [...RUNTIME_TARGETS]
            );
            assert.deepEqual(targets.find((t) => t.gpu === "cpu")?.problems, []);
            assert.match(targets.find((t) => t.gpu === "metal")?.problems[0] ?? "", /builds on macOS only/);
            await assert.rejects(server.connection.sendRequest(lsp.buildRuntime, { gpu: "metal" }), (e) => {
                assert.ok(e instanceof ResponseError);
                assert.equal(e.code, LSPErrorCodes.RequestFailed);
                assert.match(e.message, /^Metal is Apple's GPU interface and builds on macOS only/);
                return true;
            });
            await assert.rejects(server.connection.sendRequest(lsp.buildRuntime, { gpu: "rocm" as RuntimeTarget }), (e) => {
                assert.ok(e instanceof ResponseError && e.code === ErrorCodes.InvalidParams && /gpu must be one of cpu, vulkan, cuda, metal/.test(e.message));
                return true;
            });
            await assert.rejects(server.connection.sendRequest(lsp.buildRuntime, { gpu: "cpu", jobs: 0 }), /jobs must be a whole number of at least 1/);
        } finally {
            await server.stop();
        }
    });
});

// The packaged extension: npm run package builds the .vsix (minified bundles, the addon, media), and the same
// in-host suite runs against it installed into a fresh code-server with --install-extension.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { test } from "node:test";
import { RUNTIME_SOURCE_FILE } from "../../server/src/builder/source";
import { ADDON_FILE, CPU_PROBE_FILE, PACKAGED_GPU_FILE, packageRuntimeFiles, packagedAddonFile } from "../../server/src/runtime/native";
import { startLanguageServer } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";
import { runExtensionSuite } from "./extension-suite";
import { bundlePackagedFill, type PackagedFill } from "../tools/packaged";
import { e2eCacheDir, repoRoot } from "./harness/tools";

/** What scripts/package.sh writes for `target`. */
const vsixFor = (target: string) => join(repoRoot, `dream-coder-${target}-${(require(join(repoRoot, "package.json")) as { version: string }).version}.vsix`);
const vsix = vsixFor("linux-x64");

test("the .vsix installs into code-server and passes the in-host suite, and its Vulkan runtime fills and completes on lavapipe", {
    timeout: 2_400_000
}, async () => {
    // From a fresh clone it builds llama.cpp twice (the packaged CPU builds), with over a megabyte of compiler output.
    // This system's package and macOS's, which carries no runtime (the other systems' are tested with their builds:
    // test/native/windows.test.ts, arm64.test.ts).
    const out = execFileSync("bash", [join(repoRoot, "scripts", "package.sh"), "linux-x64", "darwin-arm64"], {
        cwd: repoRoot,
        encoding: "utf8",
        timeout: 1_500_000,
        maxBuffer: 1 << 28
    });
    assert.match(out, /dream-coder-linux-x64-[\d.]+\.vsix: .* \(\d+ bytes\)/, "the package script prints the size");
    assert.match(out, /dream-coder-linux-x64-[\d.]+\.vsix: linux-x64's runtime \(8 files under native\/\), checked/);
    assert.ok(statSync(vsix).size > 1_000_000, "the .vsix holds the addon");
    // The Extensions page: the user README, its pictures and the docs it links to, and the PNG icon (package.sh
    // prints vsce's file list).
    const listed = new Set(
        out
            .split("\n")
            .filter((l) => l.startsWith("  linux-x64: "))
            .map((l) => l.slice("  linux-x64: ".length).trim())
    );
    const pictures = [...readFileSync(join(repoRoot, "README.md"), "utf8").matchAll(/\]\((media\/readme\/[\w-]+\.png)\)/g)].map((m) => m[1]);
    assert.ok(pictures.length >= 4, "the README shows pictures");
    // ... and the bundled model, which the in-host suite then picks by its catalog id.
    const bundled = (require(join(repoRoot, "common", "catalog.json")) as { models: { bundled?: string }[] }).models.find((m) => m.bundled)?.bundled;
    assert.ok(bundled, "the catalog names a bundled model");
    // The runtime's packaged CPU builds and the probe that picks one (test/native/portable.test.ts), not the build
    // for this machine's CPU.
    const runtime = packageRuntimeFiles("linux-x64");
    assert.ok(runtime.includes(CPU_PROBE_FILE) && runtime.includes(PACKAGED_GPU_FILE));
    // ... and the source the runtime builder compiles (Build the Runtime for This Machine…).
    for (const file of ["README.md", "media/icon.png", "docs/README.md", bundled, ...runtime, RUNTIME_SOURCE_FILE, ...pictures])
        assert.ok(listed.has(file), `the .vsix carries ${file}`);
    assert.ok(!listed.has(ADDON_FILE), "the .vsix does not carry the build for this CPU");
    // Its addons are Linux x86-64's: VS Code refuses it on another platform instead of failing to load them.
    const manifest = execFileSync("python3", ["-c", "import sys, zipfile; print(zipfile.ZipFile(sys.argv[1]).read('extension.vsixmanifest').decode())", vsix], {
        encoding: "utf8"
    });
    assert.match(manifest, /TargetPlatform="linux-x64"/);
    assert.equal((require(join(repoRoot, "package.json")) as { icon?: string }).icon, "media/icon.png");
    assert.ok(statSync(join(repoRoot, "README.md")).size < 10_000, "the README is the short user page");
    // The whole suite with the default settings: the package's Vulkan runtime loads first, finds no GPU here (ggml
    // leaves out lavapipe, a CPU-type device, unless it is named) and the CPU runtime runs it.
    const result = await runExtensionSuite({ name: "vsix", vsix });
    const log = result.log.join("\n");
    assert.equal(result.exitCode, 0, `in-host tests failed against the .vsix; artifacts in ${result.artifactsDir}\n${result.log.slice(-40).join("\n")}`);
    assert.match(log, /extension path: .*\/extensions\/dream-coder\.dream-coder-vscode-[\d.]+/, "the extension ran from the installed .vsix, not the checkout");
    // Every test of the suite ran against the package (counted in its source, so adding one needs no edit here).
    const specs = readFileSync(join(repoRoot, "test", "e2e", "suite", "extension.spec.ts"), "utf8").match(/^\s+it\(/gm)?.length ?? 0;
    assert.ok(specs > 0);
    assert.match(log, new RegExp(`in-host mocha: ${specs} passing, 0 failing`));
    // Then the package's Vulkan runtime on the CPU Vulkan driver (mesa-vulkan-drivers), named as device Vulkan0: the
    // status must name it, and a fill and an inline completion run there. Only those tests: lavapipe runs a step of
    // the test model in about a second here (the whole suite's rewrite and sketch tests would pass their timeouts).
    const onVulkan = [
        "activation starts the language server",
        "the status names where the model runs",
        "fill holes replaces every marker",
        "an inline completion is offered"
    ];
    const vulkan = await runExtensionSuite({
        name: "vsix-vulkan",
        vsix,
        settings: { "dreamCoder.device": "Vulkan0" },
        env: { DREAM_CODER_TEST_GPU: "Vulkan0", DREAM_CODER_E2E_GREP: onVulkan.join("|") }
    });
    const vulkanLog = vulkan.log.join("\n");
    assert.equal(vulkan.exitCode, 0, `in-host tests failed on the Vulkan runtime; artifacts in ${vulkan.artifactsDir}\n${vulkan.log.slice(-40).join("\n")}`);
    assert.match(vulkanLog, /runs on: Vulkan0 \(llvmpipe.*\), \d+ of \d+ layers/);
    assert.match(vulkanLog, new RegExp(`in-host mocha: ${onVulkan.length} passing, 0 failing`));
});

/** A minimal Debian `suite` (debootstrap's minbase: no compiler, so no libgomp), made once into the E2E cache. */
function debianRoot(suite: string): string {
    const root = join(e2eCacheDir(), `debian-${suite}`);
    if (!existsSync(join(root, "usr", "bin", "apt-get"))) {
        rmSync(root, { recursive: true, force: true });
        execFileSync("debootstrap", ["--variant=minbase", suite, root, "http://deb.debian.org/debian"], { stdio: "ignore", timeout: 900_000 });
    }
    return root;
}

/** Extracts `vsix` into `root`, with test/tools/packaged-fill.ts bundled into its dist/ and this Node, and runs the
 *  fill there (chroot, /proc mounted for the run). */
function fillIn(root: string, vsix: string) {
    const ext = join(root, "ext");
    rmSync(ext, { recursive: true, force: true });
    execFileSync("python3", ["-m", "zipfile", "-e", vsix, ext]);
    bundlePackagedFill(join(ext, "extension"));
    const node = join(root, "usr", "local", "bin", "node");
    copyFileSync(realpathSync(process.execPath), node);
    chmodSync(node, 0o755);
    execFileSync("mount", ["-t", "proc", "proc", join(root, "proc")]);
    try {
        const bundled = "/ext/extension/models/dream-mini-py-q8_0.gguf";
        return spawnSync("chroot", [root, "/usr/local/bin/node", "/ext/extension/dist/packaged-fill.js", bundled], { encoding: "utf8", timeout: 300_000 });
    } finally {
        execFileSync("umount", [join(root, "proc")]);
    }
}

test("the packaged runtime fills a hole on a minimal Debian 12 without libgomp or a Vulkan loader, on the CPU, saying why; and says why not on Debian 11's older glibc", {
    timeout: 1_800_000
}, () => {
    assert.equal(process.getuid?.(), 0, "debootstrap and chroot need root");
    const bookworm = debianRoot("bookworm");
    assert.ok(!existsSync(join(bookworm, "usr", "lib", "x86_64-linux-gnu", "libgomp.so.1")), "the system has no OpenMP runtime of its own");
    const ok = fillIn(bookworm, vsix);
    assert.equal(ok.status, 0, ok.stderr);
    const result = JSON.parse(ok.stdout) as PackagedFill;
    const build = /^CPU \((\w+) build\)$/.exec(result.backend)?.[1];
    assert.ok(build, result.backend);
    const addon = `/ext/extension/${packagedAddonFile(build)}`;
    assert.deepEqual(result.mapped, [addon, `${posix.dirname(addon)}/libgomp.so.1`]);
    assert.equal(result.tokens.length, 8);
    assert.ok(!existsSync(join(bookworm, "usr", "lib", "x86_64-linux-gnu", "libvulkan.so.1")), "the system has no Vulkan loader");
    assert.match(
        result.fallback ?? "",
        /^the GPU runtime does not load on this system \(.*libvulkan\.so\.1: cannot open shared object file.*\): running on the CPU$/
    );
    const old = fillIn(debianRoot("bullseye"), vsix);
    assert.equal(old.status, 1, old.stdout);
    assert.match(
        old.stderr,
        /error: this Linux has glibc 2\.31, and the packaged runtime needs glibc 2\.34 or newer: build Dream-Coder from source on this machine/
    );
});

test("the macOS package carries no runtime but the source to build one, and its server says so with the action that builds it", async () => {
    const root = mkdtempSync(join(tmpdir(), "dream-coder-darwin-package-"));
    execFileSync("python3", ["-m", "zipfile", "-e", vsixFor("darwin-arm64"), root]);
    const ext = join(root, "extension");
    assert.ok(existsSync(join(ext, RUNTIME_SOURCE_FILE)), "it carries the source the runtime builder compiles");
    assert.ok(!existsSync(join(ext, "native", "build", "cmake-portable")), "it carries no runtime");
    // Run here, its server finds no runtime for this system either, and (a new HOME) none built before.
    const { DREAM_CODER_ADDON: _, ...env } = process.env;
    const server = await startLanguageServer({ model: join(ext, "models", "dream-mini-py-q8_0.gguf"), threads: 1 }, join(ext, "dist", "server.js"), {
        env: { ...env, HOME: mkdtempSync(join(tmpdir(), "dream-coder-home-")) }
    });
    try {
        assert.equal((await server.connection.sendRequest(lsp.runtimeTargets)).missing, true, "the client offers the build at start");
        const uri = "file:///work/mac.py";
        await server.open(uri, "total = ???\n");
        await assert.rejects(server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } }), (e: Error & { data?: lsp.ProblemData }) => {
            assert.match(
                e.message,
                /this package carries no runtime for linux-x64: build it on this machine with "Build the Runtime for This Machine…" \(a few minutes; /
            );
            assert.equal(e.data?.problem, "no-runtime");
            return true;
        });
    } finally {
        await server.stop();
    }
});

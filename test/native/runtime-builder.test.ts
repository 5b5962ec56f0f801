// The runtime builder's real builds, as a user's machine runs them, from the source archive the package carries into
// a runtime folder of their own (a fresh HOME: nothing shared with native/build): the cpu target through the
// command line (dream-coder runtime build), the vulkan target through buildRuntime (what the language server's
// dreamCoder/buildRuntime calls). Each built addon is loaded in a process of its own and fills a hole; the Vulkan
// one on lavapipe, Mesa's CPU Vulkan driver (GGML_VK_VISIBLE_DEVICES=0: ggml skips CPU-type Vulkan devices
// otherwise). A cancel in the middle of the Vulkan build leaves nothing in place and no compiler running, and the
// next build resumes it, and a process that exits while CMake works stops it; the Vulkan build then replaces the CPU
// one. Times are printed as diagnostics.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { buildRuntime, RuntimeBuildError } from "../../server/src/builder/build";
import { BUILT_ADDON, builtRuntime, type RuntimeStamp } from "../../server/src/builder/built";
import { runtimeSource, sourceHash } from "../../server/src/builder/source";
import type { PullProgress } from "../../common/protocol";
import type { BuiltRuntimeFill } from "../tools/built-runtime-fill";
import { repoRoot, testModel } from "../tools/test-models";

const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
const FILL = join(repoRoot, "out", "test", "tools", "built-runtime-fill.js");
const home = mkdtempSync(join(tmpdir(), "dream-coder-runtime-home-"));
const runtimeDir = join(home, ".cache", "dream-coder", "runtime");
after(() => rmSync(home, { recursive: true, force: true }));
const model = testModel({ arch: "dream" });
const BUILD_TIMEOUT_MS = 60 * 60_000;

/** Fills the hole with the addon `addon` (undefined: the checkout's build, as every other test loads it). */
function fill(addon: string | undefined, gpuLayers = 0, env: NodeJS.ProcessEnv = {}): BuiltRuntimeFill {
    const r = spawnSync(process.execPath, [FILL, model, String(gpuLayers)], {
        encoding: "utf8",
        timeout: 300_000,
        env: { ...process.env, ...env, ...(addon ? { DREAM_CODER_ADDON: addon } : {}) }
    });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!) as BuiltRuntimeFill;
}

/** The processes whose command line names `dir` (the build's compilers run on files under it). */
function processesUnder(dir: string): string[] {
    const found: string[] = [];
    for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
        try {
            const cmdline = readFileSync(join("/proc", pid, "cmdline"), "utf8").replace(/\0/g, " ");
            if (cmdline.includes(dir)) found.push(`${pid}: ${cmdline.slice(0, 160)}`);
        } catch {
            // gone meanwhile
        }
    }
    return found;
}

const minutes = (ms: number) => `${(ms / 60_000).toFixed(1)} min`;

/** The compile steps Ninja announced in a build's output ("[n/N] …": the largest N). */
const ninjaSteps = (lines: string[]) => Math.max(0, ...lines.map((l) => Number(/^\[\d+\/(\d+)\]/.exec(l)?.[1] ?? 0)));
/** The Vulkan build's output: the cancelled start's, then the resumed build's. */
const vulkanOutput: string[][] = [[], []];

describe("building the runtime for this machine", { concurrency: false }, () => {
    const reference = fill(undefined);

    test("dream-coder runtime build --gpu cpu: a runtime that fills a hole as the checkout's does", { timeout: BUILD_TIMEOUT_MS }, async (t) => {
        const started = Date.now();
        const run = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, [CLI, "runtime", "build", "--gpu", "cpu"], { env: { ...process.env, HOME: home } });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (status) => resolve({ status, stdout, stderr: stripVTControlCharacters(stderr) }));
        });
        const took = Date.now() - started;
        t.diagnostic(`cpu build: ${minutes(took)} with ${availableParallelism()} jobs`);
        assert.equal(run.status, 0, run.stderr);
        const file = join(runtimeDir, "cpu", BUILT_ADDON);
        assert.equal(run.stdout.trim(), file, "it prints the runtime it built");
        // Without a terminal, one line a stage.
        assert.deepEqual(run.stderr.trim().split("\n"), ["1/3 Unpacking the source", "2/3 Configuring", "3/3 Compiling"]);
        const stamp = JSON.parse(readFileSync(join(runtimeDir, "cpu", "stamp.json"), "utf8")) as RuntimeStamp;
        assert.equal(stamp.gpu, "cpu");
        assert.equal(stamp.sourceHash, sourceHash(runtimeSource()));
        assert.equal(stamp.packageVersion, (require(join(repoRoot, "package.json")) as { version: string }).version);
        assert.deepEqual(builtRuntime({ dir: runtimeDir }), { file, gpu: "cpu" });
        assert.ok(!existsSync(join(runtimeDir, ".work", "cpu")), "the staging folder is gone after a build that succeeded");
        assert.match(readFileSync(join(runtimeDir, "cpu", "build.log"), "utf8"), /-DGGML_NATIVE=ON .*-DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF/);

        const built = fill(file);
        assert.equal(built.gpu, undefined, `on the CPU: ${built.backend}`);
        assert.deepEqual(built.tokens, reference.tokens, "the same tokens as the checkout's runtime");
    });

    test("a cancelled vulkan build leaves the cpu runtime in place, no vulkan one, no compiler running", { timeout: BUILD_TIMEOUT_MS }, async () => {
        const cancel = new AbortController();
        const seen: PullProgress[] = [];
        const build = buildRuntime({
            gpu: "vulkan",
            dir: runtimeDir,
            signal: cancel.signal,
            onOutput: (line) => vulkanOutput[0].push(line),
            onProgress: (p) => {
                seen.push(p);
                // Once a few compile steps are done.
                if (p.stage === 3 && p.fraction > 0.02) cancel.abort();
            }
        });
        await assert.rejects(build, (e) => {
            assert.ok(e instanceof RuntimeBuildError, String(e));
            assert.equal(e.reason, "cancelled");
            assert.equal(e.message, "The Vulkan runtime build was cancelled; nothing was installed (the next build resumes its work).");
            return true;
        });
        assert.ok(
            seen.some((p) => p.stage === 3 && p.fraction > 0),
            "it was compiling"
        );
        assert.ok(!existsSync(join(runtimeDir, "vulkan")), "no Vulkan runtime in place");
        assert.deepEqual(builtRuntime({ dir: runtimeDir })?.gpu, "cpu", "the CPU runtime is still the one to use");
        // CMake and every compiler it started are stopped (SIGTERM to the process group; they may take a moment).
        const work = join(runtimeDir, ".work");
        for (let i = 0; i < 50 && processesUnder(work).length; i++) await new Promise((r) => setTimeout(r, 200));
        assert.deepEqual(processesUnder(work), []);
        assert.ok(existsSync(join(work, "vulkan", "build")), "the work so far is kept for the next build");
    });

    test("a process that exits in the middle of a build leaves no compiler running", { timeout: BUILD_TIMEOUT_MS }, async () => {
        // The CLI or the language server ending while CMake works: CMake's process group is its own, and is stopped.
        const dir = join(home, "exiting");
        const script = `
            const { buildRuntime } = require(${JSON.stringify(join(repoRoot, "out", "server", "src", "builder", "build.js"))});
            buildRuntime({ gpu: "cpu", jobs: 1, dir: ${JSON.stringify(dir)}, onProgress: (p) => p.stage === 3 && p.fraction > 0 && process.exit(0) });`;
        const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 600_000 });
        assert.equal(r.status, 0, r.stderr);
        // Within two seconds: an orphaned compiler would also end, but only when its file is compiled (seconds more).
        for (let i = 0; i < 10 && processesUnder(dir).length; i++) await new Promise((resolve) => setTimeout(resolve, 200));
        assert.deepEqual(processesUnder(dir), []);
        assert.ok(!existsSync(join(dir, "cpu")), "nothing installed");
    });

    test("buildRuntime vulkan resumes, replaces the cpu runtime, and runs on lavapipe", { timeout: BUILD_TIMEOUT_MS }, async (t) => {
        const started = Date.now();
        const seen: PullProgress[] = [];
        const result = await buildRuntime({ gpu: "vulkan", dir: runtimeDir, onProgress: (p) => seen.push(p), onOutput: (line) => vulkanOutput[1].push(line) });
        t.diagnostic(`vulkan build (after the cancelled start): ${minutes(Date.now() - started)} with ${availableParallelism()} jobs`);
        const file = join(runtimeDir, "vulkan", BUILT_ADDON);
        assert.deepEqual({ file: result.file, gpu: result.gpu }, { file, gpu: "vulkan" });
        assert.equal(seen.find((p) => p.stage === 1)?.detail, "unpacked by an earlier build", "the cancelled build's source is used again");
        const compiling = seen.filter((p) => p.stage === 3).map((p) => p.fraction);
        assert.ok(
            compiling.every((f, i) => i === 0 || f >= compiling[i - 1]),
            "compile progress only grows"
        );
        assert.equal(compiling.at(-1), 1);
        // Ninja counts the steps left: fewer than the cancelled start announced.
        const [before, resumed] = vulkanOutput.map(ninjaSteps);
        t.diagnostic(`compile steps: ${before} at the start, ${resumed} after the cancel`);
        assert.ok(resumed < before, `it went on from where the cancelled build stopped (${resumed} steps left of ${before})`);
        // One built runtime at a time: the Vulkan build replaced the CPU one.
        assert.ok(!existsSync(join(runtimeDir, "cpu")));
        assert.deepEqual(builtRuntime({ dir: runtimeDir }), { file, gpu: "vulkan" });
        assert.deepEqual(readdirSync(runtimeDir).sort(), [".work", "vulkan"]);
        assert.deepEqual(readdirSync(join(runtimeDir, ".work")), [], "no staging folder left");

        const onLavapipe = fill(file, 99, { GGML_VK_VISIBLE_DEVICES: "0" });
        t.diagnostic(`devices: ${onLavapipe.devices.map((d) => `${d.name} (${d.description}, ${d.type})`).join(", ")}`);
        assert.ok(
            onLavapipe.devices.some((d) => /^Vulkan\d/.test(d.name) && /llvmpipe/i.test(d.description)),
            "the addon lists lavapipe as a Vulkan device"
        );
        assert.equal(onLavapipe.gpu, "Vulkan0", onLavapipe.backend);
        assert.deepEqual(onLavapipe.tokens, reference.tokens, "the same tokens as the CPU runtime");
    });
});

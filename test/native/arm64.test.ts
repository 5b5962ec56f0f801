// The linux-arm64 package's runtime (native/cpu-builds.json's arm64 builds, cross-compiled here by
// scripts/build-native.mjs --target linux-arm64) run by the official arm64 Node.js on emulated ARM CPUs (qemu-user):
// Cortex-A72 (ARMv8.0, as in a Raspberry Pi 4), Neoverse N1 (ARMv8.2 with the dot-product and half-precision
// instructions, as in AWS Graviton2) and qemu's "max" (every extension qemu has, SVE and i8mm among them). The dotprod
// build dies with SIGILL on the Cortex-A72, so the package's CPU probe must choose the armv8 build there.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type LanguageServerProcess, startLanguageServer } from "../../server/src/cli/lspClient";
import { cpuProbeFile, missingCpuFlags, packagedAddonFile, packagedBuilds, packagedBuildsFor } from "../../server/src/runtime/native";
import { completeAndFill, crossTools, qemuArm64 } from "../tools/cross";
import { assertNeedsOnlyStatedLibraries } from "../tools/linux-needs";
import { bundlePackagedFill, hostTokens, type PackagedFill } from "../tools/packaged";
import { quantizedTestModel, repoRoot, testModel } from "../tools/test-models";

const TARGET = "linux-arm64";
const BUILDS = packagedBuilds("arm64");
const inRepo = (file: string) => join(repoRoot, file);
const addonOf = (build: string) => inRepo(packagedAddonFile(build, TARGET));
const PROBE = inRepo(cpuProbeFile(TARGET));
const { version } = require(join(repoRoot, "package.json")) as { version: string };
const [A72, N1] = ["cortex-a72", "neoverse-n1"];

/** Runs arm64 Node with `args` on the emulated `cpu`; `json`: its last line of output, parsed, when it exits with 0. */
function onArm<T>(cpu: string, args: string[], env: Record<string, string | undefined> = {}) {
    const { execPath, execArgv } = qemuArm64(cpu);
    const r = spawnSync(execPath, [...execArgv, ...args], { encoding: "utf8", env: { ...process.env, ...env }, timeout: 600_000 });
    const json = () => JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "") as T;
    return {
        ...r,
        get json() {
            return r.status === 0 ? json() : undefined;
        }
    };
}

let repoFill = ""; // packaged-fill outside any package: for runs that name their addon
let packageRoot = ""; // the linux-arm64 .vsix, extracted, with packaged-fill bundled into its dist/

describe("the linux-arm64 runtime on emulated ARM CPUs", () => {
    before(() => {
        crossTools();
        // The package script cross-builds the runtime (both builds, each in about 7 minutes on 2 cores) and checks the
        // .vsix carries exactly it.
        execFileSync("bash", [join(repoRoot, "scripts", "package.sh"), TARGET], { encoding: "utf8", timeout: 2_400_000, maxBuffer: 1 << 28 });
        repoFill = bundlePackagedFill(mkdtempSync(join(tmpdir(), "dream-coder-fill-")));
        const root = mkdtempSync(join(tmpdir(), "dream-coder-arm64-package-"));
        execFileSync("python3", ["-m", "zipfile", "-e", join(repoRoot, `dream-coder-${TARGET}-${version}.vsix`), root]);
        packageRoot = join(root, "extension");
        bundlePackagedFill(packageRoot);
    });

    it("the CPU probe reads the ARM extensions the builds use from the kernel, and they choose the build", () => {
        const features = (cpu: string) => onArm<string[]>(cpu, ["-p", `JSON.stringify(require(${JSON.stringify(PROBE)}).features())`]).json?.sort();
        assert.deepEqual(features(A72), []);
        assert.deepEqual(features(N1), ["asimddp", "asimdhp", "fphp"]);
        assert.deepEqual(features("max"), ["asimddp", "asimdhp", "fphp", "i8mm", "sve"]);
        assert.deepEqual(packagedBuildsFor([], "arm64"), ["armv8"]);
        assert.deepEqual(packagedBuildsFor(["asimddp", "asimdhp", "fphp"], "arm64"), ["dotprod", "armv8"]);
        assert.deepEqual(missingCpuFlags("dotprod", ["asimddp"], "arm64"), ["fphp", "asimdhp"]);
    });

    it("an installed package runs the dotprod build on a Neoverse N1 and the armv8 build on a Cortex-A72, where dotprod stops with SIGILL", () => {
        const script = join(packageRoot, "dist", "packaged-fill.js");
        const model = quantizedTestModel("Q4_0");
        const expected = hostTokens(repoFill, model, {});
        for (const [cpu, build] of [
            [N1, "dotprod"],
            [A72, "armv8"]
        ]) {
            const r = onArm<PackagedFill>(cpu, [script, model], { DREAM_CODER_ADDON: undefined });
            assert.equal(r.status, 0, r.stderr);
            assert.equal(r.json?.backend, `CPU (${build} build)`);
            const addon = join(packageRoot, packagedAddonFile(build, TARGET));
            assert.deepEqual(r.json?.mapped, [addon, join(dirname(addon), "libgomp.so.1")], `${cpu}: the package's ${build} build and its OpenMP runtime`);
            assert.deepEqual(r.json?.tokens, expected, `${cpu}: x86-64's tokens`);
        }
        const sigill = onArm(A72, [repoFill, model], { DREAM_CODER_ADDON: addonOf("dotprod") });
        assert.equal(sigill.signal, "SIGILL", `the dotprod build on a Cortex-A72: status ${sigill.status}, signal ${sigill.signal}`);
    });

    it("exact decoding and the dual cache give x86-64's tokens on an F32 model and on quantized models", () => {
        const f32 = testModel({ arch: "dream" });
        for (const [name, model, params] of [
            ["F32, exact", f32, { cache: "none", schedule: "timestep" }],
            ["F32, dual cache", f32, {}],
            ["Q8_0, exact", quantizedTestModel("Q8_0"), { cache: "none", schedule: "timestep" }],
            ["Q4_K_M, dual cache", quantizedTestModel("Q4_K_M"), {}]
        ] as const) {
            const r = onArm<PackagedFill>(N1, [repoFill, model, JSON.stringify(params)], { DREAM_CODER_ADDON: addonOf("dotprod") });
            assert.equal(r.status, 0, `${name}: ${r.stderr}`);
            assert.equal(r.json?.tokens.length, 8, name);
            assert.deepEqual(r.json?.tokens, hostTokens(repoFill, model, params), name);
        }
    });

    it("the builds need of Linux only glibc and libstdc++ of the versions the runtime states, and carry libgomp", () => {
        for (const build of BUILDS)
            assertNeedsOnlyStatedLibraries(addonOf(build), "ld-linux-aarch64.so.1", "aarch64-linux-gnu-objdump", build === BUILDS.at(-1) ? [PROBE] : []);
    });

    it("the CLI fills a file in place", () => {
        const file = join(mkdtempSync(join(tmpdir(), "dream-coder-arm64-cli-")), "mean.py");
        writeFileSync(file, "def mean(xs):\n    return ???:6\n\nprint(mean([1, 2]))\n");
        const cli = inRepo("out/server/src/cli/main.js");
        const r = onArm(N1, [cli, "fill", file, "--in-place", "--model", quantizedTestModel("Q8_0"), "--threads", "1"], {
            DREAM_CODER_ADDON: addonOf("dotprod"),
            DREAM_CODER_MODEL: ""
        });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /1 edit applied/);
        const after = readFileSync(file, "utf8");
        assert.ok(after.startsWith("def mean(xs):\n    return ") && after.endsWith("\n\nprint(mean([1, 2]))\n") && !after.includes("???"), after);
    });

    describe("the package's language server", () => {
        let server: LanguageServerProcess;
        before(async () => {
            server = await startLanguageServer(
                { model: quantizedTestModel("Q8_0"), threads: 1, inlineCompletion: { debounceMs: 0, lineTokens: 8 } },
                join(packageRoot, "dist", "server.js"),
                qemuArm64(N1)
            );
        });
        after(async () => {
            await server?.stop();
        });

        it("answers an inline completion and a fill", async () => {
            const { suggestion, fill } = await completeAndFill(server, "file:///work/arm.py", "\n");
            assert.ok((suggestion ?? "").length > 0, "a suggestion");
            assert.equal(fill.holes, 1);
            assert.equal(fill.edits.length, 1);
            assert.ok(
                server.statuses.some((s) => s.backend?.includes("dotprod build")),
                JSON.stringify(server.statuses.at(-1))
            );
        });
    });
});

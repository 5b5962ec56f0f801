// The .vsix carries the portable build of the runtime (scripts/build-native.mjs --cpu portable: x86-64 with AVX2,
// FMA and F16C), because it runs on CPUs other than the one that packed it. A -march=native build made on this
// AVX-512 machine dies with SIGILL on an AVX2-only CPU (most laptops). qemu-user emulates such a CPU (Haswell) for
// Node and the addon, so both claims are checked here rather than on a user's machine.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { arch } from "node:os";
import { join } from "node:path";
import { before, describe, it } from "node:test";
import { missingPortableCpuFlags } from "../../server/src/runtime/native";
import { repoRoot } from "../tools/test-models";

const PORTABLE = join(repoRoot, "native", "build", "cmake-portable", "Release", "dream_native.node");
const NATIVE = join(repoRoot, "native", "build", "cmake", "Release", "dream_native.node");
const hostHasAvx512 = /^flags\s*:.*\bavx512f\b/m.test(readFileSync("/proc/cpuinfo", "utf8"));

// Fills one hole with the bundled model through the runtime, greedy, one thread; prints the hole's tokens.
const FILL = `
const { DiffusionModel } = require(${JSON.stringify(join(repoRoot, "out", "server", "src", "runtime", "runtime.js"))});
(async () => {
    const model = await DiffusionModel.load(${JSON.stringify(join(repoRoot, "models", "dream-mini-py-q8_0.gguf"))}, { threads: 1 });
    const r = await model.decode(["def mean(xs):\\n    return ", { hole: 8 }, "\\n"], { cache: "dual", schedule: "block", algorithm: "maskgit_plus" });
    console.log(JSON.stringify(r.holes[0].tokens));
    model.dispose();
})();`;

/** Runs FILL with `addon`, natively or on an emulated Haswell (AVX2, FMA, F16C; no AVX-512). */
function fill(addon: string, haswell: boolean) {
    const node = [process.execPath, "-e", FILL];
    const [cmd, ...args] = haswell ? ["qemu-x86_64", "-cpu", "Haswell", ...node] : node;
    return spawnSync(cmd, args, { encoding: "utf8", env: { ...process.env, DREAM_CODER_ADDON: addon }, timeout: 300_000 });
}

describe("the portable runtime the .vsix carries", { skip: arch() !== "x64" && "its CPU baseline (AVX2) is x86-64's" }, () => {
    before(() => {
        assert.equal(spawnSync("qemu-x86_64", ["--version"]).status, 0, "qemu-x86_64 is missing: install qemu-user (scripts/setup.sh does as root)");
        execFileSync(process.execPath, [join(repoRoot, "scripts", "build-native.mjs"), "--cpu", "portable"], { stdio: "ignore", timeout: 1_200_000 });
    });

    it("fills a hole on an emulated AVX2-only CPU, with the tokens it gives on this one", () => {
        const here = fill(PORTABLE, false);
        assert.equal(here.status, 0, here.stderr);
        const haswell = fill(PORTABLE, true);
        assert.equal(
            haswell.status,
            0,
            haswell.stderr
                .split("\n")
                .filter((l) => !l.includes("TCG doesn't support"))
                .join("\n")
        );
        assert.equal(haswell.stdout, here.stdout);
        assert.equal((JSON.parse(here.stdout) as number[]).length, 8);
    });

    it("where the build for this CPU would stop with SIGILL", { skip: !hostHasAvx512 && "this CPU has no AVX-512: its own build may run there too" }, () => {
        const r = fill(NATIVE, true);
        assert.equal(r.signal, "SIGILL", `status ${r.status}, signal ${r.signal}`);
    });

    it("a CPU without what the portable build needs gets a sentence, not SIGILL", () => {
        assert.deepEqual(missingPortableCpuFlags(readFileSync("/proc/cpuinfo", "utf8")), [], "this CPU runs the portable build");
        // A Nehalem (2008): SSE4.2, no AVX.
        const nehalem =
            "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ss syscall nx lm constant_tsc pni ssse3 cx16 sse4_1 sse4_2 popcnt lahf_lm\n";
        assert.deepEqual(missingPortableCpuFlags(nehalem), ["avx2", "fma", "f16c"]);
    });
});

// How the native build compiles ggml's CPU backend. AMX stays off on every x86 machine: built with
// -march=native on a Xeon that has it, ggml's AMX path crashed the process (SIGSEGV at ldtilecfg) in the first
// decode of any quantized model. This machine may lack AMX, so the test reads the build's compile commands
// as well as what the built runtime reports.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { arch } from "node:os";
import { join } from "node:path";
import { describe, it, test } from "node:test";
import { loadAddon } from "../../server/src/runtime/native";
import { repoRoot } from "../tools/test-models";

describe("native build", { skip: arch() !== "x64" && "AMX exists only on x86-64" }, () => {
    it("compiles ggml's CPU backend without AMX, after -march=native", () => {
        const ninja = readFileSync(join(repoRoot, "native", "build", "cmake", "build.ninja"), "utf8");
        // Each compile of a ggml-cpu source: its `build` line, then its FLAGS line.
        const blocks = ninja.split("\nbuild ").filter((b) => /^\S*ggml-cpu\.dir\/\S+\.o:/.test(b));
        assert.ok(blocks.length > 10, `${blocks.length} ggml-cpu compile commands found`);
        for (const block of blocks) {
            const flags = /^\s+FLAGS = (.*)$/m.exec(block)?.[1] ?? "";
            const object = block.slice(0, block.indexOf(":"));
            for (const off of ["-mno-amx-tile", "-mno-amx-int8", "-mno-amx-bf16"]) {
                assert.ok(flags.includes(off), `${object} is compiled without ${off}`);
                if (flags.includes("-march=native"))
                    assert.ok(flags.indexOf(off) > flags.indexOf("-march=native"), `${object}: ${off} comes after -march=native`);
            }
        }
    });

    it("the runtime reports no AMX among its CPU features", () => {
        const info = loadAddon().systemInfo();
        assert.match(info, /CPU : /, info);
        assert.doesNotMatch(info, /AMX/, info);
    });
});

test("the build script refuses a CPU or GPU target it does not know, naming the ones it does", () => {
    const script = join(repoRoot, "scripts", "build-native.mjs");
    const cpu = spawnSync(process.execPath, [script, "--cpu", "avx9"], { encoding: "utf8" });
    assert.equal(cpu.status, 2);
    assert.match(cpu.stderr, /unknown CPU target 'avx9': use native, avx512, portable/);
    const gpu = spawnSync(process.execPath, [script, "--gpu", "rocm"], { encoding: "utf8" });
    assert.equal(gpu.status, 2);
    assert.match(gpu.stderr, /unknown GPU backend 'rocm': use cpu, cuda, metal or vulkan/);
});

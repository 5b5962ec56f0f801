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

test("the build script refuses a CPU, GPU or system target it does not know, naming the ones it does", () => {
    const script = join(repoRoot, "scripts", "build-native.mjs");
    const refused = (...args: string[]) => {
        const r = spawnSync(process.execPath, [script, ...args], { encoding: "utf8" });
        assert.equal(r.status, 2, args.join(" "));
        return r.stderr;
    };
    const host = `${process.platform}-${process.arch}`;
    const builds = host === "linux-arm64" ? "native, dotprod, armv8" : "native, avx512, portable";
    assert.match(refused("--cpu", "avx9"), new RegExp(`unknown CPU target 'avx9' for ${host}: use ${builds}`));
    assert.match(refused("--gpu", "rocm"), /unknown GPU backend 'rocm': use cpu, cuda, metal or vulkan/);
    // Cross builds: a toolchain file each, and only the target's packaged CPU builds, without a GPU backend.
    assert.match(
        refused("--target", "freebsd-x64"),
        new RegExp(`no toolchain for target 'freebsd-x64': this machine builds ${host}, and cross-builds linux-arm64, win32-x64`)
    );
    assert.match(refused("--target", "linux-arm64", "--cpu", "avx512"), /unknown CPU target 'avx512' for linux-arm64: use dotprod, armv8$/m);
    assert.match(refused("--target", "win32-x64", "--cpu", "native"), /unknown CPU target 'native' for win32-x64: use avx512, portable$/m);
    assert.match(
        refused("--target", "win32-x64", "--gpu", "vulkan"),
        /a cross build \(win32-x64\) is a CPU build: --gpu vulkan builds on the machine it is for/
    );
});

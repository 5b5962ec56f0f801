// The GPU benchmark's one command (scripts/bench-gpu.sh) as a dry run on this CPU: the kit as
// scripts/gpu-kit.mjs packs it, every section, the report. A GPU machine is lent rarely and for minutes, so a
// script broken by a change elsewhere (a renamed field of runtime-bench's JSON once emptied its table) must
// fail here, not there. The builds are this checkout's (BENCH_PREBUILT_*), so only the GPU compiles are left out:
// the CPU build stands in for CUDA's, and the Vulkan variant runs the packaged Vulkan build on lavapipe.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { before, test } from "node:test";
import { PACKAGED_GPU_FILE } from "../../server/src/runtime/native";
import { repoRoot } from "../tools/test-models";

let work: string; // shared by both runs: the unpacked kit and the models are made once

before(() => {
    execFileSync(process.execPath, ["scripts/gpu-kit.mjs"], { cwd: repoRoot, stdio: "ignore" });
    work = mkdtempSync(join(tmpdir(), "bench-gpu-work-"));
});

function dryRun(env: Record<string, string>): { md: string; json: { backends: Record<string, { runtime: Record<string, unknown> }> } } {
    const out = mkdtempSync(join(tmpdir(), "bench-gpu-out-"));
    const r = spawnSync("bash", ["scripts/bench-gpu.sh", "--cpu", "--small"], {
        cwd: repoRoot,
        encoding: "utf8",
        env: {
            ...process.env,
            OUT: out,
            BENCH_WORK: work,
            BENCH_PREBUILT_CPU: join(repoRoot, "native", "build", "cmake"),
            BENCH_PREBUILT_VULKAN: join(repoRoot, dirname(dirname(PACKAGED_GPU_FILE))),
            BENCH_BUDGET_S: "500",
            ...env
        }
    });
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    assert.doesNotMatch(readFileSync(join(out, "bench-gpu.log"), "utf8"), /report failed/);
    return { md: readFileSync(join(out, "bench-gpu.md"), "utf8"), json: JSON.parse(readFileSync(join(out, "bench-gpu.json"), "utf8")) };
}

/** The report's "Sections:" line as name -> status ("name status (N s)" each, names with commas among them). */
function sections(md: string): Map<string, string> {
    const line = /^Sections: (.*)$/m.exec(md)?.[1] ?? "";
    return new Map([...line.matchAll(/(?:^|, )([^,]+?(?:, [^,(]+?)?) (ok|failed \(exit \d+\)|skipped(?: \([^)]*\))?) \(\d+ s\)/g)].map((m) => [m[1], m[2]]));
}

test("bench-gpu.sh --cpu --small runs every section and reports each in its table", { timeout: 600_000 }, () => {
    const { md } = dryRun({ GPU_BACKENDS: "cpu" });
    const states = sections(md);
    assert.ok(states.size >= 16 && [...states.values()].every((st) => st === "ok"), JSON.stringify([...states]));
    for (const mode of ["none", "dual", "dual+confidence-threshold=0.9", "dual+reuse"])
        assert.match(md, new RegExp(`^\\| cpu \\| ours ${mode.replace(/[+.]/g, "\\$&")} \\| 256 \\| 32 \\| \\d`, "m"));
    assert.match(md, /^\| cpu \| llama-diffusion-cli \(exact, length \d+\) \|/m);
    for (const fa of ["fa0", "fa1"]) assert.match(md, new RegExp(`^\\| cpu \\| autoregressive infill, llama-bench ${fa} \\(pp256 [\\d,.]+ t/s`, "m"));
    for (const cache of ["none", "dual", "dual\\+reuse"]) assert.match(md, new RegExp(`^\\| cpu \\| ${cache} \\| \\d+ \\| \\d+ \\|`, "m"));
});

// lavapipe runs ggml-vulkan's shaders on the CPU, about a second a block step of the small model on 2 busy cores
// (a language-server request took 24 s), so the Vulkan variant runs one runtime mode (two cells, each a full pass
// and 32 steps), no language-server mode (the CPU run has them; the runtime loads the same way in both) and no
// variants. What it checks is the second backend: found by default, its build, its device, its rows and the
// comparison with the first.
test("without GPU_BACKENDS the dry run adds Vulkan on lavapipe: its rows beside the CPU's, compared cell by cell", { timeout: 600_000 }, () => {
    const { md, json } = dryRun({ RUNTIME_MODES: "dual", LSP_MODES: "", VARIANTS: "" });
    assert.match(md, /, backends cpu vulkan$/m);
    assert.match(md, /^- vulkan devices: Vulkan0 \(llvmpipe/m);
    const states = sections(md);
    for (const name of ["vulkan build", "vulkan devices", "vulkan runtime dual", "cpu runtime dual"])
        assert.equal(states.get(name), "ok", JSON.stringify([...states]));
    // The packaged Vulkan build is made without llama.cpp's tools.
    for (const name of ["vulkan llama-bench", "vulkan llama-diffusion-cli"]) assert.match(states.get(name) ?? "", /^(ok|skipped \(not in this build\))$/);
    for (const backend of ["cpu", "vulkan"]) assert.match(md, new RegExp(`^\\| ${backend} \\| ours dual \\| 256 \\| 32 \\| \\d`, "m"));
    assert.match(md, /^- vulkan against cpu, dual, context 256: total \d+ against \d+ ms/m);
    assert.ok(json.backends.vulkan.runtime.dual);
});

// The GPU benchmark's one command (scripts/bench-gpu.sh) as a dry run on this CPU: the kit as
// scripts/gpu-kit.mjs packs it, every section, the report. A GPU machine is lent rarely and for minutes, so a
// script broken by a change elsewhere (a renamed field of runtime-bench's JSON once emptied its table) must
// fail here, not there. The build is this checkout's (BENCH_PREBUILT), so only the CUDA compile is left out.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../tools/test-models";

test("bench-gpu.sh --cpu --small runs every section and reports each in its table", { timeout: 600_000 }, () => {
    execFileSync(process.execPath, ["scripts/gpu-kit.mjs"], { cwd: repoRoot, stdio: "ignore" });
    const out = mkdtempSync(join(tmpdir(), "bench-gpu-out-"));
    const r = spawnSync("bash", ["scripts/bench-gpu.sh", "--cpu", "--small"], {
        cwd: repoRoot,
        encoding: "utf8",
        env: {
            ...process.env,
            OUT: out,
            BENCH_WORK: mkdtempSync(join(tmpdir(), "bench-gpu-work-")),
            BENCH_PREBUILT: join(repoRoot, "native", "build", "cmake"),
            BENCH_BUDGET_S: "500"
        }
    });
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const md = readFileSync(join(out, "bench-gpu.md"), "utf8");
    const sections = /^Sections: (.*)$/m.exec(md)?.[1] ?? "";
    // "name ok (N s)" each, names with commas among them ("runtime dual, reductions off").
    const states = [...sections.matchAll(/ (\w+) \(\d+ s\)/g)].map((m) => m[1]);
    assert.ok(states.length >= 15 && states.every((st) => st === "ok"), sections);
    for (const mode of ["exact", "dual", "dual+threshold", "dual+reuse"])
        assert.match(md, new RegExp(`^\\| ours ${mode.replace("+", "\\+")} \\| 256 \\| 32 \\| \\d`, "m"));
    assert.match(md, /^\| llama-diffusion-cli \(exact, length \d+\) \|/m);
    for (const fa of ["fa0", "fa1"]) assert.match(md, new RegExp(`^\\| autoregressive infill, llama-bench ${fa} \\(pp256 [\\d,.]+ t/s`, "m"));
    for (const cache of ["none", "dual", "dual\\+reuse"]) assert.match(md, new RegExp(`^\\| ${cache} \\| \\d+ \\| \\d+ \\|`, "m"));
    assert.doesNotMatch(readFileSync(join(out, "bench-gpu.log"), "utf8"), /report failed/);
    JSON.parse(readFileSync(join(out, "bench-gpu.json"), "utf8"));
});

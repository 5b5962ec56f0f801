// The runtime benchmark against the autoregressive twin (--vs-ar): on bench-model.ts's small shape, with one thread,
// 128 tokens of context and an 8-token hole, llama-bench really runs on a qwen2 copy of the very model, and both
// request kinds (fresh, after a one-line edit) get a finite positive ratio; wrong --vs-ar inputs are refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readGgufHeader } from "../../server/src/runtime/ggufHeader";
import { repoRoot, testModel } from "../tools/test-models";

const BENCH = join(repoRoot, "out", "bench", "runtime-bench.js");

interface ArRowJson {
    model: string;
    request: string;
    mode: string;
    oursMs: number;
    arMs: number;
    ratio: number;
    prompt: number;
    depth: number;
    llamaBench: { args: string[]; tests: { model_type: string; n_prompt: number; n_gen: number; n_depth: number; n_threads: number; samples_ns: number[] }[] };
}

function bench(args: string[]) {
    return spawnSync(process.execPath, [BENCH, ...args], { encoding: "utf8" });
}

test("--vs-ar runs llama-bench on the qwen2 twin and prints our time over its time for both request kinds", { timeout: 120_000 }, async () => {
    const out = join(mkdtempSync(join(tmpdir(), "vs-ar-")), "runtime.json");
    const r = bench([
        "--models",
        "bench-small",
        "--threads",
        "1",
        "--contexts",
        "128",
        "--holes",
        "8",
        "--modes",
        "dual,dual+reuse",
        "--vs-ar",
        "dual",
        "--out",
        out
    ]);
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const json = JSON.parse(readFileSync(out, "utf8")) as {
        rows: { mode: string; editedAt?: number }[];
        vsAr: { mode: string; twins: Record<string, string>; rows: ArRowJson[] };
    };
    assert.equal(json.vsAr.mode, "dual");
    assert.deepEqual(
        json.vsAr.rows.map((a) => [a.request, a.mode]),
        [
            ["fresh", "dual"],
            ["edit", "dual+reuse"]
        ]
    );
    const editedAt = json.rows.find((x) => x.mode === "dual+reuse")?.editedAt;
    assert.ok(editedAt !== undefined && editedAt > 0 && editedAt < 128, `editedAt ${editedAt}`);
    for (const a of json.vsAr.rows) {
        assert.ok(Number.isFinite(a.ratio) && a.ratio > 0, `${a.request}: ratio ${a.ratio}`);
        assert.ok(Math.abs(a.ratio - a.oursMs / a.arMs) < 1e-9);
        // llama-bench's own JSON, parsed: the twin loaded as qwen2, the request asked for, one timed run.
        const [t] = a.llamaBench.tests;
        assert.equal(a.llamaBench.tests.length, 1);
        assert.match(t.model_type, /^qwen2 /);
        assert.deepEqual([t.n_prompt, t.n_gen, t.n_depth, t.n_threads], [a.prompt, 8, a.depth, 1]);
        assert.equal(t.samples_ns.length, 1);
        assert.equal(a.arMs, t.samples_ns[0] / 1e6);
        const row = new RegExp(
            `^\\| bench-small \\| 1 \\| 128 \\| 8 \\| ${a.request === "fresh" ? "fresh" : "after a one-line edit"} \\| ${a.mode.replace("+", "\\+")} \\| .* \\| \\d+\\.\\d\\d \\|$`,
            "m"
        );
        assert.match(r.stdout, row);
    }
    const [fresh, edit] = json.vsAr.rows;
    assert.deepEqual([fresh.prompt, fresh.depth], [128, 0]);
    // After the edit the prompt cache keeps the tokens before the edited one; the rest (a few tokens longer) is read again.
    assert.equal(edit.depth, editedAt);
    assert.ok(edit.prompt > 128 - editedAt, `read again ${edit.prompt}`);

    // The twin is the dream file with another architecture name: only header bytes differ, none of the tensors'.
    const twin = json.vsAr.twins["bench-small"];
    const dream = join(repoRoot, ".cache", "models", "bench-small-dream.gguf");
    const [a, b] = [readFileSync(dream), readFileSync(twin)];
    assert.equal(a.length, b.length);
    const header = await readGgufHeader(twin, statSync(twin).size);
    assert.equal(header.metadata.get("general.architecture"), "qwen2");
    assert.equal(header.metadata.get("qwen2.block_count"), 2);
    const dataStart = Math.min(...header.tensors.map((x) => x.fileOffset));
    assert.ok(a.subarray(dataStart).equals(b.subarray(dataStart)));
    assert.ok(!a.subarray(0, dataStart).equals(b.subarray(0, dataStart)));
});

test("--vs-ar refuses what it cannot compare: an unknown mode, no cells to compare, no llama-bench, a model that is not dream", () => {
    const small = ["--models", "bench-small", "--threads", "1", "--contexts", "128", "--holes", "8"];
    const refusals: [string, RegExp][] = [
        ["bogus", /"bogus" is not a cache mode \(none, prefix, dual\) or reuse/],
        ["DUAL", /"DUAL" is not a cache mode \(none, prefix, dual\) or reuse/],
        ["exact", /"exact" is not a cache mode \(none, prefix, dual\) or reuse/],
        ["", /it is empty/],
        ["dual+reuse", /--vs-ar names the mode of the fresh request; the request after an edit is each reuse mode's/]
    ];
    for (const [bad, why] of refusals) {
        const r = bench([...small, "--vs-ar", bad]);
        assert.equal(r.status, 1, bad);
        assert.match(
            r.stderr,
            new RegExp(`^error: option '--vs-ar \\[mode\\]' argument '.*' is invalid\\. bad configuration "[^"]*": ${why.source}; a configuration is`),
            bad
        );
    }
    let r = bench([...small, "--modes", "none,prefix", "--vs-ar", "dual"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--vs-ar dual compares the dual cell and the reuse cells \(dual\+reuse\), and --modes has none of them/);
    r = bench([...small, "--vs-ar", "--llama-bench", "/nonexistent/llama-bench"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /--vs-ar needs llama-bench: no \/nonexistent\/llama-bench/);
    r = bench(["--model-file", testModel({ arch: "llada" }), "--threads", "1", "--contexts", "128", "--holes", "8", "--vs-ar"]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /is a llada, not dream: only a dream model has a qwen2 twin/);
});

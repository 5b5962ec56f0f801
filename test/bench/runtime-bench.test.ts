// The runtime benchmark's threads flag: a fixed count and an adaptive one ("aN") side by side on the small model,
// and a wrong entry refused with the forms it takes; an option it does not declare, a stray argument or a mode
// outside the grammar of decoding configurations, refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../tools/test-models";

const BENCH = join(repoRoot, "out", "bench", "runtime-bench.js");

test("--threads 1,a1 runs a fixed and an adaptive cell, and shows the count the adaptive one took", { timeout: 300_000 }, () => {
    const out = join(mkdtempSync(join(tmpdir(), "runtime-bench-")), "runtime.json");
    const r = spawnSync(
        process.execPath,
        [BENCH, "--models", "small", "--threads", "1,a1", "--contexts", "256", "--holes", "8", "--modes", "dual", "--out", out],
        { encoding: "utf8" }
    );
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    assert.match(r.stdout, /^\| small \| 1 \| 256 \| 8 \| dual \|/m);
    assert.match(r.stdout, /^\| small \| ≤1: 1 \| 256 \| 8 \| dual \|/m);
});

test("a --threads entry that is neither a count nor aN is refused, naming the forms", () => {
    for (const bad of ["a0", "x", "2.5", "-1"]) {
        const r = spawnSync(process.execPath, [BENCH, "--models", "small", "--threads", bad], { encoding: "utf8" });
        assert.equal(r.status, 1, bad);
        assert.match(r.stderr, new RegExp(`--threads takes counts, "aN" for adaptive up to N, or a list, not ${bad.replace(".", "\\.")}`));
    }
});

test("an option the bench does not declare, an argument it takes none of, or a wrong mode is refused before anything runs", () => {
    const cases: [string[], RegExp][] = [
        [["--modles", "small"], /^error: unknown option '--modles'\n\(Did you mean one of --models, --modes\?\)/],
        [["--no-device-reductions"], /^error: unknown option '--no-device-reductions'/],
        // The threshold and the entropy bound are terms of a mode: dual+confidence-threshold=0.9, dual+entropy-bound=1.
        [["--threshold", "0.9"], /^error: unknown option '--threshold'/],
        [
            ["--modes", "none,exact"],
            /^error: option '--modes <list>' argument 'none,exact' is invalid\. bad configuration "exact": "exact" is not a cache mode/
        ],
        [["--models", "small", "256"], /^error: too many arguments\. Expected 0 arguments but got 1\./],
        [["write-prompt", "64", "--model-file", "x.gguf"], /^error: missing required argument 'path'/]
    ];
    for (const [args, message] of cases) {
        const r = spawnSync(process.execPath, [BENCH, ...args], { encoding: "utf8" });
        assert.equal(r.status, 1, args.join(" "));
        assert.match(r.stderr, message, args.join(" "));
        assert.equal(r.stdout, "", "no table, nothing measured");
    }
});

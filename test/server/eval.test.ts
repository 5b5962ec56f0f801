// dream-coder eval: the assembly of prefix + completion + suffix + tests proven by the canonical solutions,
// the empty completion failing, the whole command end to end with the generated model, resume, and bad input.
// A few problems per set: the full sets are a benchmark (docs/evaluation.md), not a test.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { parseEvalConfigs } from "../../server/src/eval/command";
import { configParams, modelCompleter, runEval, substituteCompleter, summarize, type Completer, type EvalRecord } from "../../server/src/eval/harness";
import { loadProblems, PROBLEM_SETS, programFor, type Problem, type ProblemSet } from "../../server/src/eval/problems";
import { growingTestModel } from "../tools/variable-model";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { repoRoot, testModel } from "../tools/test-models";

const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
const SETS = Object.keys(PROBLEM_SETS) as ProblemSet[];
/** The sets checked by parsing the filled file, not by tests. */
const PARSED: ProblemSet[] = ["py-lines", "py-token"];

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [CLI, "eval", ...args], { encoding: "utf8", env: { ...process.env, DREAM_CODER_MODEL: "" } });
    return { status: r.status, stdout: stripVTControlCharacters(r.stdout), stderr: stripVTControlCharacters(r.stderr) };
}

/** `n` problems spread over the whole set, so different tasks and hole places are covered. */
function sample(set: ProblemSet, n: number): Problem[] {
    const all = loadProblems(set);
    return Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
}

const scratch = () => mkdtempSync(join(tmpdir(), "dream-coder-eval-test-"));

test("every set loads whole: the counts SOURCE.md gives", () => {
    const counts: Record<ProblemSet, number> = {
        "single-line": 1033,
        "multi-line": 5815,
        "random-span-light": 164,
        humaneval: 164,
        "py-lines": 200,
        "py-token": 200
    };
    for (const set of SETS) assert.equal(loadProblems(set).length, counts[set], set);
});

test("the canonical solutions pass every sampled problem of every set; the empty completion almost none of the tested sets", async () => {
    const problems = SETS.filter((set) => !PARSED.includes(set)).flatMap((set) => sample(set, 12));
    const configs = parseEvalConfigs("none");
    for (const [kind, check] of [
        ["canonical", (passAt1: number) => assert.equal(passAt1, 1)],
        ["empty", (passAt1: number) => assert.ok(passAt1 <= 0.1, `empty completions pass ${passAt1}`)]
    ] as const) {
        const records = await runEval({ problems, configs, complete: substituteCompleter(kind), policy: "truth" });
        for (const set of SETS.filter((set) => !PARSED.includes(set))) {
            const [s] = summarize(
                records.filter((r) => r.set === set),
                configs
            );
            assert.equal(s.problems, 12);
            check(s.passAt1);
            if (kind === "canonical") assert.equal(s.exactMatch, 1);
        }
    }
});

test("held-out spans: the whole filled file is parsed; the truth parses, a NUL byte does not, the trivial filler is the set's", async () => {
    const configs = parseEvalConfigs("none");
    for (const set of PARSED) {
        const problems = sample(set, 12);
        for (const p of problems) {
            assert.equal(p.check.kind, "parse");
            assert.ok(p.prefix.length > 0 || p.suffix.length > 0, `${p.taskId} has context`);
        }
        const score = async (complete: Completer) => summarize(await runEval({ problems, configs, complete, policy: "truth" }), configs)[0];
        const canonical = await score(substituteCompleter("canonical"));
        assert.equal(canonical.passAt1, 1, `${set}: every file parses with its own text`);
        assert.equal(canonical.exactMatch, 1);
        // A bracket can sit harmlessly in a string or comment; Python's parser refuses a NUL byte anywhere.
        const broken = await score(async (p) => ({ text: `${p.truth}\u0000`, budget: 1, forwardPasses: 1, ms: 0 }));
        assert.equal(broken.passAt1, 0, `${set}: a NUL byte in the completion breaks every file`);
        const trivial = await runEval({ problems, configs, complete: substituteCompleter("trivial"), policy: "truth" });
        assert.ok(
            trivial.every((r) => r.completion === problems[0].trivial && r.completion.trim() !== ""),
            `${set}: one non-blank trivial filler`
        );
    }
    await assert.rejects(substituteCompleter("trivial")(sample("single-line", 1)[0], configs[0]), /the single-line set has no trivial filler/);
});

test("a problem longer than the model's context is cut to whole lines around its hole; the program keeps the whole text", async () => {
    const model = await DiffusionModel.load(testModel({ arch: "dream", context: 256 }), { threads: 1 });
    try {
        const line = (i: number) => `value_${i} = compute(${i}, scale=${i * 3})\n`;
        const prefix = Array.from({ length: 300 }, (_, i) => line(i)).join("");
        const suffix = Array.from({ length: 300 }, (_, i) => line(i + 300)).join("");
        assert.ok(model.tokenize(prefix + suffix).length > 2000, "far more than the 256-token context");
        const problem: Problem = {
            set: "py-lines",
            taskId: "long/0",
            prefix,
            truth: "x = 1\n",
            suffix,
            check: { kind: "parse", fileBefore: prefix, fileAfter: suffix }
        };
        const c = await modelCompleter(model, { kind: "truth" })(problem, parseEvalConfigs("none")[0]);
        assert.equal(c.budget, model.tokenize("x = 1\n").length);
        assert.ok(c.forwardPasses > 0);
        assert.match(programFor(problem, "x = 1\n"), /value_0 = [\s\S]*value_599 = /, "the parse check reads the whole file");
    } finally {
        model.dispose();
    }
});

test("configurations become the decoder's parameters: greedy, one step a token, the named terms in their places", () => {
    const [exact, dual, thr, ent, block] = parseEvalConfigs(
        "none, dual,dual+confidence-threshold=0.9,dual+entropy-bound=1+algorithm=maskgit_plus,block-length=16"
    );
    assert.deepEqual(configParams(exact, 20, false), { steps: 20, algorithm: "entropy", temperature: 0, topP: 1, earlyStop: false });
    assert.deepEqual(
        { ...configParams(dual, 20, true) },
        { steps: 20, algorithm: "entropy", temperature: 0, topP: 1, earlyStop: true, cache: "dual", schedule: "block", blockLength: 32 }
    );
    assert.equal(configParams(thr, 20, false).confidenceThreshold, 0.9);
    assert.equal(configParams(parseEvalConfigs("none+eot-penalty=5")[0], 20, false).eotPenalty, 5, "Dream-Coder's padding penalty");
    assert.deepEqual([configParams(ent, 20, false).entropyBound, configParams(ent, 20, false).algorithm], [1, "maskgit_plus"]);
    assert.deepEqual(
        [configParams(block, 20, false).cache, configParams(block, 20, false).schedule, configParams(block, 20, false).blockLength],
        [undefined, "block", 16]
    );
    // The grammar's refusals are test/server/decoding-config.test.ts's; eval adds its own.
    assert.throws(() => parseEvalConfigs("none,dual+reuse"), { message: /^bad configuration "dual\+reuse": eval decodes each problem once, so reuse/ });
});

test("eval end to end with the generated random model: four configurations, pass@1 0, none (exact decoding) agrees with itself", () => {
    const dir = scratch();
    const json = join(dir, "eval.json");
    const r = run(
        "--configs",
        "none,dual,dual+confidence-threshold=0.9,dual+entropy-bound=1",
        "--limit",
        "2",
        "-m",
        testModel({ arch: "dream" }),
        "-t",
        "1",
        "--json",
        json
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hole: truth: /m);
    assert.match(r.stdout, /^tests: .*python3; sandbox: /m);
    for (const config of ["none", "dual", "dual+confidence-threshold=0.9", "dual+entropy-bound=1"]) {
        assert.match(
            r.stdout,
            new RegExp(`^\\| ${config.replace(/[+.]/g, "\\$&")} \\| 2 \\| 0\\.0 % \\(0/2\\) \\|`, "m"),
            `${config}: 2 problems, none passed`
        );
    }
    assert.match(r.stdout, /^\| none \| .* \| 100\.0 % \|$/m, "none (exact decoding) agrees with itself");
    const out = JSON.parse(readFileSync(json, "utf8")) as {
        records: EvalRecord[];
        summaries: { config: string; forwardPassesPerProblem: number; tokensPerPass: number }[];
    };
    assert.equal(out.records.length, 8);
    for (const rec of out.records) assert.ok(rec.budget > 0 && rec.forwardPasses > 0 && rec.ms > 0, JSON.stringify(rec));
    const exact = out.summaries.find((s) => s.config === "none")!;
    const threshold = out.summaries.find((s) => s.config === "dual+confidence-threshold=0.9")!;
    assert.ok(Math.abs(exact.tokensPerPass - 1) < 0.2, `exact mode decides about one token per pass: ${exact.tokensPerPass}`);
    assert.ok(
        threshold.forwardPassesPerProblem <= exact.forwardPassesPerProblem + 2 * 2,
        "the threshold never needs more passes than exact (plus one refresh per block)"
    );
});

test("--resume skips finished problems and appends only new ones; fixed:N holes", () => {
    const dir = scratch();
    const resume = join(dir, "done.jsonl");
    const args = [
        "--configs",
        "none",
        "--hole",
        "fixed:8",
        "-m",
        testModel({ arch: "dream" }),
        "-t",
        "1",
        "--json",
        join(dir, "eval.json"),
        "--resume",
        resume
    ];
    assert.equal(run(...args, "--limit", "1").status, 0);
    const first = readFileSync(resume, "utf8");
    assert.equal(first.trim().split("\n").length, 1);
    const r = run(...args, "--limit", "3");
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hole: fixed:8: each hole has 8 tokens, early stop/m);
    const all = readFileSync(resume, "utf8");
    assert.ok(all.startsWith(first), "the finished record is kept as it was");
    const records = all
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l) as EvalRecord);
    assert.deepEqual(
        records.map((x) => x.budget),
        [8, 8, 8]
    );
    assert.equal(new Set(records.map((x) => x.taskId)).size, 3, "no problem ran twice");
    assert.match(r.stdout, /^\| none \| 3 \|/m, "the table counts the resumed record too");
    const other = run("--configs", "none", "--hole", "truth", "-m", testModel({ arch: "dream" }), "-t", "1", "--resume", resume, "--limit", "1");
    assert.equal(other.status, 1);
    assert.match(other.stderr, /made with hole policy fixed:8, not truth/);
});

test("variable holes: they start at START tokens, the model grows and shrinks them, and its expands and deletes are counted", () => {
    const dir = scratch();
    const json = join(dir, "eval.json");
    const r = run("--configs", "none,dual", "--hole", "variable:2", "-m", growingTestModel().path, "-t", "1", "--limit", "3", "--json", json);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^hole: variable:2: each hole starts at 2 tokens and the model grows or shrinks it, up to 64$/m);
    assert.match(r.stdout, /\| expands \/ problem \| deletes \/ problem \|/);
    const out = JSON.parse(readFileSync(json, "utf8")) as { records: EvalRecord[]; summaries: { expandsPerProblem: number | null }[] };
    assert.equal(out.records.length, 6);
    for (const rec of out.records) {
        assert.equal(rec.policy, "variable:2");
        assert.ok(rec.expands !== undefined && rec.deletes !== undefined, JSON.stringify(rec));
        assert.ok(rec.budget <= 64, "no hole grows past 64 tokens");
    }
    assert.ok(
        out.records.some((rec) => rec.expands! > 0),
        "a hole grew"
    );
    assert.ok(out.summaries.every((s) => s.expandsPerProblem !== null));
    // A model without the tokens cannot run the policy.
    const plain = run("--configs", "none", "--hole", "variable", "-m", testModel({ arch: "dream" }), "-t", "1", "--limit", "1");
    assert.equal(plain.status, 1);
    assert.match(plain.stderr, /has no expand and delete tokens: the variable hole policy needs a model that has them/);
});

test("bad input: clear messages and exit status 1", () => {
    const emptyDir = scratch();
    const badJsonl = join(scratch(), "bad.jsonl");
    writeFileSync(badJsonl, "{not json\n");
    const model = testModel({ arch: "dream" });
    const cases: [string[], RegExp][] = [
        [
            ["--configs", "none,dual+fast", "-m", model],
            /--configs <list>' argument 'none,dual\+fast' is invalid\. bad configuration "dual\+fast": "fast" is not a cache mode \(none, prefix, dual\) or reuse; a configuration is terms joined by \+/
        ],
        [["--configs", "exact", "-m", model], /bad configuration "exact": "exact" is not a cache mode \(none, prefix, dual\)/],
        [["--configs", "dual+confidence-threshold=1.5", "-m", model], /dreamCoder\.confidenceThreshold: 1\.5 is not valid \(a number from 0 to 1\)/],
        [["--configs", "dual+reuse", "-m", model], /bad configuration "dual\+reuse": eval decodes each problem once, so reuse would have no earlier request/],
        [["--sets", "mbpp", "-m", model], /"mbpp" is not a problem set: single-line, multi-line/],
        [["--hole", "fixed:0", "-m", model], /bad hole policy "fixed:0"/],
        [["--hole", "variable:64", "-m", model], /bad hole policy "variable:64": .*variable\[:START\]/],
        [["--data-dir", emptyDir, "-m", model], /missing data file .*HumanEval-SingleLineInfilling\.jsonl\.gz for the single-line set/],
        [["-m", testModel({ arch: "dream", maskToken: false })], /no mask token/],
        [["-m", testModel({ arch: "qwen2" })], /autoregressive/],
        [["--resume", badJsonl, "-m", model, "--limit", "1"], /line 1 is not JSON/]
    ];
    for (const [args, message] of cases) {
        const r = run(...args);
        assert.equal(r.status, 1, `${args.join(" ")} fails`);
        assert.match(r.stderr, message, args.join(" "));
    }
});

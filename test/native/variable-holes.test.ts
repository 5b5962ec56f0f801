// Variable-length holes (DreamOn's expand and delete): the C++ loop against the TypeScript statement of the rules
// (reference-variable.ts), fed the logits the addon computed at every step, on random layouts of the generated models.
// Those models know no expand or delete token, so each run names two tokens they often predict as expand and delete
// (test/tools/variable-model.ts).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CacheMode } from "../../common/decoding";
import { DecodeCancelledError, DiffusionModel, type Segment, type StepEvent } from "../../server/src/runtime/runtime";
import { frequentTokens, growingTestModel } from "../tools/variable-model";
import { type Exercised, type VariableMutation, type VariableParams, VariableReference } from "./reference-variable";
import { useTestModels } from "./test-models-loaded";

const m = useTestModels();

const WORDS = ["let", " x", " =", " 1", ";", "\n", " return", " y", "(", ")", " +", " if", " {", "}", " foo", " 42"];

/** A seeded generator (mulberry32): the layouts are the same on every run. */
function random(seed: number): () => number {
    let a = seed;
    return () => {
        a = (a + 0x6d2b79f5) | 0;
        let t = Math.imul(a ^ (a >>> 15), 1 | a);
        t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

/** Text and one to three holes of 1 to 4 masks that may grow by up to 10; some holes adjacent. */
function randomLayout(seed: number): Segment[] {
    const r = random(seed);
    const text = (n: number) => Array.from({ length: n }, () => WORDS[Math.floor(r() * WORDS.length)]).join("");
    const segments: Segment[] = [text(3 + Math.floor(r() * 6))];
    const holes = 1 + Math.floor(r() * 3);
    for (let h = 0; h < holes; h++) {
        const hole = 1 + Math.floor(r() * 4);
        segments.push({ hole, maxLength: hole + Math.floor(r() * 11) });
        if (r() < 0.7) segments.push(text(1 + Math.floor(r() * 5)));
    }
    return segments;
}

const PARAMS: VariableParams = { steps: 8, algorithm: "maskgit_plus", confidenceThreshold: 0 };

interface Run {
    model: DiffusionModel;
    segments: Segment[];
    expand: number;
    del: number;
    params?: Partial<VariableParams>;
    cache?: CacheMode;
    mutation?: VariableMutation;
}

/** Decodes with the addon and steps the reference beside it; returns what the run exercised. */
async function compare(run: Run): Promise<Exercised & { steps: number }> {
    const { model, expand, del } = run;
    const params = { ...PARAMS, ...run.params };
    const layout = model.layout(run.segments);
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(layout, {
        ...params,
        temperature: 0,
        traceLogits: true,
        expandToken: expand,
        deleteToken: del,
        ...(run.cache && run.cache !== "none" ? { cache: run.cache, schedule: "block" as const } : {}),
        onStep: (e) => events.push(e)
    });
    const ref = new VariableReference(layout.tokens, layout.holes, params, model.info.mask, expand, del, run.mutation);
    const n = model.info.nVocab;
    for (const [i, e] of events.entries()) {
        assert.equal(e.step, i, "every step of a variable-length request runs a forward pass");
        assert.deepEqual(e.candidates, ref.active(), `step ${i}: positions considered`);
        const rows = e.candidates!.map((_, r) => e.logits!.subarray(r * n, (r + 1) * n));
        const want = ref.step(rows);
        assert.deepEqual({ positions: e.positions, tokens: e.tokens }, { positions: want.positions, tokens: want.tokens }, `step ${i}: reveals`);
        assert.deepEqual(e.holeTokens, want.holeTokens, `step ${i}: the holes after it`);
    }
    assert.ok(ref.left === 0 || events.length === ref.bound, `the addon stopped after ${events.length} steps with ${ref.left} masks left`);
    assert.deepEqual(
        result.holes.map((h) => h.tokens),
        ref.holeTokens,
        "the holes as the request ended"
    );
    // Where the holes ended: each one's start follows from the text before it and the holes' lengths.
    for (const [i, h] of result.holes.entries()) {
        const before =
            i === 0
                ? layout.holes[0].start
                : result.holes[i - 1].start + result.holes[i - 1].length + (layout.holes[i].start - layout.holes[i - 1].start - layout.holes[i - 1].length);
        assert.equal(h.start, before, `hole ${i} starts after the text before it`);
        assert.deepEqual([...result.tokens.subarray(h.start, h.start + h.length)], h.tokens);
    }
    return { ...ref.exercised, steps: events.length };
}

function add(total: Exercised, e: Exercised): void {
    for (const k of Object.keys(total) as (keyof Exercised)[]) total[k] += e[k];
}

describe("variable-length holes: addon vs TypeScript reference of DreamOn's rules, step by step", () => {
    for (const [name, get] of [
        ["dream", () => m.dream],
        ["llada", () => m.llada]
    ] as const) {
        it(`random layouts, ${name}: expansions, deletions, full holes and emptied holes as the reference does them`, async (t) => {
            const model = get();
            const [a, b] = await frequentTokens(model);
            const total: Exercised = { expansions: 0, deletions: 0, blocked: 0, expandAtFirst: 0, expandAtLast: 0, emptied: 0 };
            let steps = 0;
            for (let seed = 1; seed <= 12; seed++) {
                // The most frequent token as expand grows holes to their maximum; as delete it empties them.
                for (const [expand, del] of [
                    [a, b],
                    [b, a]
                ]) {
                    const e = await compare({ model, segments: randomLayout(seed), expand, del });
                    add(total, e);
                    steps += e.steps;
                }
            }
            t.diagnostic(`${steps} steps compared: ${JSON.stringify(total)}`);
            for (const [k, v] of Object.entries(total)) assert.ok(v > 0, `no run exercised ${k}`);
        });
    }

    it("two adjacent holes resize apart, and the confidence threshold and other algorithms follow the same rules", async () => {
        const [a, b] = await frequentTokens(m.dream);
        const adjacent: Segment[] = ["let x = ", { hole: 2, maxLength: 9 }, { hole: 3, maxLength: 6 }, ";\n"];
        for (const [expand, del] of [
            [a, b],
            [b, a]
        ]) {
            await compare({ model: m.dream, segments: adjacent, expand, del });
            await compare({ model: m.dream, segments: randomLayout(3), expand, del, params: { confidenceThreshold: 0.02 } });
            await compare({ model: m.dream, segments: randomLayout(4), expand, del, params: { algorithm: "entropy", steps: 3 } });
            await compare({ model: m.llada, segments: randomLayout(5), expand, del, params: { algorithm: "topk_margin" } });
        }
    });

    it("the cached modes resize holes by the same rules (their logits are the addon's own, compared step by step)", async () => {
        const [a, b] = await frequentTokens(m.dream);
        for (const cache of ["dual", "prefix"] as const) {
            for (let seed = 1; seed <= 3; seed++) await compare({ model: m.dream, segments: randomLayout(seed), expand: a, del: b, cache });
            await compare({ model: m.llada, segments: randomLayout(4), expand: b, del: a, cache });
        }
    });

    it("cached modes: equal to exact mode when refreshed every step; their agreement without it is measured", async (t) => {
        const [a, b] = await frequentTokens(m.dream);
        const tokensOf = (r: { holes: { tokens: number[] }[] }) => r.holes.map((h) => h.tokens);
        let same = 0;
        let total = 0;
        for (let seed = 1; seed <= 6; seed++) {
            const layout = m.dream.layout(randomLayout(seed));
            const base = seed % 2 ? { steps: 8, expandToken: a, deleteToken: b } : { steps: 8, expandToken: b, deleteToken: a };
            const exact = await m.dream.decodeLayout(layout, base);
            for (const cache of ["dual", "prefix"] as const) {
                const refreshed = await m.dream.decodeLayout(layout, { ...base, cache, schedule: "block", refreshEveryStep: true });
                assert.deepEqual(tokensOf(refreshed), tokensOf(exact), `${cache}, refreshed every step, seed ${seed}`);
                const cached = await m.dream.decodeLayout(layout, { ...base, cache, schedule: "block" });
                total++;
                if (JSON.stringify(tokensOf(cached)) === JSON.stringify(tokensOf(exact))) same++;
            }
        }
        t.diagnostic(`cached modes without a refresh every step: ${same} of ${total} requests equal to exact mode`);
    });

    it("a model declares its tokens in the GGUF's metadata; a model without them has none", async () => {
        assert.deepEqual([m.dream.info.expandToken, m.dream.info.deleteToken], [-1, -1]);
        const { path, expand, del } = growingTestModel();
        const model = await DiffusionModel.load(path, { threads: 1 });
        try {
            assert.deepEqual([model.info.expandToken, model.info.deleteToken], [expand, del]);
            let longest = 0;
            await model.decode(["let x = ", { hole: 2, maxLength: 12 }, ";"], {
                steps: 12,
                onStep: (e) => (longest = Math.max(longest, e.holeTokens![0].length))
            });
            assert.equal(longest, 12, "the hole grew to its maximum with the model's own expand token");
        } finally {
            await model.dispose();
        }
    });

    it("cancellation stops a variable-length request within a step; a document's cache survives it and the next request", async (t) => {
        const { path } = growingTestModel();
        const model = await DiffusionModel.load(path, { threads: 1 });
        try {
            const segments: Segment[] = ["let x = ", { hole: 2, maxLength: 40 }, ";\n", { hole: 2, maxLength: 40 }];
            let whole = 0;
            await model.decode(segments, { steps: 80, onStep: () => whole++ });
            const controller = new AbortController();
            let seen = 0;
            await assert.rejects(
                model.decode(segments, {
                    steps: 80,
                    signal: controller.signal,
                    onStep: () => {
                        if (++seen === 3) controller.abort();
                    }
                }),
                DecodeCancelledError
            );
            // Steps already queued to JS when the abort landed still arrive (this model's steps take a millisecond).
            t.diagnostic(`${seen} of ${whole} steps before the request stopped`);
            assert.ok(seen < whole / 2, `${seen} of the ${whole} steps ran before the request stopped`);
            // The cached modes with a document's key: the same request twice gives the same holes, and a fixed-length
            // request on the key afterwards still decodes as it would without the key.
            const cached = { steps: 20, cache: "dual" as const, schedule: "block" as const };
            const first = await model.decode(segments, { ...cached, reuseKey: "doc" });
            const second = await model.decode(segments, { ...cached, reuseKey: "doc" });
            assert.deepEqual(
                second.holes.map((h) => h.tokens),
                first.holes.map((h) => h.tokens)
            );
            const fixed: Segment[] = ["let x = ", { hole: 6 }, ";\n", { hole: 6 }];
            const keyed = await model.decode(fixed, { ...cached, reuseKey: "doc", refreshEveryStep: true });
            const fresh = await model.decode(fixed, { ...cached, refreshEveryStep: true });
            assert.deepEqual(
                keyed.holes.map((h) => h.tokens),
                fresh.holes.map((h) => h.tokens)
            );
        } finally {
            await model.dispose();
        }
    });

    it("refuses, with a sentence, what it cannot decode", async () => {
        const hole = (maxLength: number): Segment[] => ["let x = ", { hole: 4, maxLength }, ";"];
        assert.throws(() => m.dream.layout(hole(3)), /maximum length must be a whole number of tokens no smaller than its 4/);
        await assert.rejects(
            m.dream.decode(hole(8), { steps: 4 }),
            /has no expand and delete tokens \(<\|expand\|>, <\|delete\|>\): its holes have fixed lengths/
        );
        await assert.rejects(m.dream.decode(hole(8), { steps: 4, expandToken: 5, deleteToken: 5 }), /must differ/);
        await assert.rejects(m.dream.decode(hole(8), { steps: 4, expandToken: m.dream.info.mask, deleteToken: 5 }), /other than the mask/);
        await assert.rejects(
            m.dream.decode(hole(8), { steps: 4, expandToken: 5, deleteToken: 6, algorithm: "origin" }),
            /confidence-ordered algorithm, not origin/
        );
        assert.throws(() => m.dream.layout(["x", { hole: 4, maxLength: m.dream.info.nCtxTrain }]), /more than the model's trained context/);
        // A fixed-length request on the same model still decodes.
        const ok = await m.dream.decode(hole(4), { steps: 4 });
        assert.equal(ok.holes[0].length, 4);
    });

    it("the comparison catches an expansion into one mask and a delete that leaves the suffix in place", async () => {
        const [a, b] = await frequentTokens(m.dream);
        for (const mutation of ["expand-one-mask", "delete-without-shift"] as const) {
            const [expand, del] = mutation === "expand-one-mask" ? [a, b] : [b, a];
            await assert.rejects(
                (async () => {
                    for (let seed = 1; seed <= 6; seed++) await compare({ model: m.dream, segments: randomLayout(seed), expand, del, mutation });
                })(),
                assert.AssertionError,
                `a reference with ${mutation} still agreed with the addon`
            );
        }
    });
});

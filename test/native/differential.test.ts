// Differential test: the C++ loop against the simple TypeScript statement of the same rules
// (reference-decoder.ts), fed the exact logits the addon computed at every step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DiffusionModel, type StepEvent } from "../../server/src/runtime/runtime";
import { useTestModels } from "./test-models-loaded";
import { ReferenceDecoder, type ReferenceParams } from "./reference-decoder";
import { SPECIAL_TOKENS, testModel } from "../tools/test-models";

const m = useTestModels();

/** <|endoftext|> in the generated models' vocabulary (test/tools/test-models.ts: the special tokens end it). */
const END_OF_TEXT = 4096 - SPECIAL_TOKENS.length + SPECIAL_TOKENS.indexOf("<|endoftext|>");
/** An ordinary token whose output row the confident model scales by 30: it wins, surely, at many places. */
const FAVOURED = 300;
/** A confidence that token passes at several places of a step. */
const THRESHOLD = 0.5;

const SEGMENTS = ["function clamp(x, lo, hi) {\n    ", { hole: 9 }, "\n}\n\nconst y = clamp(", { hole: 4 }, ");\n", { hole: 7 }];

async function compare(
    model: DiffusionModel,
    params: ReferenceParams
): Promise<{ steps: number; keptMasked: number; left: number; thresholdSteps: number; penaltyFlips: number }> {
    const layout = model.layout(SEGMENTS);
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(layout, { ...params, temperature: 0, traceLogits: true, onStep: (e) => events.push(e) });
    const ref = new ReferenceDecoder(layout.holes, params, [...model.info.endTokens], model.info.mask);
    const n = model.info.nVocab;
    let step = 0;
    for (const e of events) {
        for (; step < e.step; step++) assert.equal(ref.plan(step), null, `the reference runs step ${step}, the addon skipped it`);
        const plan = ref.plan(step);
        assert.ok(plan, `the addon ran step ${step}, the reference skips it`);
        assert.deepEqual(e.candidates, plan.active, `step ${step}: positions considered`);
        const rows = plan.active.map((_, i) => e.logits!.subarray(i * n, (i + 1) * n));
        const want = ref.reveal(step, plan, rows);
        assert.deepEqual(e.positions, want.positions, `step ${step}: positions revealed`);
        assert.deepEqual(e.tokens, want.tokens, `step ${step}: tokens revealed`);
        step++;
    }
    for (; step < ref.totalSteps && ref.left > 0; step++) assert.equal(ref.plan(step), null, `the reference still runs step ${step}`);
    const left = result.holes.flatMap((h) => h.tokens).filter((t) => t === model.info.mask).length;
    assert.equal(left, ref.left, "both leave the same number of places masked");
    return { steps: events.length, keptMasked: ref.keptMasked, left, thresholdSteps: ref.thresholdSteps, penaltyFlips: ref.penaltyFlips };
}

const BASE: ReferenceParams = {
    steps: 20,
    algorithm: "maskgit_plus",
    schedule: "timestep",
    eps: 1e-3,
    blockLength: 8,
    confidenceThreshold: 0,
    eotPenalty: 0,
    eotPenaltyDecay: 1
};

describe("differential: addon vs TypeScript reference, step by step", () => {
    for (const algorithm of ["maskgit_plus", "topk_margin", "entropy"] as const) {
        for (const schedule of ["timestep", "block"] as const) {
            for (const [name, get] of [
                ["dream", () => m.dream],
                ["llada", () => m.llada]
            ] as const) {
                it(`${algorithm}, ${schedule} schedule, ${name}`, async () => {
                    const { steps } = await compare(get(), { ...BASE, algorithm, schedule });
                    assert.ok(steps >= 10, `${steps} steps compared`);
                });
            }
        }
    }
    it("confidence threshold", async () => {
        // Random weights are never sure of a token: a model whose output head favours one token is, at many places,
        // so the threshold reveals more than the schedule on some steps.
        const model = await DiffusionModel.load(testModel({ arch: "dream", rowScales: { [FAVOURED]: 30 } }), { threads: 1 });
        try {
            for (const params of [
                { ...BASE, confidenceThreshold: THRESHOLD },
                { ...BASE, schedule: "block" as const, confidenceThreshold: THRESHOLD }
            ]) {
                const { steps, thresholdSteps } = await compare(model, params);
                assert.ok(thresholdSteps > 0, `the threshold revealed more than the schedule on ${thresholdSteps} of ${steps} steps`);
            }
        } finally {
            await model.dispose();
        }
        // On random weights it only ever keeps the schedule's count (at least one a step).
        assert.equal((await compare(m.llada, { ...BASE, schedule: "block", confidenceThreshold: 0.02 })).thresholdSteps, 0);
    });
    it("a place whose prediction is the mask token stays masked and is predicted again (Dream's rule)", async () => {
        // The mask's output row scaled up: its logit wins at some places, not all.
        const model = await DiffusionModel.load(testModel({ arch: "dream", maskRowScale: 4 }), { threads: 1 });
        try {
            for (const params of [BASE, { ...BASE, schedule: "block" as const }]) {
                const { keptMasked } = await compare(model, params);
                assert.ok(keptMasked > 0, `the mask was predicted at ${keptMasked} chosen places: the rule was not exercised`);
            }
            // The cached modes take the same path: no step reveals the mask token, and a place left masked adds no text.
            const layout = model.layout(SEGMENTS);
            const revealed: number[] = [];
            const r = await model.decodeLayout(layout, {
                steps: 20,
                schedule: "block",
                blockLength: 8,
                cache: "dual",
                onStep: (e) => revealed.push(...e.tokens)
            });
            assert.ok(!revealed.includes(model.info.mask), "a step revealed the mask token");
            for (const h of r.holes) {
                for (const [i, t] of h.tokens.entries())
                    assert.equal(h.revealStep[i] < 0, t === model.info.mask, "a place is masked exactly when never revealed");
                const end = h.tokens.findIndex((t) => model.isEndToken(t));
                assert.equal(h.text, model.detokenize((end < 0 ? h.tokens : h.tokens.slice(0, end)).filter((t) => t !== model.info.mask)));
            }
        } finally {
            await model.dispose();
        }
    });
    it("end-of-text penalty with decay", async () => {
        // End-of-text's output row scaled up: it is the argmax at some places, which a penalty then takes from it.
        const model = await DiffusionModel.load(testModel({ arch: "dream", rowScales: { [END_OF_TEXT]: 4 } }), { threads: 1 });
        try {
            const down = await compare(model, { ...BASE, eotPenalty: 3, eotPenaltyDecay: 2 });
            assert.ok(down.penaltyFlips > 0, "a penalty changed a pick");
        } finally {
            await model.dispose();
        }
        const up = await compare(m.dream, { ...BASE, algorithm: "entropy", eotPenalty: -4, eotPenaltyDecay: 1 });
        assert.ok(up.penaltyFlips > 0, "a negative penalty (a bonus) changed a pick");
    });
});

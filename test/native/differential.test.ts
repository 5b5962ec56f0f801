// Differential test: the C++ loop against the simple TypeScript statement of the same rules
// (reference-decoder.ts), fed the exact logits the addon computed at every step.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DiffusionModel, type StepEvent } from "../../server/src/runtime/runtime";
import { useTestModels } from "./test-models-loaded";
import { ReferenceDecoder, type ReferenceParams } from "./reference-decoder";

const m = useTestModels();

const SEGMENTS = ["function clamp(x, lo, hi) {\n    ", { hole: 9 }, "\n}\n\nconst y = clamp(", { hole: 4 }, ");\n", { hole: 7 }];

async function compare(model: DiffusionModel, params: ReferenceParams): Promise<number> {
    const layout = model.layout(SEGMENTS);
    const events: StepEvent[] = [];
    await model.decodeLayout(layout, { ...params, temperature: 0, traceLogits: true, onStep: (e) => events.push(e) });
    const ref = new ReferenceDecoder(layout.holes, params, [...model.info.endTokens]);
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
    for (; step < ref.totalSteps && !ref.done; step++) assert.equal(ref.plan(step), null, `the reference still runs step ${step}`);
    assert.ok(ref.done, "both finish every hole");
    return events.length;
}

const BASE: ReferenceParams = {
    steps: 20, algorithm: "maskgit_plus", schedule: "timestep", eps: 1e-3, blockLength: 8,
    confidenceThreshold: 0, eotPenalty: 0, eotPenaltyDecay: 1
};

describe("differential: addon vs TypeScript reference, step by step", () => {
    for (const algorithm of ["maskgit_plus", "topk_margin", "entropy"] as const) {
        for (const schedule of ["timestep", "block"] as const) {
            for (const [name, get] of [["dream", () => m.dream], ["llada", () => m.llada]] as const) {
                it(`${algorithm}, ${schedule} schedule, ${name}`, async () => {
                    const steps = await compare(get(), { ...BASE, algorithm, schedule });
                    assert.ok(steps >= 10, `${steps} steps compared`);
                });
            }
        }
    }
    it("confidence threshold", async () => {
        await compare(m.dream, { ...BASE, confidenceThreshold: 0.02 });
        await compare(m.llada, { ...BASE, schedule: "block", confidenceThreshold: 0.02 });
    });
    it("end-of-text penalty with decay", async () => {
        await compare(m.dream, { ...BASE, eotPenalty: 3, eotPenaltyDecay: 2 });
        await compare(m.dream, { ...BASE, algorithm: "entropy", eotPenalty: -4, eotPenaltyDecay: 1 });
    });
});

// Progress as the decoder reports it: each step event's totalSteps is the run's plan as of that step, so a job's
// "step N of M" never passes its total and ends at it, in every schedule, cache mode and hole kind.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DecodeParams } from "../../server/src/runtime/native";
import { DiffusionModel, type Segment, type StepEvent } from "../../server/src/runtime/runtime";
import { growingTestModel } from "../tools/variable-model";
import { useTestModels } from "./test-models-loaded";

const m = useTestModels();

const FIXED: Segment[] = ["def f(x):\n    return ", { hole: 12 }, "\n\nprint(", { hole: 7 }, ")\n"];

/** Decodes and checks the events' progress; returns them. */
async function progressOf(model: DiffusionModel, segments: Segment[], params: DecodeParams): Promise<StepEvent[]> {
    const events: StepEvent[] = [];
    await model.decode(segments, { ...params, onStep: (e) => events.push(e) });
    assert.ok(events.length > 0, "the run reported steps");
    let previous = -1;
    for (const e of events) {
        assert.ok(e.step > previous, `steps go forward: ${e.step} after ${previous}`);
        assert.ok(e.step + 1 <= e.totalSteps, `step ${e.step + 1} of ${e.totalSteps} passes its total`);
        previous = e.step;
    }
    const last = events.at(-1)!;
    assert.equal(last.step + 1, last.totalSteps, "the last event ends at the total");
    return events;
}

describe("the decoder's step count (StepEvent.totalSteps)", () => {
    const cases: [string, "dream" | "llada", DecodeParams][] = [
        ["timestep schedule, exact", "dream", { steps: 10 }],
        ["block schedule, exact", "llada", { steps: 12, schedule: "block", blockLength: 5 }],
        ["prefix cache", "dream", { steps: 12, schedule: "block", blockLength: 8, cache: "prefix" }],
        ["dual cache", "llada", { steps: 12, schedule: "block", blockLength: 8, cache: "dual" }],
        ["dual cache with a confidence threshold", "dream", { steps: 19, schedule: "block", blockLength: 8, cache: "dual", confidenceThreshold: 1e-6 }],
        ["entropy bound", "dream", { steps: 19, entropyBound: 1e9 }],
        ["early stop", "llada", { steps: 19, earlyStop: true }]
    ];
    for (const [name, arch, params] of cases) {
        it(`${name}: never past the total, ending at it`, async () => {
            await progressOf(m[arch], FIXED, params);
        });
    }

    it("a threshold that reveals everything at once ends at the first step, not at the schedule's count", async () => {
        const events = await progressOf(m.dream, FIXED, { steps: 19, confidenceThreshold: 1e-9 });
        assert.equal(events.length, 1, "one step revealed every place");
        assert.equal(events[0].totalSteps, 1);
    });

    it("fewer steps than blocks: each block gets one, and the count says so (not the steps asked for)", async () => {
        // 48 places in blocks of 8 with 4 steps asked: six blocks of one step.
        const events = await progressOf(m.dream, ["def g():\n", { hole: 48 }], { steps: 4, schedule: "block", blockLength: 8, cache: "dual" });
        assert.equal(events[0].totalSteps, 6);
        assert.equal(events.length, 6);
    });

    it("variable-length holes: the plan follows the holes as they grow, and ends at the last step", async () => {
        const model = await DiffusionModel.load(growingTestModel().path, { threads: 1 });
        try {
            for (const cache of ["none", "dual"] as const) {
                const events = await progressOf(model, ["x = ", { hole: 2, maxLength: 12 }, "\ny = ", { hole: 3 }, "\n"], {
                    steps: 6,
                    ...(cache === "dual" ? { cache, schedule: "block", blockLength: 8 } : {})
                });
                const lengths = events.map((e) => e.holeTokens![0].length);
                assert.ok(Math.max(...lengths) > 2, `the hole grew (${lengths.join(", ")}), so the plan had to change`);
            }
        } finally {
            await model.dispose();
        }
    });
});

// Greedy decoding with llama.cpp's row reductions (native/patches/0002: argmax, top two, z and s computed where
// the logits are, 20 bytes a row copied out) against the full-logits path (the rows copied out and scanned on the
// host): the same tokens, reveal steps and confidences for every algorithm, threshold and cache mode.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DiffusionModel, type DecodeOptions, type SequenceLayout, type StepEvent } from "../../server/src/runtime/runtime";
import { quantizedTestModel, testModel } from "../tools/test-models";

// Three holes (23 positions) in fixed text; blocks of 8 cross from one hole into the next.
const SEGMENTS = ["def area(w, h):\n    ", { hole: 9 }, "\n\ndef perimeter(w, h):\n    return ", { hole: 6 }, "\n\nprint(area(2, 3))", { hole: 8 }, "\n"];
const ROW_BYTES = 20; // llama_diffusion_row: id, max, second, z, s
const BLOCK_ROWS = 8; // the cached cases' blockLength: a block step outputs at most one row per block position

// The device sums exp in float (ggml_sum_rows), the host scan in doubles every 256 values.
function close(a: number, b: number): boolean {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
    return Math.abs(a - b) <= 1e-6 + 1e-4 * Math.abs(b);
}

async function run(model: DiffusionModel, options: DecodeOptions, layout: SequenceLayout = model.layout(SEGMENTS)) {
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(layout, { ...options, onStep: (e) => events.push(e) });
    return { layout, events, result };
}

// Each algorithm plain, and the confidence-ordered ones with a threshold and with an entropy bound (origin refuses both).
const VARIANTS: { label: string; options: DecodeOptions }[] = [
    { label: "origin", options: { algorithm: "origin", seed: 3 } },
    ...(["maskgit_plus", "topk_margin", "entropy"] as const).flatMap((algorithm) => [
        { label: algorithm, options: { algorithm } },
        { label: `${algorithm} + threshold`, options: { algorithm, confidenceThreshold: 0.002 } },
        { label: `${algorithm} + entropy bound`, options: { algorithm, entropyBound: 9 } }
    ])
];
const CACHES: { cache: "none" | "prefix" | "dual"; options: DecodeOptions }[] = [
    { cache: "none", options: { steps: 12 } },
    { cache: "prefix", options: { cache: "prefix", schedule: "block", blockLength: 8, steps: 12 } },
    { cache: "dual", options: { cache: "dual", schedule: "block", blockLength: 8, steps: 12 } }
];

const models = {} as Record<"dream F16" | "dream Q4_K_M" | "llada", DiffusionModel>;
before(async () => {
    models["dream F16"] = await DiffusionModel.load(testModel({ arch: "dream", type: "f16" }), { threads: 1 });
    models["dream Q4_K_M"] = await DiffusionModel.load(quantizedTestModel("Q4_K_M"), { threads: 1 });
    models.llada = await DiffusionModel.load(testModel({ arch: "llada" }), { threads: 1 });
});
after(async () => {
    for (const m of Object.values(models)) await m?.dispose();
});

describe("device reductions", () => {
    for (const name of ["dream F16", "dream Q4_K_M", "llada"] as const) {
        for (const { cache, options: cacheOptions } of CACHES) {
            it(`${name}, cache ${cache}: the same tokens, reveal steps and confidences as the full-logits path`, async () => {
                const model = models[name];
                const nVocab = model.info.nVocab;
                let revealedBeyondSchedule = 0;
                for (const { label, options } of VARIANTS) {
                    const opts = { ...cacheOptions, ...options };
                    const host = await run(model, { ...opts, deviceReductions: false });
                    const device = await run(model, { ...opts, deviceReductions: true });
                    assert.deepEqual([...device.result.tokens], [...host.result.tokens], `${label}: tokens`);
                    assert.deepEqual([...device.result.revealStep], [...host.result.revealStep], `${label}: reveal steps`);
                    assert.equal(device.events.length, host.events.length, `${label}: steps`);
                    device.events.forEach((e, i) => {
                        const h = host.events[i];
                        assert.deepEqual(e.positions, h.positions, `${label}, step ${e.step}: positions`);
                        assert.deepEqual(e.tokens, h.tokens, `${label}, step ${e.step}: tokens`);
                        for (const [j, c] of e.confidences.entries()) {
                            assert.ok(
                                close(c, h.confidences[j]),
                                `${label}, step ${e.step}, position ${e.positions[j]}: confidence ${c} vs ${h.confidences[j]}`
                            );
                        }
                        // n_vocab floats a row, or one 20-byte reduction a row. Full passes read the same rows; a cached
                        // block step with the reductions reads every row of its block (one graph shape through the
                        // block), without them only the masked ones.
                        const hostRows = h.copiedBytes / (4 * nVocab),
                            deviceRows = e.copiedBytes / ROW_BYTES;
                        assert.ok(Number.isInteger(hostRows) && Number.isInteger(deviceRows), `${label}, step ${e.step}: whole rows`);
                        if (h.full) assert.equal(deviceRows, hostRows, `${label}, step ${e.step}: rows of a full pass`);
                        else assert.ok(deviceRows >= hostRows && deviceRows <= BLOCK_ROWS, `${label}, step ${e.step}: ${deviceRows} rows vs ${hostRows}`);
                    });
                    assert.equal(
                        device.result.copiedBytes,
                        device.events.reduce((a, e) => a + e.copiedBytes, 0)
                    );
                    if (label.includes("+")) revealedBeyondSchedule += device.events.filter((e) => e.positions.length > 2).length;
                }
                assert.ok(revealedBeyondSchedule > 0, "the threshold and the entropy bound reveal more than the schedule somewhere");
            });
        }
    }

    it("exact mode outputs only the rows a step reads (one per masked position)", async () => {
        const model = models["dream F16"];
        const { layout, events } = await run(model, { steps: 12, deviceReductions: false });
        let masked = layout.holes.reduce((a, h) => a + h.length, 0);
        for (const e of events) {
            assert.equal(e.rows, layout.tokens.length, "the pass covers the whole sequence");
            assert.equal(e.copiedBytes, masked * 4 * model.info.nVocab, `step ${e.step}: ${masked} rows of logits`);
            masked -= e.positions.length;
        }
        // forwardLogits still returns every row.
        assert.equal((await model.forwardLogits(layout.tokens)).length, layout.tokens.length * model.info.nVocab);
    });

    it("sampling, top-k, the end-of-text penalty and traced logits take the full-logits path", async () => {
        const model = models["dream F16"];
        const rowBytes = 4 * model.info.nVocab;
        for (const options of [{ temperature: 0.7, seed: 1 }, { topK: 5 }, { eotPenalty: 1 }, { traceLogits: true }] as DecodeOptions[]) {
            const { events } = await run(model, { steps: 6, ...options, deviceReductions: true });
            assert.ok(events.length > 0);
            for (const e of events) assert.equal(e.copiedBytes % rowBytes, 0, `${JSON.stringify(options)}: whole rows`);
        }
        const { events } = await run(model, { steps: 6, deviceReductions: true });
        assert.ok(events.length > 0);
        for (const e of events) assert.ok(e.copiedBytes < rowBytes, "greedy: reductions only");
    });

    it('by default ("auto") the reductions run only where the logits are on a GPU: not with the model on the CPU', async () => {
        const model = models["dream F16"];
        const { events } = await run(model, { steps: 6 });
        assert.ok(events.length > 0);
        for (const e of events) assert.equal(e.copiedBytes % (4 * model.info.nVocab), 0, "whole rows");
    });
});

describe("device reductions, 151,936-token vocabulary", () => {
    let model: DiffusionModel;
    before(async () => {
        model = await DiffusionModel.load(testModel({ arch: "dream", vocab: 151936, type: "f16" }), { threads: 2 });
    });
    after(async () => model?.dispose());

    it("a greedy step copies at least 100x fewer bytes than the full-logits path, with the same result", async () => {
        for (const cacheOptions of CACHES.map((c) => c.options)) {
            const host = await run(model, { ...cacheOptions, deviceReductions: false });
            const device = await run(model, { ...cacheOptions, deviceReductions: true });
            assert.deepEqual([...device.result.tokens], [...host.result.tokens]);
            assert.deepEqual([...device.result.revealStep], [...host.result.revealStep]);
            device.events.forEach((e, i) => {
                const h = host.events[i];
                assert.ok(h.copiedBytes >= 100 * e.copiedBytes, `step ${e.step}: ${h.copiedBytes} vs ${e.copiedBytes} bytes`);
            });
            const perStep = (r: typeof host) => r.result.copiedBytes / r.events.length;
            console.log(
                `# ${cacheOptions.cache ?? "none"}: ${perStep(host).toFixed(0)} bytes a step (full logits) vs ${perStep(device).toFixed(0)} (reductions)`
            );
        }
    });

    it("the compute buffer is reserved for a block's output rows, not the window's, with or without the reductions", async () => {
        // 1,024 tokens around a 32-token hole: a logits buffer for every position would be 1,024 x 151,936 floats
        // (594 MiB), and the reductions' intermediate copies several times that; a step outputs at most a block.
        const text = `x = [${Array.from({ length: 400 }, (_, i) => i).join(", ")}]\n`;
        const ids = model.tokenize(text).subarray(0, 992);
        const segments = [model.detokenize(ids.subarray(0, 496)), { hole: 32 }, model.detokenize(ids.subarray(496))];
        const windowLogits = 1024 * model.info.nVocab * 4;
        for (const deviceReductions of [false, true]) {
            const r = await model.decode(segments, { cache: "dual", schedule: "block", blockLength: 32, steps: 4, deviceReductions });
            console.log(`# reductions ${deviceReductions}: compute buffers ${(r.computeBytes / 2 ** 20).toFixed(0)} MiB`);
            assert.ok(r.computeBytes > 0, "the context reports its compute buffers");
            assert.ok(r.computeBytes < windowLogits / 2, `reductions ${deviceReductions}: ${r.computeBytes} bytes of compute buffers`);
        }
    });
});

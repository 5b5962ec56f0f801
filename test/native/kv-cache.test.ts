// The KV-cache modes (native/patches/0001 + the decoder's prefix / dual caches) against exact mode, on the
// generated dream (shifted logits) and llada (unshifted) models.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DiffusionModel, type DecodeOptions, type SequenceLayout, type StepEvent } from "../../server/src/runtime/runtime";
import { testModel } from "../tools/test-models";
import { QUANT_TYPES } from "../tools/test-models";
import { useQuantizedModels, useTestModels } from "./test-models-loaded";

const m = useTestModels();
const q = useQuantizedModels();

// Three holes (23 positions) in fixed text; blocks of 8 cross from one hole into the next.
const SEGMENTS = ["def area(w, h):\n    ", { hole: 9 }, "\n\ndef perimeter(w, h):\n    return ", { hole: 6 }, "\n\nprint(area(2, 3))", { hole: 8 }, "\n"];
const BLOCK: DecodeOptions = { schedule: "block", blockLength: 8, steps: 23 };
// Logits of the cached graph and of llama.cpp's encoder path differ only by float summation order.
const LOGIT_TOLERANCE = 1e-4;
// Quantized weights: ggml re-quantizes the activations to 8 bits before each quantized matmul, so the tiny
// summation-order differences flip some roundings. Measured here: up to 0.04 (Q8_0, Q4_0) and 0.055 (Q4_K_M)
// on logits of magnitude up to 4.3; F16 weights 0.0016.
const QUANTIZED_LOGIT_TOLERANCE = 0.1;

async function run(model: DiffusionModel, options: DecodeOptions, layout: SequenceLayout = model.layout(SEGMENTS)) {
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(layout, { ...options, onStep: (e) => events.push(e) });
    return { layout, events, result };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
    assert.equal(a.length, b.length);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    return d;
}

/** The sequence as it stood before each step: the layout with every earlier step's reveals applied. */
function statesBefore(layout: SequenceLayout, events: StepEvent[]): Int32Array[] {
    const tokens = Int32Array.from(layout.tokens);
    return events.map((e) => {
        const before = Int32Array.from(tokens);
        for (const [i, p] of e.positions.entries()) tokens[p] = e.tokens[i];
        return before;
    });
}

function entropyOf(row: Float32Array): number {
    let max = -Infinity;
    for (const v of row) max = Math.max(max, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - max);
    let h = 0;
    for (const v of row) {
        const p = Math.exp(v - max) / z;
        if (p > 0) h -= p * Math.log(p);
    }
    return h;
}

const MODELS = [
    ["dream", () => m.dream],
    ["llada", () => m.llada]
] as const;
const EVERY_MODEL = [
    ...MODELS.map(([name, get]) => ({ name, get, quantized: false, tolerance: LOGIT_TOLERANCE })),
    ...QUANT_TYPES.map((t) => ({ name: `dream ${t}`, get: () => q[t], quantized: true, tolerance: QUANTIZED_LOGIT_TOLERANCE }))
];

describe("KV cache", () => {
    for (const { name, get, quantized, tolerance } of EVERY_MODEL) {
        if (quantized)
            it(`${name}: refreshed before every step, each cached block pass gives a full pass's logits on the same sequence`, async () => {
                const model = get();
                const n = model.info.nVocab;
                for (const cache of ["prefix", "dual"] as const) {
                    // Near-ties may be broken differently than in exact mode, so each step is checked on its own sequence.
                    const cached = await run(model, { ...BLOCK, cache, refreshEveryStep: true, traceLogits: true });
                    const states = statesBefore(cached.layout, cached.events);
                    for (const [i, e] of cached.events.entries()) {
                        assert.equal(e.full, false);
                        const full = await model.forwardLogits(states[i]);
                        e.candidates!.forEach((pos, j) => {
                            const row = model.info.shiftLogits ? pos - 1 : pos;
                            const d = maxAbsDiff(e.logits!.subarray(j * n, (j + 1) * n), full.subarray(row * n, (row + 1) * n));
                            assert.ok(d < QUANTIZED_LOGIT_TOLERANCE, `${cache}, step ${e.step}, position ${pos}: logits differ by ${d}`);
                        });
                    }
                }
            });
        else
            for (const cache of ["prefix", "dual"] as const) {
                it(`${name}, ${cache}: refreshed before every step, the cached block pass gives exact mode's tokens and logits`, async () => {
                    const model = get();
                    for (const algorithm of ["maskgit_plus", "topk_margin", "entropy"] as const) {
                        const exact = await run(model, { ...BLOCK, algorithm, traceLogits: true });
                        const cached = await run(model, { ...BLOCK, algorithm, cache, refreshEveryStep: true, traceLogits: true });
                        assert.deepEqual([...cached.result.tokens], [...exact.result.tokens], `${algorithm}: tokens`);
                        assert.equal(cached.events.length, exact.events.length);
                        cached.events.forEach((e, i) => {
                            const x = exact.events[i];
                            assert.equal(e.full, false, "every step's logits come from the block pass, not the refresh");
                            assert.ok(e.rows < cached.layout.tokens.length, `step ${e.step}: ${e.rows} rows recomputed`);
                            assert.deepEqual(e.positions, x.positions, `${algorithm}, step ${e.step}: positions`);
                            assert.deepEqual(e.candidates, x.candidates);
                            const d = maxAbsDiff(e.logits!, x.logits!);
                            assert.ok(d < LOGIT_TOLERANCE, `${algorithm}, step ${e.step}: logits differ by ${d}`);
                        });
                        assert.equal(cached.result.fullPasses, cached.events.length, "one refresh per step");
                    }
                });
            }

        it(`${name}: with one refresh per block, the first step of every block equals exact mode on the same sequence`, async () => {
            const model = get();
            for (const cache of ["prefix", "dual"] as const) {
                const cached = await run(model, { ...BLOCK, cache, traceLogits: true });
                const states = statesBefore(cached.layout, cached.events);
                const n = model.info.nVocab;
                const gen = cached.layout.holes.flatMap((h) => Array.from({ length: h.length }, (_, i) => h.start + i));
                const blockOf = (p: number) => Math.floor(gen.indexOf(p) / 8);
                let firsts = 0;
                let seen = -1;
                for (const [i, e] of cached.events.entries()) {
                    const block = blockOf(e.candidates![0]);
                    if (block === seen) {
                        assert.equal(e.full, false, `${cache}: step ${e.step} inside block ${block} reuses the cache`);
                        // dual: the block (from the row before it for Dream); prefix: the block and everything after it
                        const blockGen = gen.slice(block * 8, block * 8 + 8);
                        const r0 = Math.min(...blockGen) - (model.info.shiftLogits ? 1 : 0);
                        const r1 = cache === "dual" ? Math.max(...blockGen) + 1 : cached.layout.tokens.length;
                        assert.equal(e.rows, r1 - r0, `${cache}: step ${e.step} recomputes rows ${r0}..${r1}`);
                        continue;
                    }
                    seen = block;
                    firsts++;
                    assert.equal(e.full, true, `${cache}: block ${block} starts with a full pass`);
                    const full = await model.forwardLogits(states[i]);
                    e.candidates!.forEach((pos, j) => {
                        const row = model.info.shiftLogits ? pos - 1 : pos;
                        const d = maxAbsDiff(e.logits!.subarray(j * n, (j + 1) * n), full.subarray(row * n, (row + 1) * n));
                        assert.ok(d < tolerance, `${cache}, block ${block}, position ${pos}: logits differ by ${d}`);
                    });
                }
                assert.equal(firsts, 3, "23 positions in blocks of 8: three blocks");
                assert.equal(cached.result.fullPasses, 3);
                // The first block's first step sees the same sequence in both modes: the same reveal.
                const exact = await run(model, BLOCK);
                assert.deepEqual(cached.events[0].positions, exact.events[0].positions);
                assert.deepEqual(cached.events[0].tokens, exact.events[0].tokens);
            }
        });

        it(`${name}: the cached modes never change fixed text and fill every hole position once`, async () => {
            const model = get();
            const modes: DecodeOptions[] = [
                { cache: "prefix" },
                { cache: "dual" },
                { cache: "dual", confidenceThreshold: 0.002 },
                { cache: "dual", algorithm: "entropy", entropyBound: 16 },
                { cache: "dual", temperature: 0.8, seed: 5 },
                { cache: "dual", earlyStop: true, eotPenalty: -30, eotPenaltyDecay: 0 },
                { cache: "prefix", cacheType: "f16" }
            ];
            for (const mode of modes) {
                const { layout, events, result } = await run(model, { ...BLOCK, ...mode });
                const holes = new Set(layout.holes.flatMap((h) => Array.from({ length: h.length }, (_, i) => h.start + i)));
                const seen = new Set<number>();
                for (const e of events)
                    for (const p of e.positions) {
                        assert.ok(holes.has(p) && !seen.has(p), `${JSON.stringify(mode)}: position ${p}`);
                        seen.add(p);
                    }
                assert.equal(seen.size, holes.size, `${JSON.stringify(mode)}: every hole position revealed`);
                layout.tokens.forEach((t, i) => {
                    if (!holes.has(i)) assert.equal(result.tokens[i], t, `${JSON.stringify(mode)}: fixed token ${i} changed`);
                    else assert.notEqual(result.tokens[i], model.info.mask);
                });
            }
        });
    }

    it("an F16 cache changes the cached logits slightly (~1e-3), an F32 cache does not", async () => {
        for (const [name, get] of MODELS) {
            const model = get();
            const exact = await run(model, { ...BLOCK, traceLogits: true });
            const f32 = await run(model, { ...BLOCK, cache: "dual", cacheType: "f32", refreshEveryStep: true, traceLogits: true });
            const f16 = await run(model, { ...BLOCK, cache: "dual", cacheType: "f16", refreshEveryStep: true, traceLogits: true });
            const d32 = maxAbsDiff(f32.events[0].logits!, exact.events[0].logits!);
            const d16 = maxAbsDiff(f16.events[0].logits!, exact.events[0].logits!);
            assert.ok(d32 < LOGIT_TOLERANCE, `${name}: F32 ${d32}`);
            assert.ok(d16 > d32 && d16 > 1e-5 && d16 < 0.05, `${name}: F16 differs by ${d16} (F32: ${d32})`);
        }
    });

    it("a request never reads the cache of an earlier request or of another model", async () => {
        const short = ["x = 1\n", { hole: 10 }, "\ny = 2\n"];
        const long = ["a".repeat(120), { hole: 40 }, "b".repeat(160)];
        const fresh = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1 });
        try {
            const alone = await run(fresh, { ...BLOCK, steps: 10, cache: "dual", traceLogits: true }, fresh.layout(short));
            // The shared model first decodes a longer request (its cells reach far past the short one's end) ...
            await run(m.dream, { ...BLOCK, steps: 40, cache: "dual" }, m.dream.layout(long));
            // ... and, interleaved, the llada model decodes too.
            const [after] = await Promise.all([
                run(m.dream, { ...BLOCK, steps: 10, cache: "dual", traceLogits: true }, m.dream.layout(short)),
                run(m.llada, { ...BLOCK, steps: 40, cache: "dual" }, m.llada.layout(long))
            ]);
            assert.deepEqual([...after.result.tokens], [...alone.result.tokens]);
            assert.equal(after.events.length, alone.events.length);
            for (const [i, e] of after.events.entries()) assert.deepEqual(e.logits, alone.events[i].logits, `step ${e.step}: the same logits, bit for bit`);
        } finally {
            await fresh.dispose();
        }
    });

    it("the entropy bound reveals, most certain first, the longest run whose summed entropy stays within it", async () => {
        const ONE_A_STEP: DecodeOptions = { ...BLOCK, steps: 24, algorithm: "entropy" }; // 3 blocks of 8 steps
        for (const [name, get] of MODELS) {
            const model = get();
            const exactRun = await run(model, { ...ONE_A_STEP, traceLogits: true });
            const n = model.info.nVocab;
            const first = exactRun.events[0];
            assert.equal(first.positions.length, 1);
            const byEntropy = first.candidates!.map((pos, j) => ({ pos, h: entropyOf(first.logits!.subarray(j * n, (j + 1) * n)) })).sort((a, b) => a.h - b.h);
            assert.equal(byEntropy.length, 8, "the first block's candidates");
            // Bounds that admit exactly three, four and then all eight candidates of the first block.
            for (const take of [3, 4, 8]) {
                const sum: number = byEntropy.slice(0, take).reduce((a, b) => a + b.h, 0);
                const bound: number = take < byEntropy.length ? sum + byEntropy[take].h / 2 : sum + 1;
                const eb = await run(model, { ...ONE_A_STEP, entropyBound: bound });
                assert.deepEqual(
                    new Set(eb.events[0].positions),
                    new Set(byEntropy.slice(0, take).map((c) => c.pos)),
                    `${name}: bound ${bound.toFixed(3)} reveals the ${take} lowest-entropy positions`
                );
            }
            // A bound below every entropy still reveals what the schedule asks (here one a step), never zero.
            const tiny = await run(model, { ...ONE_A_STEP, entropyBound: 1e-6 });
            assert.ok(
                tiny.events.every((e) => e.positions.length === 1),
                "one a step"
            );
            assert.equal(tiny.events.length, 23);
            // The same rule in the cached mode: a huge bound finishes each block in one step.
            const huge = await run(model, { ...ONE_A_STEP, entropyBound: 1e6, cache: "dual" });
            assert.equal(huge.events.length, 3, `${name}: one step per block`);
        }
    });

    it("refuses bad combinations with clear errors and keeps serving", async () => {
        await assert.rejects(m.dream.decode(SEGMENTS, { cache: "dual" }), /block by block: use the block schedule/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, cache: "bogus" as never }), /unknown cache mode 'bogus'/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, cache: "dual", cacheType: "q8" as never }), /unknown cache type 'q8'/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, refreshEveryStep: true }), /refresh_every_step needs a KV cache mode/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, algorithm: "origin", entropyBound: 2 }), /entropy_bound needs a confidence-ordered/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, entropyBound: -1 }), /must be 0 \(off\) or positive/);
        await assert.rejects(m.dream.decode(SEGMENTS, { ...BLOCK, cache: "dual", blockLength: 0 }), /block_length must be at least 1/);
        const ok = await m.dream.decode(SEGMENTS, { ...BLOCK, cache: "dual" });
        assert.equal(ok.holes.length, 3);
    });
});

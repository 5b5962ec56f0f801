// The decoder through the real addon and real llama.cpp, on generated models.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DecodeCancelledError, DiffusionModel, type DecodeOptions, type StepEvent } from "../../server/src/runtime/runtime";
import { timestepCount } from "./reference-decoder";
import { QUANT_TYPES, testModel } from "../tools/test-models";
import { useQuantizedModels, useTestModels } from "./test-models-loaded";

const m = useTestModels();
const q = useQuantizedModels();
const EVERY_MODEL = [["dream", () => m.dream], ["llada", () => m.llada], ...QUANT_TYPES.map((t) => [`dream ${t}`, () => q[t]] as const)] as const;

const SEGMENTS = ["def area(w, h):\n    ", { hole: 6 }, "\n\ndef perimeter(w, h):\n    return ", { hole: 5 }, "\n\nprint(area(2, 3))", { hole: 4 }, "\n"];

async function run(model: DiffusionModel, options: DecodeOptions) {
    const layout = model.layout(SEGMENTS);
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(layout, { ...options, onStep: (e) => events.push(e) });
    return { layout, events, result };
}

function expectedTimestepCounts(nMasked: number, steps: number, eps: number): number[] {
    const counts: number[] = [];
    for (let i = 0; i < steps; i++) {
        counts.push(timestepCount(nMasked, i, steps, eps));
        nMasked -= counts[i];
    }
    return counts;
}

describe("decoder", () => {
    for (const [name, get] of EVERY_MODEL) {
        it(`${name}: reveals only inside holes, each hole position exactly once, fixed text untouched`, async () => {
            const model = get();
            for (const algorithm of ["origin", "maskgit_plus", "topk_margin", "entropy"] as const) {
                const { layout, events, result } = await run(model, { steps: 15, algorithm, temperature: algorithm === "origin" ? 0.7 : 0, seed: 3 });
                const holePositions = new Set(layout.holes.flatMap((h) => Array.from({ length: h.length }, (_, i) => h.start + i)));
                const seen = new Set<number>();
                for (const e of events) {
                    for (const p of e.positions) {
                        assert.ok(holePositions.has(p), `${algorithm}: step ${e.step} revealed ${p}, outside every hole`);
                        assert.ok(!seen.has(p), `${algorithm}: ${p} revealed twice`);
                        seen.add(p);
                        assert.equal(result.revealStep[p], e.step);
                    }
                }
                assert.equal(seen.size, holePositions.size, `${algorithm}: every hole position is revealed`);
                layout.tokens.forEach((t, i) => {
                    if (!holePositions.has(i)) assert.equal(result.tokens[i], t, `${algorithm}: fixed token ${i} changed`);
                    else assert.notEqual(result.tokens[i], model.info.mask, `${algorithm}: ${i} still masked`);
                });
                assert.equal(result.holes.length, 3);
                assert.equal(result.forwardPasses, events.length, "one event per forward pass, all delivered before the result");
            }
        });
    }

    it("Dream's time grid reveals floor(n·(1 − s/t)) a step, all that remain on the last, and skips empty steps", async () => {
        const steps = 10;
        const { events } = await run(m.dream, { steps, eps: 1e-3 });
        const expected = expectedTimestepCounts(15, steps, 1e-3);
        const byStep = new Map(events.map((e) => [e.step, e.positions.length]));
        for (const [i, k] of expected.entries()) assert.equal(byStep.get(i) ?? 0, k, `step ${i}`);
        assert.equal(events.length, expected.filter((k) => k > 0).length);
    });

    it("LLaDA's block schedule finishes blocks left to right with the masks spread evenly", async () => {
        const { layout, events } = await run(m.llada, { steps: 12, schedule: "block", blockLength: 5 });
        const gen = layout.holes.flatMap((h) => Array.from({ length: h.length }, (_, i) => h.start + i));
        // 15 positions, blocks of 5 -> 3 blocks of 4 steps: 2, 1, 1, 1 each
        const counts = new Map(events.map((e) => [e.step, e.positions]));
        for (let b = 0; b < 3; b++) {
            const block = new Set(gen.slice(b * 5, b * 5 + 5));
            [2, 1, 1, 1].forEach((k, local) => {
                const positions = counts.get(b * 4 + local) ?? [];
                assert.equal(positions.length, k, `block ${b} step ${local}`);
                for (const p of positions) assert.ok(block.has(p), `step ${b * 4 + local} revealed ${p} outside block ${b}`);
            });
        }
    });

    it("a confidence threshold reveals at least one a step and never fewer than the schedule", async () => {
        const nothingPasses = await run(m.dream, { steps: 15, confidenceThreshold: 0.999999 });
        // Random weights are never that sure: exactly max(schedule, 1) a step, the schedule taken on what is left.
        let left = 15;
        nothingPasses.events.forEach((e, i) => {
            assert.equal(e.step, i, "no step is skipped: each reveals at least one");
            assert.equal(e.positions.length, Math.max(timestepCount(left, i, 15, 1e-3), 1), `step ${e.step}`);
            left -= e.positions.length;
        });
        assert.equal(left, 0);
        const everythingPasses = await run(m.dream, { steps: 15, confidenceThreshold: 1e-9 });
        assert.equal(everythingPasses.events.length, 1, "all positions clear a tiny threshold in the first step");
    });

    it("greedy decoding is deterministic from run to run; sampling follows the seed", async () => {
        const a = await run(m.dream, { steps: 8, algorithm: "entropy" });
        const b = await run(m.dream, { steps: 8, algorithm: "entropy" });
        assert.deepEqual([...a.result.tokens], [...b.result.tokens]);
        assert.deepEqual(
            a.events.map((e) => e.positions),
            b.events.map((e) => e.positions)
        );
        const s1 = await run(m.dream, { steps: 8, temperature: 1, seed: 1 });
        const s1again = await run(m.dream, { steps: 8, temperature: 1, seed: 1 });
        const s2 = await run(m.dream, { steps: 8, temperature: 1, seed: 2 });
        assert.deepEqual([...s1.result.tokens], [...s1again.result.tokens]);
        assert.notDeepEqual([...s1.result.tokens], [...s2.result.tokens]);
    });

    for (const [name, get, shifted] of [
        ["dream", () => m.dream, true],
        ["llada", () => m.llada, false]
    ] as const) {
        it(`${name} reads position p's logits from row ${shifted ? "p − 1" : "p"}`, async () => {
            const model = get();
            assert.equal(model.info.shiftLogits, shifted);
            const { layout, events } = await run(model, { steps: 15, traceLogits: true });
            const full = await model.forwardLogits(layout.tokens);
            const n = model.info.nVocab;
            const first = events[0];
            assert.ok(first.candidates && first.logits);
            first.candidates.forEach((pos, i) => {
                const traced = first.logits!.subarray(i * n, (i + 1) * n);
                const right = full.subarray((shifted ? pos - 1 : pos) * n, ((shifted ? pos - 1 : pos) + 1) * n);
                const wrong = full.subarray((shifted ? pos : pos - 1) * n, ((shifted ? pos : pos - 1) + 1) * n);
                assert.deepEqual(traced, right, `position ${pos}`);
                assert.notDeepEqual(traced, wrong, `position ${pos} must differ from the other row`);
            });
        });
    }

    it("end-of-text inside a hole means shorter: the text ends at the first one; early stop fills the rest of the hole", async () => {
        const ended = await run(m.dream, { steps: 15, eotPenalty: -1000, eotPenaltyDecay: 0, earlyStop: true });
        for (const h of ended.result.holes) {
            assert.ok(h.tokens.every((t) => m.dream.isEndToken(t)));
            assert.equal(h.text, "");
        }
        // The first step reveals one end-of-text per hole at most by count, early stop fills the rest of each hole.
        assert.ok(ended.events.length < 15, `early stop ended in ${ended.events.length} steps`);
        const never = await run(m.dream, { steps: 15, eotPenalty: 1000, eotPenaltyDecay: 0 });
        assert.ok(never.result.holes.length > 0);
        for (const h of never.result.holes) assert.ok(h.tokens.every((t) => !m.dream.isEndToken(t)));
        const plain = await run(m.dream, { steps: 15 });
        for (const h of plain.result.holes) {
            const end = h.tokens.findIndex((t) => m.dream.isEndToken(t));
            assert.equal(h.text, m.dream.detokenize(end < 0 ? h.tokens : h.tokens.slice(0, end)), "the text ends at the first end-of-text");
        }
    });

    it("stopAtLineEnd: a hole's first line is the same as without it, with fewer steps once the line is revealed early", async () => {
        // A model whose output head favours the line break token at some places (the scale multiplies its row, so
        // places whose hidden state points away from it avoid it): lines end inside the hole.
        const lineBreak = m.dream.tokenize("\n");
        assert.equal(lineBreak.length, 1, "the generated vocabulary has a line break token");
        const model = await DiffusionModel.load(testModel({ arch: "dream", rowScales: { [lineBreak[0]]: 10 } }), { threads: 1 });
        const firstLine = (text: string) => text.split(/\r\n|\r|\n/)[0];
        let fewer = 0;
        let ended = 0;
        try {
            for (const cache of ["none", "prefix", "dual"] as const) {
                for (const algorithm of ["entropy", "maskgit_plus"] as const) {
                    for (const [prefix, suffix] of [
                        ["def area(w, h):\n    return ", "\n\nprint(area(2, 3))\n"],
                        ["x = [", "]\ny = x\n"],
                        ["for i in range(10):\n    ", "\n"]
                    ]) {
                        const layout = model.layout([prefix, { hole: 16 }, suffix]);
                        const base = {
                            steps: 16,
                            algorithm,
                            cache,
                            earlyStop: true,
                            ...(cache === "none" ? {} : { schedule: "block" as const, blockLength: 8 })
                        };
                        const full = await model.decodeLayout(layout, base);
                        const cut = await model.decodeLayout(layout, { ...base, stopAtLineEnd: true });
                        const where = `${cache}, ${algorithm}, ${JSON.stringify(prefix)}`;
                        assert.equal(firstLine(cut.holes[0].text), firstLine(full.holes[0].text), where);
                        assert.ok(cut.forwardPasses <= full.forwardPasses, `${where}: ${cut.forwardPasses} passes against ${full.forwardPasses}`);
                        if (/[\r\n]/.test(full.holes[0].text)) ended++;
                        if (cut.forwardPasses < full.forwardPasses) fewer++;
                    }
                }
            }
        } finally {
            await model.dispose();
        }
        assert.ok(ended > 0 && fewer > 0, `lines ended inside ${ended} of 18 holes, and ${fewer} runs took fewer passes`);
    });

    it("instruct requests go through the model's chat template", async () => {
        const prompt = await m.dream.formatChat([{ role: "user", content: "Write a function that adds two numbers." }]);
        assert.match(
            prompt,
            /^<\|im_start\|>system\n[\s\S]*<\|im_start\|>user\nWrite a function that adds two numbers\.<\|im_end\|>\n<\|im_start\|>assistant\n$/
        );
        const layout = m.dream.layout([{ special: prompt }, { hole: 12 }]);
        const imStart = m.dream.tokenize("<|im_start|>", { parseSpecial: true });
        assert.equal(imStart.length, 1, "chat markup is parsed as special tokens");
        assert.equal(layout.tokens[0], imStart[0]);
        const r = await m.dream.decodeLayout(layout, { steps: 12, earlyStop: true });
        assert.equal(r.holes[0].length, 12);
        await assert.rejects(m.llada.formatChat([{ role: "user", content: "hi" }]), /has no chat template/);
    });

    it("cancellation stops within a step and the next request still works", async () => {
        const segments = ["x".repeat(200), { hole: 400 }];
        const controller = new AbortController();
        const events: StepEvent[] = [];
        let abortedAt = -1;
        const started = Date.now();
        const p = m.dream.decode(segments, {
            steps: 400,
            signal: controller.signal,
            onStep: (e) => {
                events.push(e);
                if (events.length === 2) {
                    abortedAt = events.length;
                    controller.abort();
                }
            }
        });
        await assert.rejects(p, DecodeCancelledError);
        const stepMs = events[0].forwardMs + events[0].sampleMs;
        // Steps already queued to JS when the abort landed may still arrive; the loop itself stopped.
        assert.ok(events.length <= abortedAt + 2, `${events.length - abortedAt} steps after the abort`);
        assert.ok(Date.now() - started < 2000 + 10 * stepMs, "stopped long before 400 steps");
        // an already aborted signal never starts
        await assert.rejects(m.dream.decode(SEGMENTS, { signal: AbortSignal.abort() }), DecodeCancelledError);
        const again = await run(m.dream, { steps: 4 });
        assert.equal(again.result.holes.length, 3);
    });

    it("requests queue one at a time and all complete", async () => {
        const results = await Promise.all([1, 2, 3].map((seed) => m.dream.decode(SEGMENTS, { steps: 4, temperature: 1, seed })));
        assert.equal(results.length, 3);
        for (const r of results) assert.equal(r.holes.length, 3);
    });

    it("keeps the event loop free while decoding", async () => {
        let ticks = 0;
        const timer = setInterval(() => ticks++, 5);
        try {
            const r = await m.dream.decode(["y".repeat(300), { hole: 300 }], { steps: 40 });
            const expected = r.totalMs / 5;
            assert.ok(r.totalMs > 100, `the decode took ${r.totalMs} ms: long enough to measure`);
            assert.ok(ticks >= expected / 4, `${ticks} timer ticks in ${r.totalMs.toFixed(0)} ms`);
        } finally {
            clearInterval(timer);
        }
    });

    it("a request's thread count changes what runs it, not what it decodes", async () => {
        const one = await m.dream.decode(SEGMENTS, { steps: 8, threads: 1 });
        const two = await m.dream.decode(SEGMENTS, { steps: 8, threads: 2 });
        const own = await m.dream.decode(SEGMENTS, { steps: 8 });
        const zero = await m.dream.decode(SEGMENTS, { steps: 8, threads: 0 });
        assert.deepEqual([one.threads, two.threads], [1, 2]);
        assert.ok(own.threads >= 1, "without a count, the model's own");
        assert.equal(zero.threads, own.threads, "0 is the model's own too");
        assert.deepEqual([...two.tokens], [...one.tokens]);
        assert.deepEqual([...own.tokens], [...one.tokens]);
    });

    it("refuses bad requests with clear errors and keeps serving", async () => {
        assert.throws(() => m.dream.layout(["no hole here"]), /no hole/);
        assert.throws(() => m.dream.layout(["x", { hole: 0 }]), /positive whole number/);
        assert.throws(() => m.dream.layout(["x".repeat(5000), { hole: 8 }]), /trained context/);
        await assert.rejects(m.dream.decode(SEGMENTS, { steps: 0 }), /steps must be at least 1/);
        await assert.rejects(m.dream.forwardLogits(Int32Array.of(1, m.dream.info.nVocab)), /outside the vocabulary/);
        await assert.rejects(m.dream.forwardLogits(new Int32Array(0)), /no tokens/);
        await assert.rejects(m.dream.forwardLogits(new Int32Array(m.dream.info.nCtxTrain + 1)), /trained context/);
        await assert.rejects(m.dream.decode(SEGMENTS, { algorithm: "bogus" as never }), /unknown algorithm/);
        await assert.rejects(m.dream.decode(SEGMENTS, { algorithm: "origin", confidenceThreshold: 0.9 }), /confidence-ordered/);
        await assert.rejects(m.dream.decode(SEGMENTS, { threads: -1 }), /threads must be 0 \(the model's\) or from 1 to 512/);
        await assert.rejects(m.dream.decode(SEGMENTS, { threads: 513 }), /threads must be 0/);
        await assert.rejects(DiffusionModel.load(m.dream.file.path, { threads: 0 }), /threads must be from 1 to 512/);
        // a shifted model gets a leading token so that a hole can open the sequence
        const lead = m.dream.layout([{ hole: 3 }, "tail"]);
        assert.equal(lead.holes[0].start, 1);
        const r = await m.dream.decode([{ hole: 3 }, "tail"], { steps: 3 });
        assert.equal(r.holes[0].length, 3);
    });
});

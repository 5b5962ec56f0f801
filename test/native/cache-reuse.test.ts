// Cache reuse across requests (reuseKey): a request keeps the cells of text its document's last request had,
// moved to their new positions, and re-decodes the rest. On a one-layer model a cell's keys and values depend
// only on its token and position (no earlier layer mixes in the context), so every kept cell is exactly what
// a fresh pass computes: the logits must match a fresh request's, which checks which cells are kept, where
// they move and that RoPE is re-applied. Deeper models only approximate (measured by `npm run bench`).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { DiffusionModel, type DecodeOptions, type Segment, type StepEvent } from "../../server/src/runtime/runtime";
import { quantizedTestModel, testModel } from "../tools/test-models";

const DUAL: DecodeOptions = { cache: "dual", schedule: "block", blockLength: 16, steps: 12, traceLogits: true };
const HOLE = 12;
// Same tolerance as kv-cache.test.ts: float summation order (the kept cells were computed in another batch).
const LOGIT_TOLERANCE = 1e-4;
const QUANTIZED_LOGIT_TOLERANCE = 0.1;

const source = (n: number, from = 0) => Array.from({ length: n }, (_, k) => `def f${from + k}(x):\n    return x * ${from + k} + ${(from + k) ** 2}\n`);

/** The document as segments: its lines with a hole at the start of line `at`. */
function doc(lines: string[], at: number): Segment[] {
    return [lines.slice(0, at).join(""), { hole: HOLE }, lines.slice(at).join("")];
}

async function decode(model: DiffusionModel, segments: Segment[], options: DecodeOptions) {
    const events: StepEvent[] = [];
    const layout = model.layout(segments);
    const result = await model.decodeLayout(layout, { ...options, onStep: (e) => events.push(e) });
    return { layout, result, events };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
    assert.equal(a.length, b.length);
    let d = 0;
    for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
    return d;
}

// Each edit as a user makes them: the document after it and where the hole is.
const LINES = source(40);
const EDITS: [string, string[], number][] = [
    ["first request", LINES, 20],
    ["the same request again", LINES, 20],
    ["a character typed just before the hole", [...LINES.slice(0, 19), LINES[19].replace("361", "3610"), ...LINES.slice(20)], 20],
    ["the window moved down: three lines gone from the top", LINES.slice(3), 17],
    ["two new lines at the top", [...source(2, 100), ...LINES.slice(3)], 19],
    ["a line inserted after the hole", [...source(2, 100), ...LINES.slice(3, 22), ...source(1, 200), ...LINES.slice(22)], 19],
    ["a line changed near the end", [...source(2, 100), ...LINES.slice(3, 22), ...source(1, 200), ...LINES.slice(22, 36), "x = 1\n", ...LINES.slice(37)], 19],
    ["the hole moved three lines down", [...source(2, 100), ...LINES.slice(3, 22), ...source(1, 200), ...LINES.slice(22)], 22]
];

for (const [label, file, tolerance] of [
    ["one-layer dream model (shifted logits)", () => testModel({ arch: "dream", layers: 1 }), LOGIT_TOLERANCE],
    ["one-layer llada model (unshifted)", () => testModel({ arch: "llada", layers: 1 }), LOGIT_TOLERANCE],
    ["one-layer dream model, Q8_0", () => quantizedTestModel("Q8_0", { arch: "dream", layers: 1 }), QUANTIZED_LOGIT_TOLERANCE]
] as const) {
    describe(`cache reuse on a ${label}`, () => {
        let model: DiffusionModel;
        before(async () => {
            model = await DiffusionModel.load(file(), { threads: 1 });
        });
        after(async () => {
            await model?.dispose();
        });

        it("keeps the cells of unchanged text, moved where it went, and gives a fresh request's logits and tokens", async () => {
            for (const [i, [what, lines, at]] of EDITS.entries()) {
                const reused = await decode(model, doc(lines, at), { ...DUAL, reuseKey: "file:///a.py" });
                const fresh = await decode(model, doc(lines, at), DUAL);
                const n = reused.layout.tokens.length;
                const first = reused.events[0];
                if (i === 0) {
                    assert.equal(first.full, true, `${what}: a full pass`);
                    assert.equal(reused.result.reusedTokens, 0);
                } else {
                    assert.equal(first.reused, true, `${what}: the cache is reused`);
                    assert.ok(first.rows < n / 2, `${what}: ${first.rows} of ${n} positions re-decoded`);
                    assert.equal(reused.result.reusedTokens, n - first.rows);
                }
                assert.equal(fresh.events[0].full, true);
                assert.equal(reused.events.length, fresh.events.length);
                reused.events.forEach((e, s) => {
                    const d = maxAbsDiff(e.logits!, fresh.events[s].logits!);
                    assert.ok(d <= tolerance, `${what}, step ${s}: logits differ from a fresh request's by ${d}`);
                });
                assert.deepEqual([...reused.result.tokens], [...fresh.result.tokens], what);
            }
        });

        it("with the device reductions (no logits copied out) gives a fresh request's tokens too", async () => {
            const key = "file:///reductions.py";
            const options: DecodeOptions = { ...DUAL, traceLogits: false, deviceReductions: true };
            for (const [what, lines, at] of EDITS) {
                const reused = await decode(model, doc(lines, at), { ...options, reuseKey: key });
                const fresh = await decode(model, doc(lines, at), options);
                const row = 4 * model.info.nVocab; // one logits row's bytes: every step copies less than that
                assert.ok(
                    reused.events.every((e) => e.copiedBytes > 0 && e.copiedBytes < row),
                    `${what}: reductions, not rows`
                );
                assert.deepEqual([...reused.result.tokens], [...fresh.result.tokens], what);
            }
        });

        it("after a request cancelled during its decoding, the next one still equals a fresh request", async () => {
            const key = "file:///cancelled.py";
            await decode(model, doc(LINES, 20), { ...DUAL, reuseKey: key });
            const controller = new AbortController();
            const typed = [...LINES.slice(0, 19), LINES[19].replace("361", "3610"), ...LINES.slice(20)];
            await assert.rejects(
                model.decodeLayout(model.layout(doc(typed, 20)), { ...DUAL, reuseKey: key, signal: controller.signal, onStep: () => controller.abort() }),
                { name: "AbortError" }
            );
            const moved = LINES.slice(2);
            const reused = await decode(model, doc(moved, 18), { ...DUAL, reuseKey: key });
            const fresh = await decode(model, doc(moved, 18), DUAL);
            // The cancel lands between two steps (the cells stay and are kept) or inside a pass (they are dropped
            // and a full pass follows): either way nothing stale may be kept.
            const d = maxAbsDiff(reused.events[0].logits!, fresh.events[0].logits!);
            assert.ok(d <= tolerance, `logits differ from a fresh request's by ${d}`);
        });
    });
}

describe("cache reuse: when a full pass comes back", () => {
    let model: DiffusionModel;
    before(async () => {
        model = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1 });
    });
    after(async () => {
        await model?.dispose();
    });
    const firstStep = async (lines: string[], options: DecodeOptions) => (await decode(model, doc(lines, 20), { ...DUAL, ...options })).events[0];

    it("after reuseMaxRequests requests that reused the cache", async () => {
        const o = { reuseKey: "max-requests", reuseMaxRequests: 2 };
        const kinds = [];
        for (let i = 0; i < 5; i++) kinds.push((await firstStep(LINES, o)).reused ? "reused" : "full");
        assert.deepEqual(kinds, ["full", "reused", "reused", "full", "reused"]);
    });

    it("once the re-decoded text outside the holes passes reuseMaxChanged", async () => {
        const o = { reuseKey: "max-changed", reuseMaxChanged: 40 };
        assert.equal((await firstStep(LINES, o)).full, true);
        // The same text: only the holes' rows are re-decoded, which do not count.
        assert.equal((await firstStep(LINES, o)).reused, true);
        const typed = [...LINES.slice(0, 19), LINES[19].replace("361", "3610"), ...LINES.slice(20)];
        assert.equal((await firstStep(typed, o)).reused, true, "a few tokens changed");
        const rewritten = [...LINES.slice(0, 12), ...source(8, 300), ...LINES.slice(20)];
        assert.equal((await firstStep(rewritten, o)).full, true, "eight lines rewritten");
    });

    it("for the least recently used of more documents than there are slots", async () => {
        const keys = ["k1", "k2", "k3", "k4", "k5"];
        for (const k of keys) assert.equal((await firstStep(LINES, { reuseKey: k })).full, true, `${k}: new`);
        assert.equal((await firstStep(LINES, { reuseKey: "k5" })).reused, true, "k5 kept");
        assert.equal((await firstStep(LINES, { reuseKey: "k2" })).reused, true, "k2 kept");
        assert.equal((await firstStep(LINES, { reuseKey: "k1" })).full, true, "k1 was the least recently used");
    });

    it("never without a key, and a request without one leaves the keyed caches alone", async () => {
        assert.equal((await firstStep(LINES, { reuseKey: "kept" })).full, true);
        for (let i = 0; i < 3; i++) assert.equal((await firstStep(LINES, {})).full, true);
        assert.equal((await firstStep(LINES, { reuseKey: "kept" })).reused, true);
    });
});

// npm run bench: decoding latency of the runtime as it is today (every step recomputes the whole
// sequence). Prints a table and writes JSON. Not a test: the numbers depend on the machine.
//   node out/bench/runtime-bench.js [--threads N] [--out FILE] [--holes 32,128] [--contexts 256,1024,2048]
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DiffusionModel } from "../server/src/runtime/runtime";
import { repoRoot, testModel } from "../test/tools/test-models";

function arg(name: string, fallback: string): string {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : fallback;
}

const threads = Number(arg("threads", "2"));
const holes = arg("holes", "32,128").split(",").map(Number);
const contexts = arg("contexts", "256,1024,2048").split(",").map(Number);
const out = arg("out", join(repoRoot, "bench-results", "runtime.json"));
const MODEL = { arch: "dream", embd: 256, layers: 4, heads: 4, headsKv: 4, ff: 1024, vocab: 4096, context: 8192, type: "f16", seed: 11 } as const;

async function main(): Promise<void> {
    const path = testModel(MODEL);
    const model = await DiffusionModel.load(path, { threads });
    const filler = "    total = total + values[index] * weights[index]\n";
    const rows: Record<string, number | string>[] = [];
    for (const context of contexts) {
        // Fixed text of exactly `context` tokens around the hole: half before, half after.
        let text = filler;
        while (model.tokenize(text).length < context) text += filler;
        const ids = model.tokenize(text).subarray(0, context);
        const before = model.detokenize(ids.subarray(0, context / 2));
        const after = model.detokenize(ids.subarray(context / 2));
        for (const hole of holes) {
            const r = await model.decode([before, { hole }, after], { steps: hole });
            const row = {
                context, hole, steps: r.steps,
                msPerStep: r.msPerStep, forwardMsPerStep: r.forwardMs / r.steps, sampleMsPerStep: r.sampleMs / r.steps,
                totalMs: r.totalMs, tokensPerSecond: r.tokensPerSecond
            };
            rows.push(row);
            console.error(`context ${context}, hole ${hole}: ${r.totalMs.toFixed(0)} ms`);
        }
    }
    await model.dispose();

    const fmt = (v: number | string) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v);
    const cols = ["context", "hole", "steps", "msPerStep", "forwardMsPerStep", "sampleMsPerStep", "totalMs", "tokensPerSecond"];
    const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
    const line = (cells: string[]) => "| " + cells.map((c, i) => c.padStart(width[i])).join(" | ") + " |";
    console.log(`model: ${MODEL.arch}, ${MODEL.layers} layers, width ${MODEL.embd}, vocabulary ${MODEL.vocab}, ${MODEL.type}; threads ${threads}; mode: exact (no cache)`);
    console.log(line(cols));
    console.log("|" + width.map((w) => "-".repeat(w + 2)).join("|") + "|");
    for (const r of rows) console.log(line(cols.map((c) => fmt(r[c]))));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), threads, model: MODEL, backend: DiffusionModel.backend(), rows }, null, 2));
    console.log(`wrote ${out}`);
}

main().catch((e) => {
    console.error(e);
    process.exit(1);
});

// The packaged Vulkan runtime (scripts/build-native.mjs --cpu portable --gpu vulkan) on lavapipe, Mesa's Vulkan
// driver that runs on the CPU (Debian's mesa-vulkan-drivers, which scripts/setup.sh installs): the GPU code path
// (ggml-vulkan's shaders, buffers on a device, the device reductions as a non-CPU backend) without a GPU. ggml
// leaves CPU-type Vulkan devices out unless named, so the runtime is asked for device Vulkan0, as a user would
// with dreamCoder.device. Every result is compared with the CPU runtime in the same process.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { InlineCompletionRequest } from "vscode-languageserver-protocol/node";
import { firstInsertText, startLanguageServer } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";
import { cpuRuntimeOnly, loadRuntime, preferDevice, type LoadedRuntime } from "../../server/src/runtime/native";
import { DiffusionModel, type DecodeOptions, type Segment, type StepEvent } from "../../server/src/runtime/runtime";
import { testModel } from "../tools/test-models";

const SEGMENTS: Segment[] = [
    "def area(w, h):\n    ",
    { hole: 9 },
    "\n\ndef perimeter(w, h):\n    return ",
    { hole: 6 },
    "\n\nprint(area(2, 3))",
    { hole: 8 },
    "\n"
];
const ROW_BYTES = 20; // llama_diffusion_row: what a row costs with the device reductions
const FIT = { tokens: 256, outputs: 8, sequences: 1 };

async function run(model: DiffusionModel, options: DecodeOptions, segments: Segment[] = SEGMENTS) {
    const events: StepEvent[] = [];
    const result = await model.decodeLayout(model.layout(segments), { ...options, onStep: (e) => events.push(e) });
    return { events, result, tokens: [...result.tokens] };
}

// The device sums exp in float (ggml_sum_rows), the host scan in doubles.
function close(a: number, b: number): boolean {
    if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
    return Math.abs(a - b) <= 1e-6 + 1e-4 * Math.abs(b);
}

// lavapipe runs a step of these tiny models in about as long as the CPU runtime runs a 7B one's: a few algorithms,
// few steps. Each confidence the reductions compute (maskgit_plus: 1/z, topk_margin: the top two, entropy: s and z)
// is among them, and origin, which samples.
const ALGORITHMS: DecodeOptions[] = [
    { algorithm: "maskgit_plus", confidenceThreshold: 0.002 },
    { algorithm: "topk_margin" },
    { algorithm: "entropy" },
    { algorithm: "origin", seed: 3 }
];
const STEPS = 8;
const CACHED: DecodeOptions[] = [
    { cache: "prefix", schedule: "block", blockLength: 8, steps: STEPS },
    { cache: "dual", schedule: "block", blockLength: 8, steps: STEPS }
];

let vulkan: LoadedRuntime;
let cpu: LoadedRuntime;
const models = {} as Record<"dream" | "llada", { gpu: DiffusionModel; cpu: DiffusionModel }>;

before(async () => {
    assert.ok(preferDevice("Vulkan0"));
    vulkan = loadRuntime();
    assert.equal(vulkan.gpu, true, `the Vulkan runtime found no device: ${vulkan.fallback} (is mesa-vulkan-drivers installed?)`);
    cpu = cpuRuntimeOnly();
    for (const arch of ["dream", "llada"] as const) {
        const file = testModel({ arch });
        models[arch] = {
            gpu: await DiffusionModel.load(file, { threads: 1, gpuLayers: "auto", fitContext: FIT, runtime: vulkan }),
            cpu: await DiffusionModel.load(file, { threads: 1, runtime: cpu })
        };
    }
});
after(async () => {
    for (const m of Object.values(models)) {
        await m.gpu.dispose();
        await m.cpu.dispose();
    }
});

describe("the Vulkan runtime on lavapipe", () => {
    it("lists the named Vulkan device and puts every layer on it with gpuLayers auto", () => {
        const device = vulkan.addon.devices().find((d) => d.type === "gpu");
        assert.equal(device?.name, "Vulkan0");
        assert.match(device?.description ?? "", /llvmpipe/);
        assert.ok((device?.memoryTotal ?? 0) > 0, "the device reports its memory");
        const { info, runsOn } = models.dream.gpu;
        assert.equal(info.gpuLayers, info.nLayer + 1, "the repeating layers and the output layer");
        assert.match(runsOn.backend, /^Vulkan0 \(llvmpipe.*\), 3 of 3 layers$/);
        assert.equal(runsOn.gpu, "Vulkan0");
        assert.equal(models.dream.cpu.runsOn.backend, "CPU");
    });

    it("gpuLayers auto puts nothing on a device without room, and says the model runs on the CPU", async () => {
        const device = vulkan.addon.devices().find((d) => d.type === "gpu")!;
        // A margin of all the free memory: llama.cpp's fit finds no room for even one layer.
        const crowded = await DiffusionModel.load(testModel({ arch: "dream" }), {
            threads: 1,
            gpuLayers: "auto",
            fitContext: { ...FIT, marginBytes: device.memoryFree },
            runtime: vulkan
        });
        try {
            assert.equal(crowded.info.gpuLayers, 0);
            assert.equal(crowded.runsOn.backend, "CPU (Vulkan build)");
            assert.deepEqual((await run(crowded, { steps: STEPS })).tokens, (await run(models.dream.cpu, { steps: STEPS })).tokens);
        } finally {
            await crowded.dispose();
        }
    });

    for (const arch of ["dream", "llada"] as const) {
        it(`${arch}, exact mode: the CPU runtime's tokens for every algorithm (F32 weights)`, async () => {
            for (const options of ALGORITHMS) {
                const [g, c] = [await run(models[arch].gpu, { steps: STEPS, ...options }), await run(models[arch].cpu, { steps: STEPS, ...options })];
                assert.deepEqual(g.tokens, c.tokens, JSON.stringify(options));
                assert.deepEqual([...g.result.revealStep], [...c.result.revealStep], JSON.stringify(options));
            }
        });

        it(`${arch}, cached modes: exact mode's tokens when refreshed every step, and the CPU runtime's tokens with one refresh a block`, async () => {
            const exact = await run(models[arch].gpu, { steps: STEPS, schedule: "block", blockLength: 8 });
            for (const options of CACHED) {
                const refreshed = await run(models[arch].gpu, { ...options, refreshEveryStep: true });
                assert.deepEqual(refreshed.tokens, exact.tokens, `${options.cache}, refreshed every step`);
                const [g, c] = [await run(models[arch].gpu, options), await run(models[arch].cpu, options)];
                assert.deepEqual(g.tokens, c.tokens, `${options.cache}`);
            }
        });

        it(`${arch}, cache reuse across edits: the CPU runtime's tokens, the cache kept`, async () => {
            const lines = Array.from({ length: 30 }, (_, k) => `def f${k}(x):\n    return x * ${k}\n`);
            const edits: Segment[][] = [
                [lines.slice(0, 15).join(""), { hole: 10 }, lines.slice(15).join("")],
                [lines.slice(0, 15).join("").replace("x * 14", "x * 140"), { hole: 10 }, lines.slice(15).join("")],
                [lines.slice(2, 15).join(""), { hole: 10 }, lines.slice(15).join("")]
            ];
            for (const [i, segments] of edits.entries()) {
                const options: DecodeOptions = { cache: "dual", schedule: "block", blockLength: 8, steps: STEPS, reuseKey: `file:///${arch}.py` };
                const [g, c] = [await run(models[arch].gpu, options, segments), await run(models[arch].cpu, options, segments)];
                assert.equal(g.events[0].reused, i > 0, `edit ${i}: the cache is reused`);
                assert.deepEqual(g.tokens, c.tokens, `edit ${i}`);
            }
        });

        it(`${arch}, device reductions on a non-CPU backend: the host path's tokens and confidences, over 100x fewer bytes`, async () => {
            const model = models[arch].gpu;
            for (const cache of [{ steps: STEPS }, ...CACHED]) {
                for (const options of ALGORITHMS.filter((o) => o.algorithm !== "origin")) {
                    const opts = { ...cache, ...options };
                    const [host, device] = [await run(model, { ...opts, deviceReductions: false }), await run(model, { ...opts, deviceReductions: true })];
                    const what = JSON.stringify(opts);
                    assert.deepEqual(device.tokens, host.tokens, what);
                    assert.deepEqual([...device.result.revealStep], [...host.result.revealStep], what);
                    assert.equal(device.events.length, host.events.length, what);
                    for (const [s, e] of device.events.entries()) {
                        for (const [j, conf] of e.confidences.entries()) {
                            assert.ok(close(conf, host.events[s].confidences[j]), `${what}, step ${s}: ${conf} vs ${host.events[s].confidences[j]}`);
                        }
                        assert.equal(e.copiedBytes % ROW_BYTES, 0, `${what}, step ${s}: reductions, not logits rows`);
                    }
                    const ratio = host.result.copiedBytes / device.result.copiedBytes;
                    assert.ok(ratio >= 100, `${what}: ${ratio.toFixed(0)}x fewer bytes copied`);
                }
            }
        });
    }
});

describe("the language server on lavapipe", () => {
    it("with dreamCoder.device Vulkan0 and gpuLayers auto (the default), fills holes and completes a line on the device", async () => {
        const server = await startLanguageServer({
            model: testModel({ arch: "dream" }),
            threads: 1,
            device: "Vulkan0",
            inlineCompletion: { debounceMs: 0, lineTokens: 8 }
        });
        try {
            const uri = "file:///work/vulkan.py";
            const doc = "def mean(xs):\n    total = ???\n    return total / ???:4\n";
            await server.open(uri, doc);
            const filled = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
            assert.equal(filled.edits.length, 2);
            const completion = await server.connection.sendRequest(InlineCompletionRequest.type, {
                textDocument: { uri },
                position: { line: 1, character: "    total = ".length },
                context: { triggerKind: 2 }
            });
            assert.ok((firstInsertText(completion) ?? "").length > 0, "a suggestion");
            const ready = server.statuses.find((s) => s.state === "ready" && s.backend !== "CPU");
            assert.equal(ready?.gpu, "Vulkan0");
            assert.match(ready?.backend ?? "", /^Vulkan0 \(llvmpipe.*\), 3 of 3 layers$/);
        } finally {
            await server.stop();
        }
    });
});

// Quantizing in the runtime (server/src/runtime/quantize.ts, the addon's quantize()): the same bytes as llama.cpp's
// llama-quantize from the same build, progress per tensor, off the event loop, cancellable, and bad input refused
// with a sentence while the process keeps going.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ModelFileError } from "../../server/src/runtime/modelFile";
import { loadAddon } from "../../server/src/runtime/native";
import { QUANT_TYPES } from "../../common/protocol";
import { quantizeModel, type QuantizeProgress } from "../../server/src/runtime/quantize";
import { brokenHeaderFile, notGgufFile, QUANTIZABLE, quantizedTestModel, repoRoot, testModel, truncatedFile } from "../tools/test-models";

const LLAMA_QUANTIZE = join(repoRoot, "native", "build", "cmake", "bin", "llama-quantize");

const dir = mkdtempSync(join(tmpdir(), "dc-quantize-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** QUANTIZABLE with many more layers: 291 tensors, long enough at one thread (about a second of Q4_K_M work) to
 *  cancel midway and to watch the event loop while it runs. */
const LARGER = { ...QUANTIZABLE, layers: 24, ff: 1024, seed: 6 };

const leftovers = (output: string) => [output, `${output}.part`].filter((f) => existsSync(f));

describe("quantizeModel", () => {
    const source = testModel(QUANTIZABLE);

    // Every type, so that each name's llama_ftype is checked against the tool's own table of names.
    for (const type of QUANT_TYPES) {
        it(`${type}: the same bytes as llama-quantize, progress one tensor at a time up to the total`, async () => {
            const output = join(dir, `${type}.gguf`);
            const progress: QuantizeProgress[] = [];
            await quantizeModel(source, output, { type, threads: 1, onProgress: (p) => progress.push(p) });
            const reference = join(dir, `${type}-llama-quantize.gguf`);
            const r = spawnSync(LLAMA_QUANTIZE, [source, reference, type, "1"], { encoding: "utf8" });
            assert.equal(r.status, 0, `llama-quantize failed (${r.status ?? r.signal}): ${r.stderr.slice(-2000)}`);
            assert.ok(readFileSync(output).equals(readFileSync(reference)), `${output} differs from llama-quantize's ${type} file`);
            assert.ok(!existsSync(`${output}.part`));
            const total = progress[0].tensorsTotal;
            assert.equal(total, 3 + QUANTIZABLE.layers! * 12, "token_embd, output_norm, output and 12 tensors a layer");
            assert.deepEqual(
                progress,
                Array.from({ length: total }, (_, i) => ({ tensorsDone: i + 1, tensorsTotal: total }))
            );
        });
    }

    it("a small row buffer (many slabs a tensor, as a 7B model's embedding gets) writes the same bytes", async () => {
        const output = join(dir, "slabs-Q4_K_M.gguf");
        await quantizeModel(source, output, { type: "Q4_K_M", threads: 1, bufferBytes: 64 << 10 });
        assert.ok(readFileSync(output).equals(readFileSync(join(dir, "Q4_K_M-llama-quantize.gguf"))), "slabs change the file");
    });

    it("the quantized file loads and decodes", async () => {
        const output = join(dir, "decode-Q4_K_M.gguf");
        await quantizeModel(source, output, { type: "Q4_K_M", threads: 1 });
        const model = await loadAddon().loadModel(output, { threads: 1 });
        try {
            const info = model.info();
            const prompt = model.tokenize("def add(a, b):\n    return", false, false);
            const tokens = Int32Array.from([...prompt, ...new Array(8).fill(info.mask)]);
            const r = await model.decode(tokens, Int32Array.from([prompt.length, 8, 8]), { steps: 8 });
            const filled = [...r.tokens.subarray(prompt.length)];
            assert.equal(filled.length, 8);
            assert.ok(
                filled.every((t) => t !== info.mask && t >= 0 && t < info.nVocab),
                `every place filled with a token: ${filled}`
            );
        } finally {
            model.dispose();
        }
    });

    it("runs off the event loop: a timer keeps firing between progress reports", async () => {
        const input = testModel(LARGER);
        const output = join(dir, "larger-Q4_K_M.gguf");
        let ticks = 0;
        const ticksAtReports: number[] = [];
        const timer = setInterval(() => ticks++, 5);
        try {
            await quantizeModel(input, output, { type: "Q4_K_M", threads: 1, onProgress: () => ticksAtReports.push(ticks) });
        } finally {
            clearInterval(timer);
        }
        const during = ticksAtReports[ticksAtReports.length - 1] - ticksAtReports[0];
        assert.ok(during >= 3, `${during} timer ticks between the first and the last of ${ticksAtReports.length} progress reports`);
        assert.ok(existsSync(output));
    });

    it("a cancel midway rejects saying so and leaves no file", async () => {
        const output = join(dir, "cancelled.gguf");
        const controller = new AbortController();
        const progress: number[] = [];
        await assert.rejects(
            quantizeModel(testModel(LARGER), output, {
                type: "Q4_K_M",
                threads: 1,
                signal: controller.signal,
                onProgress: (p) => {
                    progress.push(p.tensorsDone);
                    if (p.tensorsDone === 10) controller.abort();
                }
            }),
            /^Error: the quantization of .* to Q4_K_M was cancelled$/
        );
        assert.ok(progress.length >= 10 && progress.length < 3 + LARGER.layers * 12, `stopped midway, after ${progress.length} tensors`);
        assert.deepEqual(leftovers(output), []);
    });

    it("a signal aborted before the start rejects at once", async () => {
        const output = join(dir, "never.gguf");
        await assert.rejects(quantizeModel(source, output, { type: "Q8_0", signal: AbortSignal.abort() }), /was cancelled/);
        assert.deepEqual(leftovers(output), []);
    });

    describe("bad input gets a sentence, and a later quantization still works", () => {
        const cases: [string, () => string, RegExp][] = [
            ["a missing file", () => join(dir, "nope.gguf"), /nope\.gguf: model file not found$/],
            ["a file that is not GGUF", notGgufFile, /: not a GGUF model file$/],
            ["a header cut short", brokenHeaderFile, /the file is truncated or corrupt/],
            ["tensor data cut short", truncatedFile, /: the file is truncated: \d+ bytes, but its tensors need \d+ \(an interrupted download\?\)$/],
            ["an autoregressive model", () => testModel({ arch: "qwen2" }), /this is an autoregressive model \(architecture 'qwen2'\)/]
        ];
        for (const [name, file, message] of cases) {
            it(name, async () => {
                const output = join(dir, "bad.gguf");
                await assert.rejects(quantizeModel(file(), output, { type: "Q8_0", threads: 1 }), (e: Error) => {
                    assert.ok(e instanceof ModelFileError, `a ModelFileError: ${e}`);
                    assert.match(e.message, message);
                    return true;
                });
                assert.deepEqual(leftovers(output), []);
            });
        }
        it("an input that is already quantized", async () => {
            const output = join(dir, "requantized.gguf");
            await assert.rejects(
                quantizeModel(quantizedTestModel("Q4_K_M"), output, { type: "Q8_0", threads: 1 }),
                /^Error: .*-Q4_K_M\.gguf is already quantized \(Q4_K_M\): quantize the F16, BF16 or F32 GGUF the conversion wrote instead$/
            );
            assert.deepEqual(leftovers(output), []);
        });
        it("an output folder that does not exist", async () => {
            await assert.rejects(
                quantizeModel(source, join(dir, "no-such-folder", "out.gguf"), { type: "Q8_0", threads: 1 }),
                /^Error: cannot write the quantized model to .*out\.gguf\.part: its folder does not exist$/
            );
        });
        it("an unknown type", async () => {
            await assert.rejects(
                quantizeModel(source, join(dir, "q3.gguf"), { type: "Q3_K_S" as never }),
                /^Error: unknown quantization type 'Q3_K_S': use one of Q4_K_M, Q5_K_M, Q6_K, Q8_0, Q4_0, F16, BF16$/
            );
        });
        it("then a quantization works", async () => {
            const output = join(dir, "after.gguf");
            await quantizeModel(source, output, { type: "Q8_0", threads: 1 });
            assert.ok(readFileSync(output).equals(readFileSync(quantizedTestModel("Q8_0"))));
        });
    });
});

// What the addon does with input the runtime would have refused: llama.cpp's quantizer fails, the promise rejects
// with llama.cpp's reason, and nothing aborts the process.
describe("the addon's quantize() on input llama.cpp refuses", () => {
    const addon = loadAddon();
    const cases: [string, () => string, RegExp][] = [
        ["a missing file", () => join(dir, "nope.gguf"), /failed to open GGUF file|No such file/],
        ["a file that is not GGUF", notGgufFile, /invalid magic characters|failed to load model/],
        ["tensor data cut short", truncatedFile, /data is not within the file bounds/],
        ["an input that is already quantized", () => quantizedTestModel("Q4_K_M"), /requantizing from type q\d_K is disabled/]
    ];
    for (const [name, file, reason] of cases) {
        it(name, async () => {
            const input = file();
            await assert.rejects(addon.quantize(input, join(dir, "addon-bad.gguf"), { ftype: 7, threads: 1 }).done, (e: Error) => {
                assert.ok(e.message.startsWith(`llama.cpp could not quantize ${input}: `), e.message);
                assert.match(e.message, reason);
                return true;
            });
            rmSync(join(dir, "addon-bad.gguf"), { force: true });
        });
    }
    it("an ftype llama.cpp does not know", async () => {
        await assert.rejects(
            addon.quantize(testModel(QUANTIZABLE), join(dir, "addon-bad.gguf"), { ftype: 999, threads: 1 }).done,
            /: llama_model_quantize: failed to quantize: invalid output file type 999$/
        );
    });
    it("threads out of range are refused before anything runs", () => {
        assert.throws(() => addon.quantize(testModel(QUANTIZABLE), join(dir, "x.gguf"), { ftype: 7, threads: 0 }), /threads must be from 1 to 512/);
    });
    it("the process still quantizes after them", async () => {
        const output = join(dir, "addon-after.gguf");
        await addon.quantize(testModel(QUANTIZABLE), output, { ftype: 7, threads: 1 }).done;
        assert.ok(readFileSync(output).equals(readFileSync(quantizedTestModel("Q8_0"))));
    });
});

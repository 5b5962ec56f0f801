// Bad model files: each gets a clear error naming the file and the problem, and the process keeps serving.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ModelFileError, type ModelFileProblem } from "../../server/src/runtime/modelFile";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { brokenHeaderFile, magicOnlyFile, notGgufFile, repoRoot, testModel, truncatedFile } from "../tools/test-models";

async function refused(path: string, problem: ModelFileProblem | ModelFileProblem[], message: RegExp): Promise<void> {
    await assert.rejects(DiffusionModel.load(path, { threads: 1 }), (e: unknown) => {
        assert.ok(e instanceof ModelFileError, `expected a ModelFileError, got ${e}`);
        assert.ok([problem].flat().includes(e.problem), `problem ${e.problem}, expected ${problem}`);
        assert.ok(e.message.startsWith(path), `the message names the file: ${e.message}`);
        assert.match(e.message, message);
        return true;
    });
}

describe("model file checks", () => {
    it("a missing file", () => refused(join(repoRoot, ".cache", "models", "nope.gguf"), "missing", /not found/));
    it("a directory", () => refused(repoRoot, "missing", /is a folder, not a model file/));
    it("a file that is not GGUF", () => refused(notGgufFile(), "not-gguf", /not a GGUF model file/));
    it("a header cut short", () => refused(brokenHeaderFile(), ["corrupt", "truncated"], /truncated/));
    it("tensor data cut short", () => refused(truncatedFile(), "truncated", /truncated: \d+ bytes, but its tensors need \d+/));
    it("an autoregressive model", () =>
        refused(testModel({ arch: "qwen2" }), "autoregressive", /autoregressive model \(architecture 'qwen2'\).*needs a diffusion model/));
    it("a diffusion model without a mask token", () => refused(testModel({ arch: "dream", maskToken: false, seed: 7 }), "no-mask-token", /no mask token/));

    // Each of these reached a GGML_ASSERT in llama.cpp, which aborts the whole process (SIGABRT).
    describe("hyperparameters llama.cpp would abort on", () => {
        const u32 = (value: number) => ({ type: "u32" as const, value });
        const cases: [string, Parameters<typeof testModel>[0], RegExp][] = [
            ["no layers", { arch: "dream", overrides: { "dream.block_count": u32(0) } }, /dream\.block_count is 0; llama\.cpp needs 1 to 512 layers/],
            [
                "a dream model relabelled llada-moe (no experts)",
                { arch: "dream", relabel: "llada-moe" },
                /llada-moe model needs llada-moe\.expert_count and llada-moe\.expert_used_count above 0/
            ],
            [
                "more experts used than there are",
                { arch: "dream", overrides: { "dream.expert_count": u32(2), "dream.expert_used_count": u32(4) } },
                /dream\.expert_used_count \(4\) is more than dream\.expert_count \(2\)/
            ],
            [
                "heads not a multiple of KV heads",
                { arch: "dream", overrides: { "dream.attention.head_count_kv": u32(3) } },
                /head_count \(4\) is not a multiple of dream\.attention\.head_count_kv \(3\)/
            ],
            ["no heads", { arch: "llada", overrides: { "llada.attention.head_count": u32(0) } }, /llada\.attention\.head_count is 0/],
            [
                "a rotary size other than the head size",
                { arch: "dream", overrides: { "dream.rope.dimension_count": u32(8) } },
                /rope\.dimension_count \(8\) is not the head size \(16\)/
            ],
            [
                "an unknown rope scaling",
                { arch: "dream", overrides: { "dream.rope.scaling.type": { type: "string", value: "spiral" } } },
                /rope\.scaling\.type is "spiral"/
            ],
            ["no context length", { arch: "dream", overrides: { "dream.context_length": u32(0) } }, /dream\.context_length is 0/]
        ];
        for (const [name, options, message] of cases) {
            it(name, () => refused(testModel(options), "bad-hyperparameters", message));
        }
    });

    it("a load llama.cpp refuses (a tensor of the wrong shape) is one line naming the file", async () => {
        const path = testModel({ arch: "dream", overrides: { "dream.feed_forward_length": { type: "u32", value: 96 } } });
        await assert.rejects(DiffusionModel.load(path, { threads: 1 }), (e: Error) => {
            assert.ok(e.message.startsWith(`${path}: llama.cpp could not load the model: `), e.message);
            assert.match(e.message, /tensor 'blk\.0\.ffn_gate\.weight' has wrong shape/);
            assert.ok(!e.message.includes("\n"), `one line: ${JSON.stringify(e.message)}`);
            return true;
        });
    });
    it("a mask token id outside the vocabulary", () =>
        refused(
            testModel({ arch: "dream", overrides: { "tokenizer.ggml.mask_token_id": { type: "u32", value: 99999 } } }),
            "no-mask-token",
            /mask token id \(tokenizer\.ggml\.mask_token_id = 99999\) is outside the vocabulary of 4096 tokens/
        ));
    // A file that stat calls regular but reading fails (EIO): it was a bare "EIO: i/o error, read".
    it("/proc/self/mem", () => refused("/proc/self/mem", "not-gguf", /not a GGUF model file/));
    it("a file that is only the GGUF magic", () =>
        refused(magicOnlyFile(), "corrupt", /GGUF version at byte 4 needs 4 bytes, but the file ends 0 bytes later/));

    // A header that claims more tensors than it holds, with nothing after it: node-llama-cpp's reader read on past
    // the end of the file for ~90 s and 3.7 GB; the header is bounded by the file's size.
    it("a tensor count one too high, or far too high, is refused at once", { timeout: 30_000 }, async () => {
        const real = readGgufTensorCount(testModel({ arch: "dream" }));
        for (const count of [real + 1n, 2n ** 12n, 2n ** 40n]) {
            const started = performance.now();
            await refused(testModel({ arch: "dream", headerOnlyTensorCount: String(count) }), "corrupt", /cannot be read/);
            assert.ok(performance.now() - started < 2000, `tensor count ${count} refused in ${Math.round(performance.now() - started)} ms`);
        }
    });

    it("a symbolic link loop says so", async () => {
        const dir = mkdtempSync(join(tmpdir(), "dream-coder-paths-"));
        symlinkSync(join(dir, "b.gguf"), join(dir, "a.gguf"));
        symlinkSync(join(dir, "a.gguf"), join(dir, "b.gguf"));
        await refused(join(dir, "a.gguf"), "missing", /a loop of symbolic links/);
    });

    it("reports load progress and reads the diffusion facts from the file", async () => {
        const progress: number[] = [];
        const dream = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1, onProgress: (p) => progress.push(p) });
        assert.ok(progress.length > 1, "load progress is reported");
        assert.equal(progress.at(-1), 1);
        assert.deepEqual(
            progress,
            [...progress].sort((a, b) => a - b),
            "and only goes up"
        );
        const llada = await DiffusionModel.load(testModel({ arch: "llada" }), { threads: 1 });
        try {
            assert.equal(dream.file.architecture, "dream");
            assert.equal(dream.file.shiftLogits, true, "no diffusion.shift_logits key means shifted");
            assert.equal(llada.file.shiftLogits, false);
            assert.equal(dream.file.maskToken, dream.info.mask);
            assert.equal(dream.file.contextLength, dream.info.nCtxTrain);
            assert.match(dream.file.chatTemplate ?? "", /<\|im_start\|>/);
            assert.equal(llada.file.chatTemplate, undefined);
            assert.ok(dream.info.endTokens.includes(dream.info.eos));
            assert.equal(dream.runsOn.backend, "CPU");
        } finally {
            await dream.dispose();
            await llada.dispose();
        }
    });

    it("keeps serving after every refusal", async () => {
        for (const bad of [notGgufFile(), truncatedFile(), testModel({ arch: "qwen2" })]) {
            await assert.rejects(DiffusionModel.load(bad));
        }
        const model = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1 });
        const r = await model.decode(["a = ", { hole: 4 }], { steps: 4 });
        assert.equal(r.holes[0].length, 4);
        await model.dispose();
        await model.dispose(); // twice is harmless
        await assert.rejects(model.decode(["a = ", { hole: 4 }]), /disposed/);
    });
});

function readGgufTensorCount(path: string): bigint {
    return readFileSync(path).readBigUInt64LE(8);
}

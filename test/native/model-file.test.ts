// Bad model files: each gets a clear error naming the file and the problem, and the process keeps serving.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ModelFileError, type ModelFileProblem } from "../../server/src/runtime/modelFile";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { brokenHeaderFile, notGgufFile, repoRoot, testModel, truncatedFile } from "../tools/test-models";

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
    it("a directory", () => refused(repoRoot, "missing", /not a file/));
    it("a file that is not GGUF", () => refused(notGgufFile(), "not-gguf", /not a GGUF model file/));
    it("a header cut short", () => refused(brokenHeaderFile(), ["corrupt", "truncated"], /truncated/));
    it("tensor data cut short", () => refused(truncatedFile(), "truncated", /truncated: \d+ bytes, but its tensors need \d+/));
    it("an autoregressive model", () =>
        refused(testModel({ arch: "qwen2" }), "autoregressive", /autoregressive model \(architecture 'qwen2'\).*needs a diffusion model/));
    it("a diffusion model without a mask token", () =>
        refused(testModel({ arch: "dream", maskToken: false, seed: 7 }), "no-mask-token", /no mask token/));

    it("reports load progress and reads the diffusion facts from the file", async () => {
        const progress: number[] = [];
        const dream = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1, onProgress: (p) => progress.push(p) });
        assert.ok(progress.length > 1, "load progress is reported");
        assert.equal(progress.at(-1), 1);
        assert.deepEqual(progress, [...progress].sort((a, b) => a - b), "and only goes up");
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
            assert.equal(DiffusionModel.backend(), "CPU");
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

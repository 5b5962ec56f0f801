// llama.cpp's own examples/diffusion CLI, built from the same bundle, on the same GGUF and prompt.
// Where the two must agree they do; where they differ by design the test shows the difference.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { quantizedTestModel, repoRoot, testModel } from "../tools/test-models";

const CLI = join(repoRoot, "native", "build", "cmake", "bin", "llama-diffusion-cli");
const PROMPT = "def greet(name):\n    return";
const HOLE = 12;

// The CLI always formats its prompt with the model's chat template (it has no switch for raw prompts),
// so both sides run the instruct path: the same rendered prompt, then a hole of HOLE tokens.
const MESSAGES = [{ role: "user" as const, content: PROMPT }];

/** Runs the reference CLI and returns what it logged (its generated text is the last thing it prints). */
function referenceCli(path: string, nInput: number, extra: string[]): string {
    const n = String(nInput + HOLE);
    // Its log (the timings, then the generated text, its last message) goes through llama.cpp's asynchronous
    // logger, whose tail can be lost when the process exits on a busy machine: seen as output ending at the
    // progress bar, one model in three, while other processes kept both cores busy. A run whose log stops before
    // its timings line says nothing about the text, so it is run again (at most three times).
    const complete = (out: string) => /\ntotal time: [^\n]*\n[\s\S]*\n$/.test(out);
    let out = "";
    for (let attempt = 0; attempt < 3 && !complete(out); attempt++) {
        const r = spawnSync(CLI, ["-m", path, "-p", PROMPT, "-ub", n, "-b", n, "-c", n, "-t", "1", "-fa", "off", "--diffusion-eps", "0.001", ...extra], {
            encoding: "utf8",
            timeout: 60_000
        });
        assert.equal(r.status, 0, `llama-diffusion-cli failed (signal ${r.signal}, ${r.error?.message ?? "no spawn error"}):\n${r.stderr.slice(-2000)}`);
        out = r.stdout + r.stderr;
    }
    assert.ok(complete(out), `llama-diffusion-cli's log stopped before its result three times (model ${path}):\n${out.slice(-500)}`);
    assert.doesNotMatch(out, /generation failed/);
    return out;
}

async function ours(model: DiffusionModel, steps: number, seed = 0) {
    const layout = model.layout([{ special: await model.formatChat(MESSAGES) }, { hole: HOLE }]);
    const result = await model.decodeLayout(layout, { steps, seed });
    // llama.cpp's CLI prints every generated token but end-of-text (a hole's text would end at the first one).
    return { nInput: layout.tokens.length - HOLE, text: model.detokenize(result.holes[0].tokens.filter((t) => !model.isEndToken(t))) };
}

// The quantized files run through ggml's quantized kernels (and, for Q4_0, its repacked CPU layout): the crash
// reported on AMX Xeons hit llama.cpp's CLI as well as ours.
const MODELS = [
    ["f32", () => testModel({ arch: "dream" })],
    ["Q4_0", () => quantizedTestModel("Q4_0")],
    ["Q4_K_M", () => quantizedTestModel("Q4_K_M")]
] as const;

for (const [name, file] of MODELS) {
    describe(`against llama.cpp's examples/diffusion (${name} model)`, () => {
        let model: DiffusionModel;
        let path: string;
        before(async () => {
            path = file();
            model = await DiffusionModel.load(path, { threads: 1 });
        });
        after(() => model.dispose());

        it("one step fills every position with the same argmax tokens", async () => {
            const { nInput, text } = await ours(model, 1);
            // top-k 1 makes its sampler chain pick the argmax; one step reveals everything.
            const theirs = referenceCli(path, nInput, ["--diffusion-steps", "1", "--top-k", "1", "--temp", "0"]);
            assert.ok(text.length > 0);
            assert.ok(theirs.trimEnd().endsWith(text.trimEnd()), `llama.cpp printed:\n${JSON.stringify(theirs.slice(-300))}\nours: ${JSON.stringify(text)}`);
        });

        if (name !== "f32") return;
        it("its temperature 0 still samples (the seed changes the output); ours is argmax", async () => {
            const { nInput } = await ours(model, 1);
            const args = ["--diffusion-steps", "4", "--temp", "0", "--top-k", "0", "--top-p", "1"];
            const a = referenceCli(path, nInput, [...args, "--seed", "1"]);
            const b = referenceCli(path, nInput, [...args, "--seed", "2"]);
            assert.notEqual(a.slice(-200), b.slice(-200), "different seeds give different text at temperature 0");
            assert.equal((await ours(model, 4, 1)).text, (await ours(model, 4, 2)).text);
        });
    });
}

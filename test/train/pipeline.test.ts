// The training pipeline (train/) end to end at toy size, as the shipped model was made: a corpus from this
// interpreter's standard library, a BPE tokenizer, a short training run, the Hugging Face checkpoint, llama.cpp's own
// convert_hf_to_gguf.py and llama-quantize. The run uses DreamOn's objective (holes of unknown length, with
// <|expand|> and <|delete|> targets), whose GGUF must declare those tokens. Then llama.cpp must tokenize exactly as
// training did and compute the logits PyTorch computes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { loadAddon, type NativeModel } from "../../server/src/runtime/native";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { readTypedGguf } from "../tools/gguf-diff";
import { repoRoot } from "../tools/test-models";

const PYTHON = join(repoRoot, "train", ".venv", "bin", "python");
const SEQ = 128;
const TINY = { hidden_size: 64, intermediate_size: 128, num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 1 };

function python(args: string[]): string {
    const r = spawnSync(PYTHON, args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 1 << 30 });
    assert.equal(r.status, 0, `python ${args.join(" ")} failed (${r.status ?? r.signal}):\n${r.stderr.slice(-3000)}`);
    return r.stdout;
}

/** Runs a script that must refuse its input: a non-zero exit and a message, not a Python traceback. */
function refused(args: string[]): string {
    const r = spawnSync(PYTHON, args, { cwd: repoRoot, encoding: "utf8" });
    assert.notEqual(r.status, 0, `python ${args.join(" ")} accepted its input`);
    assert.doesNotMatch(r.stderr, /Traceback/, r.stderr);
    return r.stderr.trim();
}

// Saves the tokenizer in argv[1] with one more special token, to argv[2].
const ADD_TOKEN = `
import pathlib, shutil, sys
from tokenizers import Tokenizer
out = pathlib.Path(sys.argv[2])
shutil.copytree(sys.argv[1], out)
tok = Tokenizer.from_file(str(out / "tokenizer.json"))
tok.add_special_tokens(["<|extra|>"])
tok.save(str(out / "tokenizer.json"))
`;

// The largest difference between two checkpoints' weights (argv[1]: the run's, argv[2]: from_gguf.py's, which may
// have more vocabulary rows: those must be the mean of the others).
const COMPARE_CHECKPOINTS = `
import sys, torch
a, b = (torch.load(f, map_location="cpu", weights_only=False)["model"] for f in sys.argv[1:3])
assert set(a) == set(b), "the checkpoints hold different tensors"
worst = 0.0
for name, x in a.items():
    y = b[name]
    if y.shape != x.shape:
        extra = y[x.shape[0]:]
        assert (extra - x.float().mean(dim=0)).abs().max() < 1e-3, f"{name}: an added row is not the mean row"
        y = y[:x.shape[0]]
    worst = max(worst, (x.float() - y.float()).abs().max().item())
print(worst)
`;

describe("training pipeline (toy size)", () => {
    const dir = mkdtempSync(join(tmpdir(), "dream-train-"));
    const p = (name: string) => join(dir, name);
    let f16: NativeModel;
    let q8: NativeModel;

    before(async () => {
        assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run the install command (bash scripts/setup.sh)`);
        python(["train/corpus.py", "--out", p("corpus"), "--limit", "80"]);
        python(["train/tokenizer.py", "--corpus", p("corpus"), "--out", p("tok"), "--vocab", "512"]);
        python([
            "train/train.py",
            "--corpus",
            p("corpus"),
            "--tokenizer",
            p("tok"),
            "--out",
            p("run"),
            "--max-steps",
            "40",
            "--log-every",
            "10",
            "--batch",
            "8",
            "--seq",
            String(SEQ),
            "--threads",
            "1",
            "--objective",
            "dreamon",
            "--config",
            JSON.stringify(TINY)
        ]);
        const common = ["--checkpoint", p("run/checkpoint.pt"), "--tokenizer", p("tok"), "--hf", p("hf")];
        python(["train/export.py", ...common, "--gguf", p("f16.gguf"), "--type", "F16"]);
        python(["train/export.py", ...common, "--gguf", p("q8.gguf"), "--type", "Q8_0"]);
        const addon = loadAddon();
        f16 = await addon.loadModel(p("f16.gguf"), { threads: 1, gpuLayers: 0 });
        q8 = await addon.loadModel(p("q8.gguf"), { threads: 1, gpuLayers: 0 });
    });
    after(() => {
        f16?.dispose();
        q8?.dispose();
        rmSync(dir, { recursive: true, force: true });
    });

    it("a short run lowers the validation loss", () => {
        const log: { step: number; val_loss: number }[] = JSON.parse(readFileSync(p("run/log.json"), "utf8"));
        const first = log[0].val_loss,
            last = log[log.length - 1].val_loss;
        assert.ok(last < first - 0.3, `validation loss ${first} -> ${last} after ${log[log.length - 1].step} steps`);
    });

    it("the Hugging Face checkpoint is Dream's layout", () => {
        const config = JSON.parse(readFileSync(p("hf/config.json"), "utf8"));
        assert.deepEqual(config.architectures, ["DreamModel"]);
        assert.ok(existsSync(p("hf/model.safetensors")) && existsSync(p("hf/tokenizer.json")));
    });

    it("the GGUF carries the training tokenizer's special tokens and context", () => {
        const vocab: { added_tokens: { id: number; content: string }[] } = JSON.parse(readFileSync(p("tok/tokenizer.json"), "utf8"));
        const id = (s: string) => vocab.added_tokens.find((t) => t.content === s)!.id;
        for (const m of [f16, q8]) {
            const info = m.info();
            assert.equal(info.architecture, "dream");
            assert.equal(info.shiftLogits, true);
            assert.equal(info.mask, id("<|mask|>"));
            assert.equal(info.eos, id("<|endoftext|>"));
            assert.equal(info.bos, id("<|endoftext|>"), "what precedes a text in training");
            assert.deepEqual([...info.endTokens].sort(), [id("<|endoftext|>"), id("<|im_end|>")].sort());
            assert.equal(info.nCtxTrain, SEQ);
            assert.equal(info.nVocab, 512);
        }
    });

    it("DreamOn's example maker: a hole's targets expand back to its text, expand and delete positions always masked", () => {
        // hole_targets for every text length 1..40 and mask count 1..length+44, then 200 training sequences of each
        // objective made from the toy corpus and tokenizer.
        const code = `
import random, sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "train")
from tokenizers import Tokenizer
from dreamon import expanded, hole_targets
from train import Corpus, Tokens, make_example
rng = random.Random(7)
EXPAND, DELETE = 4, 5
for L in range(1, 41):
    text = np.array([rng.randrange(10, 500) for _ in range(L)], dtype=np.int32)
    for M in range(1, L + 45):
        targets, runs = hole_targets(rng, text, M, EXPAND, DELETE)
        assert len(targets) == M == len(runs), (L, M)
        assert expanded(targets, runs, text, EXPAND, DELETE) == text.tolist(), (L, M)
        if M < L:
            assert sum(runs) == L and (targets == EXPAND).sum() >= 1 and (targets == DELETE).sum() == 0, (L, M)
        else:
            assert targets[:L].tolist() == text.tolist() and (targets[L:] == DELETE).all(), (L, M)
tok = Tokenizer.from_file(sys.argv[2] + "/tokenizer.json")
ids = Tokens(tok)
data = Corpus(Path(sys.argv[1]), "train", tok)
counts = {}
for objective in ("dream", "dreamon"):
    for _ in range(200):
        noisy, clean, weight = make_example(rng, data, ${SEQ}, ids, objective)
        assert len(noisy) == len(clean) == ${SEQ}
        assert abs(weight.sum() - 1) < 1e-5 and ((weight > 0) == (noisy == ids.mask)).all()
        for t in (ids.expand, ids.delete):
            assert (noisy[clean == t] == ids.mask).all(), "an expand or delete target is always masked"
            counts[objective, t] = counts.get((objective, t), 0) + int((clean == t).sum())
print(counts[("dream", ids.expand)], counts[("dream", ids.delete)], counts[("dreamon", ids.expand)], counts[("dreamon", ids.delete)])
`;
        const [dreamExpand, dreamDelete, expand, del] = python(["-c", code, p("corpus"), p("tok")])
            .trim()
            .split(" ")
            .map(Number);
        assert.deepEqual([dreamExpand, dreamDelete], [0, 0], "Dream's objective has no DreamOn targets");
        assert.ok(expand > 0 && del > 0, `DreamOn's objective: ${expand} expand and ${del} delete targets`);
    });

    it("the GGUF declares DreamOn's tokens: the tokenizer's <|expand|> and <|delete|> ids, CONTROL tokens", async () => {
        const vocab: { added_tokens: { id: number; content: string }[] } = JSON.parse(readFileSync(p("tok/tokenizer.json"), "utf8"));
        const id = (s: string) => vocab.added_tokens.find((t) => t.content === s)!.id;
        for (const file of ["f16.gguf", "q8.gguf"]) {
            const kv = new Map((await readTypedGguf(p(file))).kvs.map((k) => [k.key, k]));
            for (const [key, token] of [
                ["diffusion.expand_token_id", "<|expand|>"],
                ["diffusion.delete_token_id", "<|delete|>"]
            ]) {
                assert.equal(kv.get(key)?.type, "u32", `${file}: ${key}`);
                assert.equal(kv.get(key)?.value, id(token), `${file}: ${key}`);
                assert.equal((kv.get("tokenizer.ggml.token_type")!.value as number[])[id(token)], 3, `${file}: ${token} is a CONTROL token`);
            }
        }
        // llama.cpp loaded both files (before()): the decoder takes the declared ids, and reads the tokens as single
        // special tokens.
        for (const m of [f16, q8]) assert.deepEqual([m.info().expandToken, m.info().deleteToken], [id("<|expand|>"), id("<|delete|>")]);
        for (const token of ["<|expand|>", "<|delete|>"]) assert.deepEqual([...f16.tokenize(token, false, true)], [id(token)]);
    });

    it("llama.cpp tokenizes the validation split exactly as the training tokenizer does", () => {
        const files: { path: string; text: string; ids: number[] }[] = JSON.parse(
            python(["train/reference.py", "tokenize", "--tokenizer", p("tok"), "--corpus", p("corpus"), "--split", "val"])
        );
        assert.ok(files.length > 0, "the validation split is empty");
        for (const f of files) assert.deepEqual([...f16.tokenize(f.text, false, false)], f.ids, `${f.path} tokenizes differently`);
        // Special tokens written in text stay text unless asked for.
        assert.equal(f16.tokenize("<|mask|>", false, true).length, 1);
        assert.ok(f16.tokenize("<|mask|>", false, false).length > 1);
    });

    it("llama.cpp computes PyTorch's logits (F16 closely, Q8_0 within quantization error)", async () => {
        const info = f16.info();
        const tokens = Array.from({ length: 96 }, (_, i) => (i * 37 + 11) % info.nVocab);
        for (const i of [20, 21, 22, 50]) tokens[i] = info.mask;
        const ref: number[][] = JSON.parse(python(["train/reference.py", "logits", "--checkpoint", p("run/checkpoint.pt"), "--tokens", tokens.join(",")]));
        const scale = Math.max(...ref.flat().map(Math.abs));
        for (const [m, tol] of [
            [f16, 2e-3],
            [q8, 5e-2]
        ] as const) {
            const got = await m.forwardLogits(Int32Array.from(tokens));
            assert.equal(got.length, tokens.length * info.nVocab);
            let worst = 0;
            for (const [i, row] of ref.entries()) for (const [v, x] of row.entries()) worst = Math.max(worst, Math.abs(got[i * info.nVocab + v] - x));
            assert.ok(worst <= tol * Math.max(1, scale), `max |llama.cpp − PyTorch| ${worst} (largest logit ${scale})`);
        }
    });

    it("the shipped model's layout: --dreamon-tokens last puts <|expand|> and <|delete|> after the merges", () => {
        python(["train/tokenizer.py", "--corpus", p("corpus"), "--out", p("tok-last"), "--vocab", "512", "--dreamon-tokens", "last"]);
        const vocab: { added_tokens: { id: number; content: string }[] } = JSON.parse(readFileSync(p("tok-last/tokenizer.json"), "utf8"));
        assert.deepEqual(
            vocab.added_tokens.map((t) => [t.id, t.content]),
            [
                [0, "<|endoftext|>"],
                [1, "<|mask|>"],
                [2, "<|im_start|>"],
                [3, "<|im_end|>"],
                [512, "<|expand|>"],
                [513, "<|delete|>"]
            ]
        );
    });

    it("from_gguf.py turns a GGUF back into the checkpoint it was made from, and train.py --init fine-tunes it", () => {
        // The toy tokenizer plus one token: the added row is the mean of the model's rows, as DreamOn's two are for
        // the shipped model.
        python(["-c", ADD_TOKEN, p("tok"), p("tok-plus")]);
        python(["train/from_gguf.py", "--gguf", p("f16.gguf"), "--tokenizer", p("tok-plus"), "--out", p("init.pt")]);
        const worst = python(["-c", COMPARE_CHECKPOINTS, p("run/checkpoint.pt"), p("init.pt")]).trim();
        assert.ok(Number(worst) < 2e-3, `the GGUF's weights differ from the checkpoint's by up to ${worst}`);
        python(["train/from_gguf.py", "--gguf", p("f16.gguf"), "--tokenizer", p("tok"), "--out", p("init.pt")]);
        const log = (dir: string): { val_loss: number }[] => JSON.parse(readFileSync(p(`${dir}/log.json`), "utf8"));
        const fine = ["train/train.py", "--corpus", p("corpus"), "--tokenizer", p("tok"), "--out", p("fine"), "--max-steps", "1"];
        python([...fine, "--log-every", "1", "--batch", "2", "--seq", String(SEQ), "--threads", "1", "--config", JSON.stringify(TINY), "--init", p("init.pt")]);
        // The first step's learning rate is a hundredth of the warm-up's end: the loss is where the toy run ended.
        const ran = log("run");
        const [start, end, resumed] = [ran[0].val_loss, ran[ran.length - 1].val_loss, log("fine")[0].val_loss];
        assert.ok(Math.abs(resumed - end) < 0.05 && resumed < start - 0.3, `val loss ${start} -> ${end}; from the GGUF ${resumed}`);
        assert.match(
            refused(["train/from_gguf.py", "--gguf", p("f16.gguf"), "--tokenizer", p("tok-last"), "--out", p("x.pt")]),
            /is not the GGUF's vocabulary \(\d+ of its 512 ids differ\): make it with tokenizer\.py/
        );
        assert.match(refused(["train/from_gguf.py", "--gguf", p("no.gguf"), "--tokenizer", p("tok"), "--out", p("x.pt")]), /no\.gguf is missing/);
        assert.match(refused([...fine, "--init", p("no.pt")]), /no\.pt is missing: make it with train\/from_gguf\.py/);
        assert.match(refused([...fine, "--out", p("fine2"), "--init", p("init.pt")]), /init\.pt is a model with another configuration/);
        assert.ok(!existsSync(p("x.pt")), "a refused conversion writes nothing");
    });

    it("each script refuses bad input with a sentence that names what to do", () => {
        const none = p("no-such-folder");
        const run = ["--corpus", p("corpus"), "--tokenizer", p("tok"), "--out", p("run"), "--max-steps", "1", "--seq", String(SEQ)];
        assert.match(refused(["train/corpus.py", "--root", none, "--out", p("c2")]), /--root .*no-such-folder is not a folder/);
        assert.match(refused(["train/tokenizer.py", "--corpus", none, "--out", p("t2")]), /train\.jsonl is missing: make it with train\/corpus\.py/);
        assert.match(refused(["train/tokenizer.py", "--corpus", p("corpus"), "--out", p("t2"), "--vocab", "100"]), /--vocab must be at least 262/);
        assert.match(refused(["train/train.py", ...run, "--tokenizer", none]), /tokenizer\.json is missing: make it with train\/tokenizer\.py/);
        assert.match(refused(["train/train.py", ...run, "--batch", "0"]), /--batch must be more than 0 \(it is 0\)/);
        assert.match(refused(["train/train.py", ...run, "--config", "{hidden: 8}"]), /--config is not JSON/);
        assert.match(refused(["train/train.py", ...run, "--config", '{"hidden": 8}']), /--config takes an object with some of: .*hidden_size/);
        // The toy run's checkpoint is there: resuming it with another shape would fail deep in PyTorch.
        assert.match(
            refused(["train/train.py", ...run, "--config", JSON.stringify({ ...TINY, hidden_size: 32 })]),
            /is a run with another model configuration: give a new --out/
        );
        assert.match(
            refused(["train/train.py", ...run, "--config", JSON.stringify(TINY), "--objective", "dream"]),
            /is a run with --objective dreamon: give that, or a new --out/
        );
        const common = ["--tokenizer", p("tok"), "--hf", p("hf2"), "--gguf", p("x.gguf")];
        assert.match(
            refused(["train/export.py", "--checkpoint", join(none, "checkpoint.pt"), ...common]),
            /checkpoint\.pt is missing: make it with train\/train\.py/
        );
        assert.match(refused(["train/export.py", "--checkpoint", p("run/checkpoint.pt"), ...common, "--type", "Q3_X"]), /invalid choice: 'Q3_X'/);
        assert.match(refused(["train/spans.py", "--corpus", none, "--tokenizer", p("tok"), "--out", p("s.gz")]), /train\.jsonl is missing/);
        assert.ok(!existsSync(p("x.gguf")) && !existsSync(p("hf2")), "a refused export writes nothing");
    });

    it("the quantized model infills through the runtime", async () => {
        const model = await DiffusionModel.load(p("q8.gguf"), { threads: 1 });
        try {
            const r = await model.decode(["def f(x):\n    return ", { hole: 6 }, "\n"], {});
            assert.equal(r.holes.length, 1);
            assert.equal(typeof r.holes[0].text, "string");
            // A hole of variable length (the decoder's DreamOn mode), which the declared tokens make possible.
            const v = await model.decode(["def f(x):\n    return ", { hole: 4, maxLength: 12 }, "\n"], {});
            assert.equal(v.holes.length, 1);
            assert.equal(typeof v.holes[0].text, "string");
        } finally {
            model.dispose();
        }
    });
});

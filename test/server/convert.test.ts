// The checkpoint converter (server/src/convert/) against llama.cpp's own convert_hf_to_gguf.py from the bundled tree:
// on a Dream-Coder-7B-shaped checkpoint (with its tokenizer as tokenizer.json, and as the slow tokenizer's vocab.json,
// merges.txt and added_tokens.json), a LLaDA-8B-shaped one (real config.json values and special token ids, widths
// shrunk, sharded bf16; test/tools/synthetic_tokenizer.py's layouts) and the layout this project's training pipeline
// writes (float32, one file, train/tokenizer.py's tokenizer), both must write the same GGUF: every key with its type,
// value and place, every array item, every tensor's name, shape, type and bytes. Then llama.cpp must tokenize as the
// Hugging Face tokenizer does and compute identically with both; bad checkpoints are refused with a sentence;
// cancelling leaves nothing; peak memory does not grow with the checkpoint.
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import { CheckpointError } from "../../server/src/convert/checkpointError";
import { type ConvertOutType, checkpointArchitecture, convertCheckpoint } from "../../server/src/convert/convert";
import { f32BitsToBf16, f32BitsToF16 } from "../../server/src/convert/gguf";
import { preTokenizerName, vocabJsonPreTokenizerName } from "../../server/src/convert/vocab";
import { loadAddon } from "../../server/src/runtime/native";
import { quantizeModel } from "../../server/src/runtime/quantize";
import { writeSyntheticCheckpoint } from "../tools/checkpoints";
import { firstGgufDifference, readTypedGguf } from "../tools/gguf-diff";
import { PYTHON, pythonConvert } from "../tools/python-convert";
import { repoRoot } from "../tools/test-models";

/** A synthetic checkpoint: its name here, the generator's arguments, its folder (whose name the heuristics read), its
 *  architecture and the --outtype values converted. */
interface Checkpoint {
    name: string;
    args: string[];
    folder: string[];
    arch: "dream" | "llada";
    outTypes: ConvertOutType[];
}

const CHECKPOINTS: Checkpoint[] = [
    { name: "dream-coder-7b", args: ["--shape", "dream-coder-7b"], folder: ["Dream-Coder-v0-Instruct-7B"], arch: "dream", outTypes: ["auto", "f16"] },
    {
        name: "dream-coder-7b-vocab-json",
        args: ["--shape", "dream-coder-7b", "--vocab-json"],
        folder: ["vocab-json", "Dream-Coder-v0-Instruct-7B"],
        arch: "dream",
        outTypes: ["auto"]
    },
    { name: "llada-8b", args: ["--shape", "llada-8b"], folder: ["LLaDA-8B-Instruct"], arch: "llada", outTypes: ["auto", "f16"] },
    { name: "dream-mini", args: ["--shape", "dream-mini"], folder: ["dream-mini"], arch: "dream", outTypes: ["auto", "f16"] },
    // Dream-Coder's tokenizer with DreamOn's <|expand|> and <|delete|> added after <|mask|>.
    { name: "dreamon-7b", args: ["--shape", "dream-coder-7b", "--dreamon"], folder: ["DreamOn-v0-7B"], arch: "dream", outTypes: ["auto"] }
];

/** The pre-tokenizer our converter names for the checkpoint's tokenizer, which convert_hf_to_gguf.py is told to write:
 *  it names one by the hash of a real tokenizer's output, which a synthetic tokenizer does not have. */
function preTokenizerOf(dir: string): string {
    const tokenizerJson = join(dir, "tokenizer.json");
    if (existsSync(tokenizerJson)) return preTokenizerName(JSON.parse(readFileSync(tokenizerJson, "utf8")));
    return vocabJsonPreTokenizerName(JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8")));
}

/** Expects `run` to reject with a CheckpointError whose message matches. */
async function refuses(run: Promise<unknown>, message: RegExp): Promise<void> {
    await assert.rejects(run, (e: Error) => {
        assert.ok(e instanceof CheckpointError, `not a CheckpointError: ${e.stack}`);
        assert.match(e.message, message);
        return true;
    });
}

describe("checkpoint to GGUF, against convert_hf_to_gguf.py", () => {
    const dir = mkdtempSync(join(tmpdir(), "dream-convert-"));
    const p = (...names: string[]) => join(dir, ...names);
    const outputs = new Map<string, { ours: string; theirs: string }>();

    before(() => {
        assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run the install command (bash scripts/setup.sh)`);
        for (const c of CHECKPOINTS) writeSyntheticCheckpoint([...c.args, "--out", p(...c.folder)]);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    for (const c of CHECKPOINTS) {
        for (const outType of c.outTypes) {
            it(`${c.name}, --outtype ${outType}: the same GGUF, key by key and byte by byte`, async () => {
                const ours = p(`${c.name}-${outType}-ours.gguf`);
                const theirs = p(`${c.name}-${outType}-python.gguf`);
                const progress: number[] = [];
                const r = await convertCheckpoint(p(...c.folder), ours, { outType, onProgress: (q) => progress.push(q.tensorsDone) });
                await pythonConvert(p(...c.folder), theirs, { arch: c.arch, outType, preTokenizer: preTokenizerOf(p(...c.folder)) });
                assert.equal(await firstGgufDifference(ours, theirs), null);
                assert.equal(r.architecture, c.arch);
                assert.deepEqual(
                    progress,
                    Array.from({ length: r.tensors + 1 }, (_, i) => i),
                    "progress after each tensor"
                );
                assert.ok(!existsSync(`${ours}.part`));
                outputs.set(`${c.name}-${outType}`, { ours, theirs });
            });
        }
    }

    it("the general.* keys carry what the folder, config and model card say", async () => {
        const { ours } = outputs.get("dream-coder-7b-auto")!;
        const kv = new Map((await readTypedGguf(ours)).kvs.map((k) => [k.key, k.value]));
        assert.equal(kv.get("general.name"), "Dream Coder v0 Instruct 7B");
        assert.equal(kv.get("general.organization"), "Dream Org");
        assert.equal(kv.get("general.basename"), "Dream-Coder-v0");
        assert.equal(kv.get("general.license"), "apache-2.0");
        assert.equal(kv.get("general.base_model.0.repo_url"), "https://huggingface.co/Dream-org/Dream-Coder-v0-Base-7B");
        assert.deepEqual(kv.get("general.tags"), ["code", "diffusion", "text-generation"]);
        assert.deepEqual(kv.get("general.languages"), ["en"]);
        assert.equal(kv.get("general.file_type"), 32, "a bf16 checkpoint converts to BF16 by default");
        assert.equal(kv.get("dream.context_length"), 131072);
        assert.equal(kv.get("tokenizer.ggml.pre"), "qwen2");
    });

    it("DreamOn's <|expand|> and <|delete|>: their ids declared as diffusion.* keys and CONTROL tokens where the tokenizer adds them, no keys otherwise", async () => {
        const kvs = async (name: string) => new Map((await readTypedGguf(outputs.get(name)!.ours)).kvs.map((k) => [k.key, k]));
        const KEYS = ["diffusion.expand_token_id", "diffusion.delete_token_id"];
        const dreamOn = await kvs("dreamon-7b-auto");
        assert.deepEqual(
            KEYS.map((k) => [dreamOn.get(k)?.type, dreamOn.get(k)?.value]),
            [
                ["u32", 151667],
                ["u32", 151668]
            ]
        );
        const types = dreamOn.get("tokenizer.ggml.token_type")!.value as number[];
        assert.deepEqual([types[151667], types[151668]], [3, 3], "CONTROL tokens");
        // The pipeline's own tokenizer (train/tokenizer.py) has them too, as its special tokens 4 and 5.
        const mini = await kvs("dream-mini-auto");
        const tokens = mini.get("tokenizer.ggml.tokens")!.value as string[];
        assert.deepEqual(
            KEYS.map((k) => tokens[mini.get(k)!.value as number]),
            ["<|expand|>", "<|delete|>"]
        );
        for (const name of ["dream-coder-7b-auto", "dream-coder-7b-vocab-json-auto", "llada-8b-auto"]) {
            const keys = [...(await kvs(name)).keys()];
            assert.deepEqual(
                keys.filter((k) => KEYS.includes(k)),
                [],
                `${name} has no DreamOn tokens`
            );
        }
    });

    it("the comparison notices a changed metadata value, tokenizer array item and tensor byte", async () => {
        const { ours, theirs } = outputs.get("dream-coder-7b-auto")!;
        const mutate = (name: string, change: (b: Buffer) => void) => {
            const copy = p(name);
            copyFileSync(ours, copy);
            const b = readFileSync(copy);
            change(b);
            writeFileSync(copy, b);
            return copy;
        };
        const replaceOnce = (b: Buffer, from: string, to: string) => {
            assert.equal(from.length, to.length);
            const at = b.indexOf(from);
            assert.ok(at >= 0, `${from} is not in the file`);
            b.write(to, at, "latin1");
        };
        const value = mutate("value.gguf", (b) => replaceOnce(b, "apache-2.0", "apache-3.0"));
        assert.match((await firstGgufDifference(value, theirs)) ?? "", /general\.license is "apache-3\.0" in ours but "apache-2\.0"/);
        const token = mutate("token.gguf", (b) => replaceOnce(b, "[PAD100000]", "[PAD100001]"));
        assert.match((await firstGgufDifference(token, theirs)) ?? "", /tokenizer\.ggml\.tokens\[100000\] is "\[PAD100001\]" in ours/);
        const g = await readTypedGguf(ours);
        const last = g.tensors[g.tensors.length - 1];
        const byte = mutate("byte.gguf", (b) => {
            b[last.fileOffset + 5] ^= 1;
        });
        assert.match((await firstGgufDifference(byte, theirs)) ?? "", new RegExp(`in the data of tensor ${last.name.replace(/\./g, "\\.")} at its byte 5`));
    });

    it("llama.cpp tokenizes as the Hugging Face tokenizer does and computes the same with both files", async () => {
        const addon = loadAddon();
        // Code, contractions, digits, accents, CJK, runs of spaces and line breaks: where pre-tokenizers differ.
        const code = readFileSync(join(repoRoot, "train", "tokenizer.py"), "utf8").slice(0, 600);
        const text = `${code}\nDon't WE'LL they've 1234567 caf\u00e9 na\u00efve \u6771\u4eac\n\n\n   \t  x\r\n\r\n  y  \n`;
        // The tokenizers library on each tokenizer.json; the vocab.json layout is the same tokenizer as dream-coder-7b's.
        const withJson = CHECKPOINTS.filter((c) => existsSync(p(...c.folder, "tokenizer.json")));
        const r = spawnSync(
            PYTHON,
            [
                "-c",
                "import json, sys\nfrom tokenizers import Tokenizer\ntext = sys.stdin.buffer.read().decode()\n" +
                    "print(json.dumps([Tokenizer.from_file(f).encode(text, add_special_tokens=False).ids for f in sys.argv[1:]]))",
                ...withJson.map((c) => p(...c.folder, "tokenizer.json"))
            ],
            { input: text, encoding: "utf8" }
        );
        assert.equal(r.status, 0, r.stderr);
        const hf = new Map<string, number[]>(withJson.map((c, i) => [c.name, JSON.parse(r.stdout)[i]]));
        hf.set("dream-coder-7b-vocab-json", hf.get("dream-coder-7b")!);
        for (const c of CHECKPOINTS) {
            const key = `${c.name}-${c.outTypes[0]}`;
            const { ours, theirs } = outputs.get(key)!;
            const [a, b] = [await addon.loadModel(ours, { threads: 1, gpuLayers: 0 }), await addon.loadModel(theirs, { threads: 1, gpuLayers: 0 })];
            try {
                const tokens = a.tokenize(text, false, false);
                assert.ok(tokens.length > 50, `${key}: ${tokens.length} tokens`);
                assert.deepEqual([...tokens], hf.get(c.name), `${key}: llama.cpp tokenizes otherwise than the Hugging Face tokenizer`);
                assert.deepEqual(tokens, b.tokenize(text, false, false), `${key} tokenizes differently`);
                const window = tokens.slice(0, 24);
                window[10] = a.info().mask;
                const [la, lb] = [await a.forwardLogits(window), await b.forwardLogits(window)];
                assert.equal(la.length, window.length * a.info().nVocab);
                assert.ok(
                    la.every((x, i) => x === lb[i]),
                    `${key}: logits differ`
                );
            } finally {
                a.dispose();
                b.dispose();
            }
        }
    });

    it("quantized to Q4_K_M by the addon, our file equals llama-quantize's of Python's file, and computes the same", async () => {
        const addon = loadAddon();
        for (const name of ["dream-coder-7b-auto", "llada-8b-auto"]) {
            const { ours, theirs } = outputs.get(name)!;
            const [oursQ, theirsQ] = [p(`${name}-ours-q4_k_m.gguf`), p(`${name}-python-q4_k_m.gguf`)];
            await quantizeModel(ours, oursQ, { type: "Q4_K_M", threads: 1 });
            const r = spawnSync(join(repoRoot, "native", "build", "cmake", "bin", "llama-quantize"), [theirs, theirsQ, "Q4_K_M", "1"], { encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr.slice(-2000));
            assert.equal(await firstGgufDifference(oursQ, theirsQ), null, name);
            const [a, b] = [await addon.loadModel(oursQ, { threads: 1, gpuLayers: 0 }), await addon.loadModel(theirsQ, { threads: 1, gpuLayers: 0 })];
            try {
                const window = a.tokenize("def mean(xs):\n    return sum(xs) / len(xs)\n", false, false).slice(0, 16);
                window[5] = a.info().mask;
                const [la, lb] = [await a.forwardLogits(window), await b.forwardLogits(window)];
                assert.ok(
                    la.every((x, i) => x === lb[i]),
                    `${name}: quantized logits differ`
                );
            } finally {
                a.dispose();
                b.dispose();
            }
        }
    });

    it("F16 and BF16 rounding equal numpy's and gguf-py's, bit for bit (ties, subnormals, overflow, NaN)", () => {
        const code = [
            "import json, sys, numpy as np",
            `sys.path.insert(0, ${JSON.stringify(join(repoRoot, "native", "build", "llama.cpp", "gguf-py"))})`,
            "from gguf.quants import BF16",
            "rng = np.random.default_rng(1)",
            "special = [0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffc00123, 0x477fe000, 0x477ff000, 0x477fefff,",
            "           0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x32ffffff, 0x33800000, 0x3f801000, 0x3f803000, 0x3f800fff, 0x7f7fffff]",
            "bits = np.array(special + list(rng.integers(0, 2**32, 20000, dtype=np.uint64)) + [int(b) for b in (rng.standard_normal(5000).astype(np.float32) * 1e-5).view(np.uint32)], dtype=np.uint32)",
            "f = bits.view(np.float32)",
            "print(json.dumps([bits.tolist(), f.astype(np.float16).view(np.uint16).tolist(), BF16.quantize_blocks(f.reshape(-1, 1)).view(np.uint16).ravel().tolist()]))"
        ].join("\n");
        const r = spawnSync(PYTHON, ["-c", code], { encoding: "utf8", maxBuffer: 1 << 26 });
        assert.equal(r.status, 0, r.stderr);
        const [bits, halves, bf16s]: number[][] = JSON.parse(r.stdout);
        const hex = (n: number) => `0x${n.toString(16)}`;
        for (const [i, b] of bits.entries()) {
            const f32NaN = (b & 0x7fffffff) > 0x7f800000;
            // numpy keeps a NaN's payload; both sides are NaN with the top payload bits, quiet in ours.
            if (f32NaN) assert.equal(f32BitsToF16(b) & 0x7e00, 0x7e00, `NaN ${hex(b)}`);
            else assert.equal(f32BitsToF16(b), halves[i], `f16 of ${hex(b)}`);
            assert.equal(f32BitsToBf16(b), bf16s[i], `bf16 of ${hex(b)}`);
        }
    });

    it("refuses what it cannot convert, with a sentence, and leaves no file", async () => {
        const out = p("refused.gguf");
        const check = async (folder: string, message: RegExp) => {
            await refuses(convertCheckpoint(folder, out), message);
            assert.ok(!existsSync(out) && !existsSync(`${out}.part`));
        };
        mkdirSync(p("empty"));
        await check(p("empty"), /has no config\.json: give the folder of a Hugging Face checkpoint/);
        assert.throws(
            () => checkpointArchitecture({ architectures: ["Qwen2ForCausalLM"] }),
            /architecture is Qwen2ForCausalLM, which this converter does not support: it supports DreamModel/
        );
        assert.throws(() => checkpointArchitecture({ architectures: ["LLaDAMoEModelLM"] }), /LLaDA-MoE.*does not support yet/);
        assert.throws(() => checkpointArchitecture({}), /names no architecture/);

        const copy = (name: string) => {
            const to = p(name);
            mkdirSync(to);
            for (const f of readdirSync(p("LLaDA-8B-Instruct"))) copyFileSync(p("LLaDA-8B-Instruct", f), join(to, f));
            return to;
        };
        const shard = "model-00002-of-00002.safetensors";
        const missing = copy("missing-shard");
        rmSync(join(missing, shard));
        await check(missing, /model-00002-of-00002\.safetensors is missing \(the index names it\): download the checkpoint again/);
        const truncated = copy("truncated");
        const data = readFileSync(join(truncated, shard));
        writeFileSync(join(truncated, shard), data.subarray(0, data.length - 10));
        await check(truncated, /past the end of the file .*: it is truncated/);
        const hostile = copy("hostile");
        const header = Buffer.alloc(16);
        header.writeBigUInt64LE(1n << 62n);
        writeFileSync(join(hostile, shard), header);
        await check(hostile, /its header claims \d+ bytes, and the file has 16/);
        const int8 = copy("int8");
        const json = '{"x.weight":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}}';
        const length = Buffer.alloc(8);
        length.writeBigUInt64LE(BigInt(json.length));
        writeFileSync(join(int8, shard), Buffer.concat([length, Buffer.from(json), Buffer.alloc(2)]));
        await check(int8, /is I8; this converter reads BF16, F16 and F32 checkpoints/);
    });

    it("cancelling stops between chunks and leaves no file", async () => {
        const out = p("cancelled.gguf");
        const controller = new AbortController();
        await assert.rejects(
            convertCheckpoint(p("Dream-Coder-v0-Instruct-7B"), out, {
                signal: controller.signal,
                onProgress: (q) => q.tensorsDone === 1 && controller.abort()
            }),
            /the conversion was cancelled/
        );
        assert.ok(!existsSync(out) && !existsSync(`${out}.part`));
    });

    it("peak memory stays under a fixed bound however large the checkpoint", async () => {
        // Two checkpoints about 4x apart, each converted in a fresh process that reports its peak resident memory:
        // VmHWM, since getrusage's maxrss in a child counts the test process's own memory when it forked.
        const sizes = [
            { name: "mem-small", config: { hidden_size: 64, intermediate_size: 160, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2 } },
            { name: "mem-large", config: { hidden_size: 256, intermediate_size: 704, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 2 } }
        ];
        const script = `const { convertCheckpoint } = require(${JSON.stringify(require.resolve("../../server/src/convert/convert"))});
            const [dir, out] = process.argv.slice(1); const t = Date.now();
            const peak = () => Number(/VmHWM:\\s+(\\d+) kB/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"))[1]) * 1024;
            convertCheckpoint(dir, out).then((r) => console.log(JSON.stringify({ bytes: r.bytes, ms: Date.now() - t, peak: peak() })));`;
        const peaks: number[] = [];
        for (const s of sizes) {
            writeSyntheticCheckpoint(["--shape", "dream-coder-7b", "--out", p(s.name), "--config", JSON.stringify(s.config)]);
            const { stdout } = await promisify(execFile)(process.execPath, ["-e", script, p(s.name), p(`${s.name}.gguf`)]);
            const r: { bytes: number; ms: number; peak: number } = JSON.parse(stdout.trim().split("\n").pop()!);
            const mb = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
            console.log(`${s.name}: ${mb(r.bytes)} GGUF in ${r.ms} ms (${(r.bytes / 2 ** 20 / (r.ms / 1000)).toFixed(0)} MiB/s), peak RSS ${mb(r.peak)}`);
            peaks.push(r.peak);
            rmSync(p(s.name), { recursive: true });
            rmSync(p(`${s.name}.gguf`));
        }
        // Measured: 105-120 MiB for either (Node itself about 40, the 152064-token vocabulary and its encoded header
        // about 40, the 4 MiB chunks in flight the rest), 120-130 MiB for a 726 MiB GGUF (--size large), 135 as F32.
        const BOUND = 160 * 2 ** 20;
        assert.ok(
            peaks.every((m) => m < BOUND),
            `peak RSS ${peaks} over ${BOUND}`
        );
        assert.ok(peaks[1] - peaks[0] < 32 * 2 ** 20, `peak RSS grew from ${peaks[0]} to ${peaks[1]} with the checkpoint`);
    });
});

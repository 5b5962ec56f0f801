// The tokenizer entries of our converter against llama.cpp's own: for each checkpoint layout (Dream-Coder's, LLaDA's),
// test/tools/synthetic_tokenizer.py writes the tokenizer files, the bundled convert_hf_to_gguf.py writes a
// --vocab-only GGUF, and vocabMetadata must give every tokenizer.* entry of that file: same keys, order, types and
// values. The synthetic tokenizer's pre-tokenizer hash is unknown to the converter, so the conversion runs with the
// model class's get_vocab_base_pre answering the name our table gives (as train/export.py does for its tokenizer).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { CheckpointError } from "../../server/src/convert/checkpointError";
import type { GgufKv, GgufScalarType } from "../../server/src/convert/gguf";
import { PRE_TOKENIZERS, preTokenizerName, vocabJsonPreTokenizerName, vocabMetadata } from "../../server/src/convert/vocab";
import { readGgufHeader } from "../../server/src/runtime/ggufHeader";
import { repoRoot } from "../tools/test-models";

const PYTHON = join(repoRoot, "train", ".venv", "bin", "python");
const LLAMA_CPP = join(repoRoot, "native", "build", "llama.cpp");

function python(args: string[]): string {
    const r = spawnSync(PYTHON, args, { cwd: repoRoot, encoding: "utf8", maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, `python ${args.join(" ").slice(0, 300)} failed (${r.status ?? r.signal}):\n${r.stderr.slice(-3000)}`);
    return r.stdout;
}

/** convert_hf_to_gguf.py --vocab-only on `dir`, with get_vocab_base_pre answering `pre`. */
function convertVocab(dir: string, out: string, pre: string): void {
    const code = `
import runpy, sys
sys.path.insert(0, ${JSON.stringify(LLAMA_CPP)}); sys.path.insert(1, ${JSON.stringify(join(LLAMA_CPP, "gguf-py"))})
from conversion.dream import DreamModel
from conversion.llada import LLaDAModel, LLaDAMoEModel
for cls in (DreamModel, LLaDAModel, LLaDAMoEModel):
    cls.get_vocab_base_pre = lambda self, tokenizer: ${JSON.stringify(pre)}
sys.argv = ["convert_hf_to_gguf.py", ${JSON.stringify(dir)}, "--outfile", ${JSON.stringify(out)}, "--vocab-only"]
try:
    runpy.run_path(${JSON.stringify(join(LLAMA_CPP, "convert_hf_to_gguf.py"))}, run_name="__main__")
except SystemExit as e:
    if e.code: raise
`;
    python(["-c", code]);
}

/** The file's tokenizer.* entries, in its order, as GgufKv. */
async function fileEntries(path: string): Promise<GgufKv[]> {
    const { metadata, types } = await readGgufHeader(path, statSync(path).size);
    const entries: GgufKv[] = [];
    for (const [key, value] of metadata) {
        if (!key.startsWith("tokenizer.")) continue;
        const type = types.get(key)!;
        const array = /^array<(\w+)>$/.exec(type);
        if (array) {
            entries.push({ key, value: { type: "array", itemType: array[1] as GgufScalarType, value: value as (number | string | boolean | bigint)[] } });
        } else {
            entries.push({ key, value: { type, value } as GgufKv["value"] });
        }
    }
    return entries;
}

/** Every difference between two entry lists, one line each: keys and order, types, each array element. */
function differences(expected: readonly GgufKv[], actual: readonly GgufKv[]): string[] {
    const out: string[] = [];
    const keys = (l: readonly GgufKv[]) => l.map((e) => e.key).join(", ");
    if (keys(expected) !== keys(actual)) out.push(`keys: expected [${keys(expected)}], got [${keys(actual)}]`);
    const byKey = new Map(actual.map((e) => [e.key, e.value]));
    for (const { key, value: want } of expected) {
        const got = byKey.get(key);
        if (got === undefined) continue;
        const typeOf = (v: GgufKv["value"]) => (v.type === "array" ? `array of ${v.itemType}` : v.type);
        if (typeOf(want) !== typeOf(got)) out.push(`${key}: type ${typeOf(want)} expected, got ${typeOf(got)}`);
        if (want.type === "array" && got.type === "array") {
            if (want.value.length !== got.value.length) out.push(`${key}: ${want.value.length} items expected, got ${got.value.length}`);
            const n = Math.min(want.value.length, got.value.length);
            for (let i = 0; i < n; i++) {
                if (want.value[i] !== got.value[i]) out.push(`${key}[${i}]: ${JSON.stringify(want.value[i])} expected, got ${JSON.stringify(got.value[i])}`);
            }
        } else if (want.value !== got.value) {
            out.push(`${key}: ${JSON.stringify(want.value)} expected, got ${JSON.stringify(got.value)}`);
        }
    }
    return out;
}

function entry(entries: GgufKv[], key: string): GgufKv["value"] {
    const found = entries.find((e) => e.key === key);
    assert.ok(found, `no ${key}`);
    return found.value;
}

const LAYOUTS = [
    { layout: "dream-coder", arch: "dream", pre: "qwen2", flags: [] },
    { layout: "dream-coder", arch: "dream", pre: "qwen2", flags: ["--chat-template-file"] },
    { layout: "dream-coder", arch: "dream", pre: "qwen2", flags: ["--vocab-json"] },
    { layout: "llada", arch: "llada", pre: "bailingmoe", flags: [] }
] as const;

describe("vocabMetadata against convert_hf_to_gguf.py", () => {
    const root = mkdtempSync(join(tmpdir(), "dream-vocab-"));
    before(() => assert.ok(existsSync(PYTHON), `${PYTHON} is missing: run the install command (bash scripts/setup.sh)`));
    after(() => rmSync(root, { recursive: true, force: true }));

    for (const { layout, arch, pre, flags } of LAYOUTS) {
        const name = `${layout}${flags.join("")}`;
        describe(name, () => {
            const dir = join(root, name);
            let expected: GgufKv[];
            let actual: GgufKv[];

            before(async () => {
                python(["test/tools/synthetic_tokenizer.py", "--layout", layout, "--out", dir, ...flags]);
                const hparams = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
                actual = await vocabMetadata(dir, hparams, arch);
                const out = join(root, `${name}.gguf`);
                convertVocab(dir, out, pre);
                expected = await fileEntries(out);
            });

            it("names the pre-tokenizer the converter is told to write", () => {
                if (existsSync(join(dir, "tokenizer.json"))) assert.equal(preTokenizerName(JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"))), pre);
                else assert.equal(vocabJsonPreTokenizerName(JSON.parse(readFileSync(join(dir, "tokenizer_config.json"), "utf8"))), pre);
            });

            it("writes every tokenizer entry the converter writes, in its order, with its types and values", () => {
                assert.ok(expected.length >= 8, `the converter wrote only ${expected.length} tokenizer entries`);
                assert.deepEqual(differences(expected, actual), []);
            });

            it("covers the layout: padded gaps, control and user-defined tokens, merges, special ids, chat template", () => {
                const tokens = entry(expected, "tokenizer.ggml.tokens");
                const types = entry(expected, "tokenizer.ggml.token_type");
                assert.ok(tokens.type === "array" && types.type === "array");
                const hparams = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
                assert.equal(tokens.value.length, hparams.vocab_size);
                assert.ok(types.value.includes(5) && types.value.includes(3) && types.value.includes(1), "UNUSED, CONTROL and NORMAL tokens");
                if (layout === "dream-coder") assert.ok(types.value.includes(4), "USER_DEFINED tokens");
                assert.equal(tokens.value[hparams.mask_token_id], layout === "llada" ? "<|mdm_mask|>" : "<|mask|>");
                const merges = entry(expected, "tokenizer.ggml.merges");
                assert.ok(merges.type === "array" && merges.value.length > 100);
                assert.equal(entry(expected, "tokenizer.ggml.mask_token_id").value, hparams.mask_token_id);
                assert.equal(entry(expected, "tokenizer.chat_template").type, "string");
            });

            it("reports a token, a token type or a merge that differs", () => {
                const mutate = (key: string, index: number, value: string | number): GgufKv[] =>
                    actual.map((e) => {
                        if (e.key !== key || e.value.type !== "array") return e;
                        const copy = [...e.value.value];
                        copy[index] = value;
                        return { key, value: { ...e.value, value: copy } };
                    });
                assert.deepEqual(differences(expected, mutate("tokenizer.ggml.tokens", 300, "other")), [
                    `tokenizer.ggml.tokens[300]: ${JSON.stringify((entry(expected, "tokenizer.ggml.tokens").value as string[])[300])} expected, got "other"`
                ]);
                assert.deepEqual(differences(expected, mutate("tokenizer.ggml.token_type", 0, 3)), ["tokenizer.ggml.token_type[0]: 1 expected, got 3"]);
                const merge0 = (entry(expected, "tokenizer.ggml.merges").value as string[])[0];
                assert.deepEqual(differences(expected, mutate("tokenizer.ggml.merges", 0, "a b")), [
                    `tokenizer.ggml.merges[0]: ${JSON.stringify(merge0)} expected, got "a b"`
                ]);
                const u32AsI32 = actual.map((e) =>
                    e.key === "tokenizer.ggml.eos_token_id" ? { key: e.key, value: { ...e.value, type: "i32" } } : e
                ) as GgufKv[];
                assert.deepEqual(differences(expected, u32AsI32), ["tokenizer.ggml.eos_token_id: type u32 expected, got i32"]);
                assert.match(differences(expected, actual.slice(1)).join("\n"), /^keys: /);
            });
        });
    }
});

describe("vocabMetadata refuses a tokenizer it cannot convert, with a sentence", () => {
    const root = mkdtempSync(join(tmpdir(), "dream-vocab-bad-"));
    const dir = join(root, "ckpt");
    let hparams: Record<string, unknown>;
    before(() => {
        python(["test/tools/synthetic_tokenizer.py", "--layout", "dream-coder", "--out", dir]);
        hparams = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
    });
    after(() => rmSync(root, { recursive: true, force: true }));

    const tokenizerJson = () => JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    const refused = async (pattern: RegExp, config = hparams) => {
        await assert.rejects(vocabMetadata(dir, config, "dream"), (e: unknown) => {
            assert.ok(e instanceof CheckpointError, `not a CheckpointError: ${e}`);
            assert.match(e.message, pattern);
            assert.match(e.message, /^[A-Z].*[.]$/s, "one sentence");
            return true;
        });
    };

    it("a missing tokenizer.json", async () => {
        const saved = readFileSync(join(dir, "tokenizer.json"));
        unlinkSync(join(dir, "tokenizer.json"));
        try {
            await refused(/neither a tokenizer\.json nor a vocab\.json with its merges\.txt/);
        } finally {
            writeFileSync(join(dir, "tokenizer.json"), saved);
        }
    });

    it("a vocab.json checkpoint whose tokenizer class is unknown", async () => {
        const slow = join(root, "slow");
        python(["test/tools/synthetic_tokenizer.py", "--layout", "dream-coder", "--out", slow, "--vocab-json"]);
        const config = JSON.parse(readFileSync(join(slow, "tokenizer_config.json"), "utf8"));
        writeFileSync(join(slow, "tokenizer_config.json"), JSON.stringify({ ...config, tokenizer_class: "GPT2Tokenizer" }));
        await assert.rejects(vocabMetadata(slow, hparams, "dream"), (e: unknown) => {
            assert.ok(e instanceof CheckpointError);
            assert.match(e.message, /no tokenizer\.json and its tokenizer class \("GPT2Tokenizer" in tokenizer_config\.json\) is not one this converter knows/);
            return true;
        });
    });

    it("a tokenizer.json that is not JSON", async () => {
        const saved = readFileSync(join(dir, "tokenizer.json"));
        writeFileSync(join(dir, "tokenizer.json"), saved.subarray(0, 1000));
        try {
            await refused(/tokenizer\.json is not valid JSON/);
        } finally {
            writeFileSync(join(dir, "tokenizer.json"), saved);
        }
    });

    it("ids beyond config.json's vocab_size", async () => {
        await refused(/"<\|endoftext\|>" has the id 151643, beyond the 151000 tokens/, { ...hparams, vocab_size: 151000 });
    });

    it("an unknown pre-tokenizer", async () => {
        const saved = readFileSync(join(dir, "tokenizer.json"));
        const tokenizer = tokenizerJson();
        tokenizer.pre_tokenizer.pretokenizers[0].pattern.Regex = "\\p{N}{1,3}";
        writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
        try {
            await refused(/pre-tokenizer \(normalizer NFC, pre_tokenizer .*\\\\p\{N\}\{1,3\}.*\) is not one this converter knows \(qwen2, bailingmoe\)/);
        } finally {
            writeFileSync(join(dir, "tokenizer.json"), saved);
        }
    });

    it("the table names each rule once", () => {
        assert.equal(new Set(PRE_TOKENIZERS.map((r) => `${r.normalizer} ${r.regex}`)).size, PRE_TOKENIZERS.length);
        const tokenizer = tokenizerJson();
        tokenizer.normalizer = null;
        assert.equal(preTokenizerName(tokenizer), "qwen2", "Qwen2's regex without a normalizer, as train/tokenizer.py writes it");
        tokenizer.normalizer = { type: "NFKC" };
        assert.throws(() => preTokenizerName(tokenizer), CheckpointError, "Qwen2's regex with another normalizer is another pre-tokenizer");
    });
});

// The tokenizer.* GGUF entries that llama.cpp's convert_hf_to_gguf.py writes for a Dream or LLaDA checkpoint, read
// from the checkpoint's tokenizer files without Python. Each step follows the Python it stands for, named in its
// comment: conversion/dream.py and conversion/llada.py (get_vocab_base, set_vocab), conversion/base.py
// (_set_vocab_gpt2, get_vocab_base) and gguf-py/gguf/vocab.py (SpecialVocab), in the bundled llama.cpp tree.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Architecture } from "./architectures";
import { CheckpointError } from "./checkpointError";
import type { GgufKv, GgufKvValue } from "./gguf";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** gguf.TokenType. */
const NORMAL = 1;
const CONTROL = 3;
const USER_DEFINED = 4;
const UNUSED = 5;

// ---------------------------------------------------------------------------------------------------------------
// The pre-tokenizer name. The Python converter encodes a fixed text with the real tokenizer and looks the hash of the
// token ids up in a table (get_vocab_base_pre); without the tokenizer library we name the pre-tokenizer from the
// configuration that makes it split as it does: tokenizer.json's normalizer and pre_tokenizer.

/** A byte-level BPE pre-tokenizer as tokenizer.json describes it: a normalizer, one Split regex, then ByteLevel. */
export interface PreTokenizerRule {
    /** tokenizer.ggml.pre, as llama.cpp's src/llama-vocab.cpp knows it. */
    name: string;
    /** The normalizer's type, or null for none. */
    normalizer: string | null;
    /** The Split pre-tokenizer's regex, exactly as tokenizer.json writes it. */
    regex: string;
    /** Which checkpoints use it, and how that is known. */
    source: string;
}

/** Qwen2's pre-tokenizer regex (Qwen/Qwen2.5-7B tokenizer.json), which llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN2 implements. */
const QWEN2_REGEX = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
/** The Ling (BailingMoE) tokenizer's regex, quoted in llama.cpp's src/llama-vocab.cpp for LLAMA_VOCAB_PRE_TYPE_BAILINGMOE. */
const LING_REGEX = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

export const PRE_TOKENIZERS: readonly PreTokenizerRule[] = [
    {
        name: "qwen2",
        normalizer: "NFC",
        regex: QWEN2_REGEX,
        source: "Qwen2/Qwen2.5's tokenizer (Dream, Dream-Coder, DiffuCoder, DreamOn); the converter's table maps Qwen1.5's hash to qwen2"
    },
    {
        name: "qwen2",
        normalizer: null,
        regex: QWEN2_REGEX,
        source: "this project's own tokenizer (train/tokenizer.py; train/export.py converts it as qwen2): llama.cpp's qwen2 splits by the regex and normalizes nothing"
    },
    {
        name: "bailingmoe",
        normalizer: null,
        regex: LING_REGEX,
        source: "inclusionAI's Ling tokenizer (126464 tokens, <|endoftext|> 126081), which LLaDA-8B shares; the converter's table maps Ling-lite's hash to bailingmoe"
    }
];

function isObject(value: unknown): value is JsonObject {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** One line saying how tokenizer.json splits text, for the error that names an unknown pre-tokenizer. */
export function describePreTokenizer(tokenizer: JsonObject): string {
    const normalizer = isObject(tokenizer.normalizer) ? String(tokenizer.normalizer.type) : "none";
    return `normalizer ${normalizer}, pre_tokenizer ${JSON.stringify(tokenizer.pre_tokenizer ?? null)}`;
}

/** The rule whose configuration tokenizer.json has, or undefined. Split must keep what it matches (Isolated) and
 *  ByteLevel must only map bytes (no prefix space, no regex of its own), as in every tokenizer the table names. */
function matchingRule(tokenizer: JsonObject): PreTokenizerRule | undefined {
    const pre = tokenizer.pre_tokenizer;
    if (!isObject(pre) || pre.type !== "Sequence" || !Array.isArray(pre.pretokenizers) || pre.pretokenizers.length !== 2) return undefined;
    const [split, byteLevel] = pre.pretokenizers;
    if (!isObject(split) || split.type !== "Split" || split.behavior !== "Isolated" || split.invert !== false) return undefined;
    if (!isObject(split.pattern) || typeof split.pattern.Regex !== "string") return undefined;
    if (!isObject(byteLevel) || byteLevel.type !== "ByteLevel" || byteLevel.add_prefix_space !== false || byteLevel.use_regex !== false) return undefined;
    const normalizer = tokenizer.normalizer;
    if (normalizer !== null && normalizer !== undefined && !(isObject(normalizer) && Object.keys(normalizer).length === 1)) return undefined;
    const normalizerType = isObject(normalizer) ? normalizer.type : null;
    return PRE_TOKENIZERS.find((rule) => rule.regex === (split.pattern as JsonObject).Regex && rule.normalizer === normalizerType);
}

/** tokenizer.ggml.pre for the parsed tokenizer.json, or a CheckpointError naming the configuration found. */
export function preTokenizerName(tokenizer: JsonObject): string {
    const rule = matchingRule(tokenizer);
    if (rule === undefined) {
        throw new CheckpointError(
            `The tokenizer's pre-tokenizer (${describePreTokenizer(tokenizer)}) is not one this converter knows (${[...new Set(PRE_TOKENIZERS.map((r) => r.name))].join(", ")}), so it cannot name it for llama.cpp: convert this checkpoint with llama.cpp's convert_hf_to_gguf.py instead.`
        );
    }
    return rule.name;
}

/** Tokenizer classes of checkpoints that ship vocab.json and merges.txt without a tokenizer.json, and the
 *  pre-tokenizer their code implements. Dream's checkpoints load DreamTokenizer (tokenization_dream.py, a copy of
 *  transformers' Qwen2Tokenizer with Qwen2's pre-tokenizer regex). */
export const VOCAB_JSON_TOKENIZERS: Readonly<Record<string, string>> = { DreamTokenizer: "qwen2", Qwen2Tokenizer: "qwen2", Qwen2TokenizerFast: "qwen2" };

/** tokenizer.ggml.pre for a vocab.json checkpoint, from tokenizer_config.json's tokenizer_class. */
export function vocabJsonPreTokenizerName(tokenizerConfig: JsonObject | undefined): string {
    const name = tokenizerConfig?.tokenizer_class;
    const pre = typeof name === "string" ? VOCAB_JSON_TOKENIZERS[name] : undefined;
    if (pre === undefined) {
        throw new CheckpointError(
            `The checkpoint has no tokenizer.json and its tokenizer class (${JSON.stringify(name ?? null)} in tokenizer_config.json) is not one this converter knows (${Object.keys(VOCAB_JSON_TOKENIZERS).join(", ")}): convert it with llama.cpp's convert_hf_to_gguf.py instead.`
        );
    }
    return pre;
}

// ---------------------------------------------------------------------------------------------------------------
// The checkpoint's files.

/** The parsed JSON file `name` in `dir`, or undefined when there is none. */
async function readJson(dir: string, name: string): Promise<Json | undefined> {
    let text: string;
    try {
        text = await readFile(join(dir, name), "utf8");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new CheckpointError(`The checkpoint's ${name} could not be read (${(e as Error).message}): check the folder's permissions.`);
    }
    try {
        return JSON.parse(text) as Json;
    } catch (e) {
        throw new CheckpointError(`The checkpoint's ${name} is not valid JSON (${(e as Error).message}): download it again.`);
    }
}

async function readJsonObject(dir: string, name: string): Promise<JsonObject | undefined> {
    const value = await readJson(dir, name);
    if (value === undefined || isObject(value)) return value;
    throw new CheckpointError(`The checkpoint's ${name} is not a JSON object: download it again.`);
}

async function readText(dir: string, name: string): Promise<string | undefined> {
    try {
        return await readFile(join(dir, name), "utf8");
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new CheckpointError(`The checkpoint's ${name} could not be read (${(e as Error).message}): check the folder's permissions.`);
    }
}

function isTokenId(value: unknown): value is number {
    return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

// ---------------------------------------------------------------------------------------------------------------
// The token list: what transformers' AutoTokenizer gives for a tokenizer.json (get_vocab, get_added_vocab,
// added_tokens_decoder), then the converter's get_vocab_base.

interface AddedToken {
    id: number;
    content: string;
    special: boolean;
    normalized: boolean;
}

/** The added tokens as transformers 5 loads them: tokenizer.json's added_tokens (or, for a vocab.json checkpoint,
 *  added_tokens.json's), then tokenizer_config.json's added_tokens_decoder, whose special and normalized flags win
 *  for a token both list. */
function addedTokens(listed: { id: Json | undefined; entry: Json }[], where: string, tokenizerConfig: JsonObject | undefined): AddedToken[] {
    const added = new Map<string, AddedToken>();
    const add = (id: Json | undefined, entry: Json | undefined, from: string) => {
        if (!isObject(entry) || typeof entry.content !== "string" || !isTokenId(id)) {
            throw new CheckpointError(`An added token in ${from} has no text or no valid id (${JSON.stringify(entry)}): download the tokenizer files again.`);
        }
        const known = added.get(entry.content);
        // AddedToken's defaults: special false, normalized true unless special.
        const special = typeof entry.special === "boolean" ? entry.special : (known?.special ?? false);
        const normalized = typeof entry.normalized === "boolean" ? entry.normalized : (known?.normalized ?? !special);
        added.set(entry.content, { id: known?.id ?? id, content: entry.content, special, normalized });
    };
    for (const { id, entry } of listed) add(id, entry, where);
    const decoder = tokenizerConfig?.added_tokens_decoder;
    if (isObject(decoder)) {
        for (const [id, entry] of Object.entries(decoder)) add(/^\d+$/.test(id) ? Number(id) : undefined, entry, "tokenizer_config.json");
    }
    return [...added.values()];
}

interface TokenList {
    tokens: string[];
    types: number[];
}

/** The BPE model's vocabulary in tokenizer.json, token -> id. */
function modelVocab(tokenizer: JsonObject): JsonObject {
    const model = tokenizer.model;
    if (!isObject(model) || model.type !== "BPE" || !isObject(model.vocab)) {
        throw new CheckpointError(
            `The checkpoint's tokenizer.json holds a ${isObject(model) ? String(model.type) : "missing"} model, not the byte-level BPE that Dream and LLaDA use: check that the folder holds the checkpoint's own tokenizer.`
        );
    }
    return model.vocab;
}

/** Python's get_vocab_base for the architecture: every id below vocab_size, a gap as [PAD{i}] (UNUSED). `base` is
 *  the BPE vocabulary (token -> id) from `where`, `added` the added tokens. */
function tokenList(base: JsonObject, where: string, added: AddedToken[], hparams: Record<string, unknown>): TokenList {
    // get_vocab(): the model's vocabulary with the added tokens over it.
    const vocab = new Map<string, number>();
    for (const [token, id] of Object.entries(base)) {
        if (!isTokenId(id)) {
            throw new CheckpointError(
                `Token ${JSON.stringify(token)} in ${where} has the id ${JSON.stringify(id)}, which is not a token id: download it again.`
            );
        }
        vocab.set(token, id);
    }
    for (const token of added) vocab.set(token.content, token.id);

    let vocabSize = vocab.size;
    if ("vocab_size" in hparams) {
        if (!isTokenId(hparams.vocab_size))
            throw new CheckpointError(`config.json's vocab_size is ${JSON.stringify(hparams.vocab_size)}, not a token count: download it again.`);
        vocabSize = hparams.vocab_size;
    }
    const reverse = new Map<number, string>();
    for (const [token, id] of vocab) {
        if (id >= vocabSize) {
            throw new CheckpointError(
                `The tokenizer's token ${JSON.stringify(token)} has the id ${id}, beyond the ${vocabSize} tokens config.json's vocab_size gives the model: the tokenizer files do not belong to this checkpoint; download them again.`
            );
        }
        const other = reverse.get(id);
        if (other !== undefined) {
            throw new CheckpointError(
                `The tokenizer gives the id ${id} to both ${JSON.stringify(other)} and ${JSON.stringify(token)}: download the tokenizer files again.`
            );
        }
        reverse.set(id, token);
    }

    const addedByContent = new Map(added.map((t) => [t.content, t]));
    const addedById = new Map(added.map((t) => [t.id, t]));
    const tokens: string[] = new Array(vocabSize);
    const types: number[] = new Array(vocabSize);
    for (let i = 0; i < vocabSize; i++) {
        let token = reverse.get(i);
        let type = NORMAL;
        if (token === undefined) {
            token = `[PAD${i}]`;
            type = UNUSED;
        } else if (addedByContent.has(token)) {
            const decoded = addedById.get(i);
            // dream.py's and llada.py's get_vocab_base: special added tokens are CONTROL, the others USER_DEFINED.
            type = decoded === undefined || decoded.special ? CONTROL : USER_DEFINED;
        }
        tokens[i] = token;
        types[i] = type;
    }
    return { tokens, types };
}

// ---------------------------------------------------------------------------------------------------------------
// gguf-py's SpecialVocab(dir, load_merges=True): merges, special token ids, add_*_token flags, chat template and
// normalizer flags, in the order its add_to_gguf writes them.

/** Python's truth value of a JSON value. */
function truthy(value: Json | undefined): boolean {
    if (value === undefined || value === null || value === false || value === 0 || value === "") return false;
    if (Array.isArray(value)) return value.length > 0;
    if (isObject(value)) return Object.keys(value).length > 0;
    return true;
}

/** Python's == on JSON values (dict key order aside). */
function same(a: Json | undefined, b: Json | undefined): boolean {
    return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

const SPECIAL_TOKEN_KEYS: Record<string, string> = {
    bos: "tokenizer.ggml.bos_token_id",
    eos: "tokenizer.ggml.eos_token_id",
    unk: "tokenizer.ggml.unknown_token_id",
    sep: "tokenizer.ggml.seperator_token_id",
    pad: "tokenizer.ggml.padding_token_id",
    cls: "tokenizer.ggml.cls_token_id",
    mask: "tokenizer.ggml.mask_token_id",
    eot: "tokenizer.ggml.eot_token_id",
    eom: "tokenizer.ggml.eom_token_id"
};
/** GGUFWriter has add_add_{bos,eos,sep}_token; SpecialVocab skips the other flags. */
const ADD_TOKEN_KEYS: Record<string, string> = {
    bos: "tokenizer.ggml.add_bos_token",
    eos: "tokenizer.ggml.add_eos_token",
    sep: "tokenizer.ggml.add_sep_token"
};

class SpecialVocab {
    merges: string[] = [];
    readonly ids = new Map<string, number>();
    readonly add = new Map<string, boolean>();
    chatTemplate: Json | undefined;
    lowercase: boolean | undefined;
    stripAccents: boolean | undefined;
    private types = ["bos", "eos", "unk", "sep", "pad", "cls", "mask"];

    constructor(
        private readonly dir: string,
        private readonly tokenizer: JsonObject,
        private readonly tokenizerConfig: JsonObject | undefined,
        private readonly config: JsonObject
    ) {}

    async load(): Promise<void> {
        await this.fromTokenizerJson();
        this.fromConfigJson();
        if (this.merges.length === 0) await this.mergesTxt();
    }

    private setId(type: string, id: Json | undefined): void {
        // Python's isinstance(tid, int): a bool is an int too.
        const value = typeof id === "boolean" ? Number(id) : id;
        if (typeof value !== "number" || !Number.isInteger(value)) return;
        if (value < 0) throw new CheckpointError(`The tokenizer's ${type} token has the id ${value}, which is negative: download the tokenizer files again.`);
        if (!this.ids.has(type)) this.ids.set(type, value);
    }

    private parseNormalizer(normalizer: JsonObject): void {
        if (normalizer.type === "Lowercase") this.lowercase = true;
        else if (normalizer.type === "StripAccents") this.stripAccents = true;
        else if (normalizer.type === "BertNormalizer") {
            if ("lowercase" in normalizer) this.lowercase = normalizer.lowercase as boolean;
            if ("strip_accents" in normalizer) this.stripAccents = normalizer.strip_accents as boolean;
        } else if (normalizer.type === "Sequence" && Array.isArray(normalizer.normalizers)) {
            for (const n of normalizer.normalizers) if (isObject(n)) this.parseNormalizer(n);
        }
    }

    private loadMerges(): void {
        const model = this.tokenizer.model;
        const merges = isObject(model) ? model.merges : undefined;
        if (!Array.isArray(merges) || merges.length === 0) return;
        if (merges.every((m) => typeof m === "string")) {
            this.merges = merges as string[];
            return;
        }
        if (merges.every((m) => Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string")) {
            // The pair form (transformers 4.45 and later) allows spaces inside a part; they are written as U+0120.
            this.merges = (merges as string[][]).map((pair) => pair.map((part) => part.replaceAll(" ", "\u0120")).join(" "));
            return;
        }
        throw new CheckpointError("The checkpoint's tokenizer.json has merges in a form that is neither strings nor pairs of strings: download it again.");
    }

    private async fromTokenizerJson(): Promise<void> {
        const tokenizer = this.tokenizer;
        this.loadMerges();
        if (isObject(tokenizer.normalizer)) this.parseNormalizer(tokenizer.normalizer);
        const added = Array.isArray(tokenizer.added_tokens) ? tokenizer.added_tokens : [];
        const tc = this.tokenizerConfig;
        let bos = tc?.bos_token;
        let cls = tc?.cls_token;
        let eos = tc?.eos_token;
        let sep = tc?.sep_token;
        if (!truthy(bos) && truthy(cls) && truthy(tc)) (tc as JsonObject).bos_token = bos = cls as Json;
        if (!truthy(eos) && truthy(sep) && truthy(tc)) (tc as JsonObject).eos_token = eos = sep as Json;
        const post = tokenizer.post_processor;
        if (truthy(post) && isObject(post)) {
            const processors = Array.isArray(post.processors) ? post.processors : [post];
            for (const processor of processors) {
                if (!isObject(processor)) continue;
                if (processor.type === "RobertaProcessing") {
                    this.add.set("bos", true);
                    this.add.set("eos", true);
                    this.add.set("sep", true);
                    if (!truthy(cls) && truthy(tc)) {
                        cls = Array.isArray(processor.cls) ? processor.cls[0] : bos;
                        (tc as JsonObject).cls_token = cls as Json;
                    }
                    if (!truthy(sep) && truthy(tc)) {
                        sep = Array.isArray(processor.sep) ? processor.sep[0] : eos;
                        (tc as JsonObject).sep_token = sep as Json;
                    }
                    continue;
                }
                if (processor.type === "TemplateProcessing") {
                    ({ bos, cls, eos, sep } = this.templateProcessing(processor, { bos, cls, eos, sep }));
                }
            }
        }
        if (!truthy(tc)) return;
        const config = tc as JsonObject;
        this.chatTemplate = await this.chatTemplateOf(config);
        for (const type of this.types) {
            const addEntry = config[`add_${type}_token`];
            if (typeof addEntry === "boolean") this.add.set(type, addEntry);
            const entry = config[`${type}_token`];
            let content: string;
            if (typeof entry === "string") content = entry;
            else if (isObject(entry) && typeof entry.content === "string") content = entry.content;
            else continue;
            // The first of tokenizer.json's added tokens with that text.
            const match = added.find((a) => isObject(a) && a.content === content);
            this.setId(type, isObject(match) ? match.id : undefined);
        }
    }

    /** SpecialVocab's crude reading of a TemplateProcessing post-processor: whether BOS/EOS/SEP are added. */
    private templateProcessing(
        processor: JsonObject,
        tokens: { bos: Json | undefined; cls: Json | undefined; eos: Json | undefined; sep: Json | undefined }
    ): { bos: Json | undefined; cls: Json | undefined; eos: Json | undefined; sep: Json | undefined } {
        let { bos, cls, eos, sep } = tokens;
        const tc = this.tokenizerConfig;
        const specialId = (item: Json | undefined): Json | undefined => {
            const special = isObject(item) ? item.SpecialToken : undefined;
            return isObject(special) ? special.id : undefined;
        };
        const single = Array.isArray(processor.single) ? processor.single : [];
        let pair = Array.isArray(processor.pair) ? processor.pair : [];
        let first: Json | undefined;
        let last: Json | undefined;
        if (single.length > 1) {
            first = specialId(single[0]);
            if (truthy(first)) {
                if (!truthy(tc)) bos = first;
                else if (!same(first, bos) && !same(first, cls)) {
                    if (!truthy(bos)) (tc as JsonObject).bos_token = bos = first as Json;
                    if (!truthy(cls)) (tc as JsonObject).cls_token = cls = first as Json;
                }
                this.add.set("bos", same(first, bos) || same(first, cls));
            }
            last = specialId(single[single.length - 1]);
            if (truthy(last)) {
                if (!truthy(tc)) eos = last;
                else if (!same(last, eos)) {
                    const config = tc as JsonObject;
                    if (!this.types.includes("eot")) {
                        this.types = [...this.types, "eot"];
                        config.eot_token = eos as Json;
                    } else if (!this.types.includes("eom")) {
                        this.types = [...this.types, "eom"];
                        config.eom_token = eos as Json;
                    }
                    config.eos_token = eos = last as Json;
                }
                this.add.set("eos", same(last, eos));
            }
        }
        if (pair.length > 0) {
            const start = truthy(first) && same(specialId(pair[0]), first) ? 1 : 0;
            const stop = truthy(last) && same(specialId(pair[pair.length - 1]), last) ? pair.length - 1 : pair.length;
            pair = pair.slice(start, stop);
            if (pair.length > 0) {
                const sequenceId = (item: Json | undefined) => {
                    const sequence = isObject(item) ? item.Sequence : undefined;
                    return isObject(sequence) ? sequence.id : undefined;
                };
                const a = sequenceId(pair[0]);
                const b = sequenceId(pair[pair.length - 1]);
                const middle = pair.slice(1, -1);
                if (a === "A" && b === "B" && middle.length > 0) {
                    let addSep = false;
                    const entry = specialId(middle[0]);
                    if (truthy(entry) && (same(entry, sep) || same(entry, eos)) && !truthy(last)) addSep = true;
                    if (middle.length === 2) {
                        const second = specialId(middle[1]);
                        if (truthy(second) && (same(second, sep) || same(second, eos))) addSep = true;
                    }
                    this.add.set("sep", addSep);
                    if (addSep && !truthy(sep) && truthy(tc)) (tc as JsonObject).sep_token = eos as Json;
                }
            }
        }
        return { bos, cls, eos, sep };
    }

    /** tokenizer_config.json's chat_template, or chat_template.jinja (with additional_chat_templates/), or chat_template.json's. */
    private async chatTemplateOf(config: JsonObject): Promise<Json | undefined> {
        let alternative: Json | undefined;
        const jinja = await readText(this.dir, "chat_template.jinja");
        if (jinja !== undefined) {
            alternative = jinja;
            let extra: string[] = [];
            try {
                extra = (await readdir(join(this.dir, "additional_chat_templates"))).filter((f) => f.endsWith(".jinja")).sort();
            } catch {
                // No additional templates.
            }
            if (extra.length > 0) {
                const list: Json[] = [{ name: "default", template: jinja }];
                for (const file of extra) {
                    list.push({ name: file.slice(0, -".jinja".length), template: (await readText(join(this.dir, "additional_chat_templates"), file)) ?? "" });
                }
                alternative = list;
            }
        } else {
            const json = await readJsonObject(this.dir, "chat_template.json");
            if (json !== undefined) alternative = json.chat_template;
        }
        const template = "chat_template" in config ? config.chat_template : alternative;
        if (template === undefined || template === null || typeof template === "string" || Array.isArray(template)) return template;
        return undefined; // SpecialVocab ignores a chat_template of another type.
    }

    private fromConfigJson(): void {
        const text = isObject(this.config.text_config) ? this.config.text_config : undefined;
        for (const type of this.types) {
            let id = this.config[`${type}_token_id`];
            if ((id === undefined || id === null) && text !== undefined) id = text[`${type}_token_id`];
            this.setId(type, id);
        }
    }

    private async mergesTxt(): Promise<void> {
        const text = await readText(this.dir, "merges.txt");
        if (text === undefined) return;
        const lines = text.split(/\r\n|\r|\n/);
        if (lines.length > 0 && lines[0].trim().startsWith("#")) lines.shift();
        const merges: string[] = [];
        for (const raw of lines) {
            const line = raw.trim();
            if (line === "") continue;
            const parts = line.split(/\s+/);
            if (parts.length === 2) merges.push(`${parts[0]} ${parts[1]}`);
        }
        this.merges = merges;
    }

    /** add_to_gguf's entries, in its order. */
    entries(): GgufKv[] {
        const out: GgufKv[] = [];
        if (this.merges.length > 0) out.push({ key: "tokenizer.ggml.merges", value: { type: "array", itemType: "string", value: this.merges } });
        for (const [type, id] of this.ids) {
            const key = SPECIAL_TOKEN_KEYS[type];
            if (key !== undefined) out.push({ key, value: { type: "u32", value: id } });
        }
        for (const [type, value] of this.add) {
            const key = ADD_TOKEN_KEYS[type];
            if (key !== undefined) out.push({ key, value: { type: "bool", value } });
        }
        out.push(...chatTemplateEntries(this.chatTemplate));
        if (this.lowercase !== undefined) out.push({ key: "tokenizer.ggml.normalizer.lowercase", value: { type: "bool", value: this.lowercase } });
        if (this.stripAccents !== undefined) {
            out.push({ key: "tokenizer.ggml.normalizer.strip_accents", value: { type: "bool", value: this.stripAccents } });
        }
        return out;
    }
}

/** GGUFWriter.add_chat_template: a string, or a list of named templates ("default" becomes tokenizer.chat_template). */
function chatTemplateEntries(template: Json | undefined): GgufKv[] {
    if (template === undefined || template === null) return [];
    if (typeof template === "string") return [{ key: "tokenizer.chat_template", value: { type: "string", value: template } }];
    const out: GgufKv[] = [];
    const names = new Set<string>();
    let fallback: string | undefined;
    for (const choice of template as Json[]) {
        if (!isObject(choice)) continue;
        const name = String(choice.name ?? "").replace(/[^A-Za-z0-9]/g, "_");
        const text = choice.template;
        if (name === "" || typeof text !== "string") continue;
        if (name === "default") fallback = text;
        else {
            names.add(name);
            out.push({ key: `tokenizer.chat_template.${name}`, value: { type: "string", value: text } });
        }
    }
    // Python lists a set here, in no fixed order; llama.cpp reads the names as a set too.
    if (names.size > 0) out.push({ key: "tokenizer.chat_templates", value: { type: "array", itemType: "string", value: [...names].sort() } });
    if (fallback !== undefined) out.push({ key: "tokenizer.chat_template", value: { type: "string", value: fallback } });
    return out;
}

// ---------------------------------------------------------------------------------------------------------------

/** Sets `key` to `value` where it already is, or appends it: GGUFWriter overwrites a duplicated key in place. */
function put(entries: GgufKv[], key: string, value: GgufKvValue): void {
    const at = entries.findIndex((e) => e.key === key);
    if (at >= 0) entries[at] = { key, value };
    else entries.push({ key, value });
}

/** DreamOn's tokens (holes of unknown length): a mask predicted as `<|expand|>` becomes two masks, one predicted as
 *  `<|delete|>` is removed with the masks after it in its hole. A checkpoint whose tokenizer adds both gets their ids
 *  declared under these keys (uint32), which the decoder reads. */
export const DREAMON_TOKENS = [
    { content: "<|expand|>", key: "diffusion.expand_token_id" },
    { content: "<|delete|>", key: "diffusion.delete_token_id" }
] as const;

/** The diffusion.* entries for DreamOn's tokens among the added tokens: both keys when both tokens are there, else none. */
function dreamOnEntries(added: AddedToken[]): GgufKv[] {
    const ids = DREAMON_TOKENS.map((t) => added.find((a) => a.content === t.content)?.id);
    if (ids.some((id) => id === undefined)) return [];
    return DREAMON_TOKENS.map((t, i) => ({ key: t.key, value: { type: "u32", value: ids[i]! } }));
}

/** The tokenizer.* entries llama.cpp's convert_hf_to_gguf.py writes for this checkpoint, in its order, then the
 *  DreamOn token ids (DREAMON_TOKENS) where the tokenizer adds those tokens, which this project's run of the Python
 *  converter (train/hf_to_gguf.py) writes in the same place.
 *  `dir` holds config.json and the tokenizer files; `hparams` is the parsed config.json. Throws CheckpointError
 *  (a sentence) for a tokenizer it cannot convert (unknown pre-tokenizer, missing files, ids out of range).
 *
 *  For "dream" (when config.json has a mask_token_id) the first entry, tokenizer.ggml.mask_token_id,
 *  is the one set_gguf_parameters writes: in the converter's file it comes before general.quantization_version, among
 *  the architecture's entries, and the rest follow that key. */
export async function vocabMetadata(dir: string, hparams: Record<string, unknown>, arch: Architecture): Promise<GgufKv[]> {
    if (arch === "dream" && (await readText(dir, "tokenizer.model")) !== undefined) {
        // DreamModel.set_vocab tries a SentencePiece vocabulary first.
        throw new CheckpointError(
            "The checkpoint has a SentencePiece tokenizer.model, which this converter does not read: convert it with llama.cpp's convert_hf_to_gguf.py instead."
        );
    }
    const tokenizerConfig = await readJsonObject(dir, "tokenizer_config.json");
    const tokenizer = await readJsonObject(dir, "tokenizer.json");
    let base: JsonObject;
    let where: string;
    let addedFrom: string;
    let listed: { id: Json | undefined; entry: Json }[];
    let pre: string;
    if (tokenizer !== undefined) {
        base = modelVocab(tokenizer);
        where = addedFrom = "tokenizer.json";
        const list = tokenizer.added_tokens ?? [];
        if (!Array.isArray(list)) throw new CheckpointError("The checkpoint's tokenizer.json has an added_tokens that is not a list: download it again.");
        listed = list.map((entry) => ({ id: isObject(entry) ? entry.id : undefined, entry }));
        pre = preTokenizerName(tokenizer);
    } else {
        // A slow tokenizer's files (Dream's layout): vocab.json, merges.txt, added_tokens.json.
        const vocabJson = await readJsonObject(dir, "vocab.json");
        if (vocabJson === undefined || (await readText(dir, "merges.txt")) === undefined) {
            throw new CheckpointError(
                "The checkpoint has neither a tokenizer.json nor a vocab.json with its merges.txt, which the converter reads the vocabulary from: download the checkpoint's tokenizer files again."
            );
        }
        base = vocabJson;
        where = "vocab.json";
        addedFrom = "added_tokens.json";
        listed = Object.entries((await readJsonObject(dir, "added_tokens.json")) ?? {}).map(([content, id]) => ({ id, entry: { content } }));
        pre = vocabJsonPreTokenizerName(tokenizerConfig);
    }
    const entries: GgufKv[] = [];
    if (arch === "dream" && hparams.mask_token_id !== undefined && hparams.mask_token_id !== null) {
        if (!isTokenId(hparams.mask_token_id))
            throw new CheckpointError(`config.json's mask_token_id is ${JSON.stringify(hparams.mask_token_id)}, not a token id: download it again.`);
        entries.push({ key: "tokenizer.ggml.mask_token_id", value: { type: "u32", value: hparams.mask_token_id } });
    }

    // _set_vocab_gpt2.
    const added = addedTokens(listed, addedFrom, tokenizerConfig);
    const { tokens, types } = tokenList(base, where, added, hparams);
    entries.push({ key: "tokenizer.ggml.model", value: { type: "string", value: "gpt2" } });
    entries.push({ key: "tokenizer.ggml.pre", value: { type: "string", value: pre } });
    entries.push({ key: "tokenizer.ggml.tokens", value: { type: "array", itemType: "string", value: tokens } });
    entries.push({ key: "tokenizer.ggml.token_type", value: { type: "array", itemType: "i32", value: types } });
    // SpecialVocab reads config.json itself; hparams is that file parsed.
    // Without a tokenizer.json it takes the merges from merges.txt and the special token ids from config.json only.
    const special = new SpecialVocab(dir, tokenizer ?? {}, tokenizerConfig, hparams as JsonObject);
    await special.load();
    for (const entry of special.entries()) put(entries, entry.key, entry.value);
    // LLaDAModel.set_vocab.
    if (arch === "llada") put(entries, "tokenizer.ggml.add_bos_token", { type: "bool", value: true });
    for (const entry of dreamOnEntries(added)) put(entries, entry.key, entry.value);
    return entries;
}

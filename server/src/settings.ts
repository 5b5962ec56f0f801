// A typed view of the `dreamCoder.*` settings, with their defaults. The client's package.json declares the
// same keys under contributes.configuration; the CLI builds one of these from its flags.
import type { Algorithm, CacheMode } from "./runtime/native";

export interface Settings {
    /** A GGUF path or a catalog id; empty: no model set yet. */
    model: string;
    /** Where catalog models are downloaded; empty: ~/.cache/dream-coder/models. */
    modelsDirectory: string;
    /** CPU threads for llama.cpp; 0: chosen from the machine (at most 8). */
    threads: number;
    /** Layers offloaded to the GPU in CUDA/Metal/Vulkan builds; 0 keeps everything on the CPU. */
    gpuLayers: number;
    /** Denoising steps per request at most; 0: one step per generated token. */
    steps: number;
    algorithm: Algorithm;
    temperature: number;
    topP: number;
    /** none: exact (every step recomputes the window); prefix / dual: Fast-dLLM's KV caches, block by block. */
    cache: CacheMode;
    /**
     * Cached modes: keep each document's cache (the last four documents) after a request, so that the next
     * request re-decodes only what changed since, not the whole window. Approximate, like the dual cache.
     */
    cacheReuse: boolean;
    /** Tokens per block in the cached modes. */
    blockLength: number;
    /** Reveal every masked token of the block above this confidence in one step (0: off, one token a step). */
    confidenceThreshold: number;
    /** Tokens of document text shown to the model around the cursor or selection. */
    contextTokens: number;
    holes: {
        marker: string;
        /** Tokens for a marker without a size (`???` rather than `???:40`). */
        defaultTokens: number;
    };
    inlineCompletion: {
        /** Per language id, with "*" for the rest: like github.copilot.enable. */
        enable: Record<string, boolean>;
        /** The hole for a completion in the middle of a line, and at an empty line. */
        lineTokens: number;
        blockTokens: number;
        debounceMs: number;
    };
    sketch: { tokens: number };
    rewrite: {
        /** "instruct": the model rewrites the selection; "remask": keep likely tokens, re-denoise the others (experimental). */
        mode: "instruct" | "remask";
        remaskRounds: number;
        /** A token is re-masked when the model gives it less than this probability. */
        remaskBelow: number;
    };
}

export const DEFAULT_SETTINGS: Settings = {
    model: "",
    modelsDirectory: "",
    threads: 0,
    gpuLayers: 0,
    steps: 0,
    algorithm: "entropy",
    temperature: 0,
    topP: 1,
    cache: "dual",
    cacheReuse: true,
    blockLength: 32,
    confidenceThreshold: 0,
    contextTokens: 1024,
    holes: { marker: "???", defaultTokens: 16 },
    inlineCompletion: { enable: { "*": true, markdown: false, plaintext: false }, lineTokens: 16, blockTokens: 48, debounceMs: 75 },
    sketch: { tokens: 192 },
    rewrite: { mode: "instruct", remaskRounds: 3, remaskBelow: 0.05 }
};

const ALGORITHMS: readonly Algorithm[] = ["origin", "maskgit_plus", "topk_margin", "entropy"];

/** A setting's value that is not valid: what it is, what was expected, and the default used instead. */
export interface SettingProblem {
    /** e.g. `dreamCoder.threads: 100000 is not valid (a whole number from 0 to 256)` */
    message: string;
    fallback: unknown;
}

/** A value test, with what it expects in words. */
interface Rule {
    ok: (v: unknown) => boolean;
    expected: string;
    /** A whole number above this is not refused but lowered to it, and reported with why more is of no use. */
    atMost?: { max: number; why: string };
}

/**
 * Settings from whatever the editor sent: known keys of the right type override the defaults; a wrong value is
 * reported in `problems` (the server logs it and keeps the default, so one typo never stops it; the CLI stops).
 */
export function readSettings(raw: unknown): { settings: Settings; problems: SettingProblem[] } {
    const problems: SettingProblem[] = [];
    const src = isObject(raw) ? raw : {};
    const pick = <T>(obj: Record<string, unknown>, key: string, fallback: T, rule: Rule, path: string): T => {
        const v = obj[key];
        if (v === undefined || v === null) return fallback;
        if (!rule.ok(v)) {
            if (rule.atMost && Number.isInteger(v) && (v as number) > rule.atMost.max) {
                problems.push({ message: `dreamCoder.${path}: ${v} is more than ${rule.atMost.max} (${rule.atMost.why})`, fallback: rule.atMost.max });
                return rule.atMost.max as T;
            }
            problems.push({ message: `dreamCoder.${path}: ${JSON.stringify(v)} is not valid (${rule.expected})`, fallback });
            return fallback;
        }
        return v as T;
    };
    const str: Rule = { ok: (v) => typeof v === "string", expected: "text" };
    const int = (min: number, max: number): Rule => ({
        ok: (v) => Number.isInteger(v) && (v as number) >= min && (v as number) <= max,
        expected: `a whole number from ${min} to ${max}`
    });
    // Sizes of work done per keystroke or per step: more only makes a request slower, with nothing gained.
    const intAtMost = (min: number, max: number, why: string): Rule => ({ ...int(min, max), atMost: { max, why } });
    const num = (min: number, max: number): Rule => ({ ok: (v) => typeof v === "number" && v >= min && v <= max, expected: `a number from ${min} to ${max}` });
    const oneOf = (values: readonly string[]): Rule => ({ ok: (v) => values.includes(v as string), expected: `one of ${values.join(", ")}` });
    const section = (key: string) => (isObject(src[key]) ? (src[key] as Record<string, unknown>) : {});
    const d = DEFAULT_SETTINGS;
    const holes = section("holes");
    const inline = section("inlineCompletion");
    const sketch = section("sketch");
    const rewrite = section("rewrite");
    const settings: Settings = {
        model: pick(src, "model", d.model, str, "model").trim(),
        modelsDirectory: pick(src, "modelsDirectory", d.modelsDirectory, str, "modelsDirectory"),
        threads: pick(src, "threads", d.threads, int(0, 256), "threads"),
        gpuLayers: pick(src, "gpuLayers", d.gpuLayers, int(-1, 1000), "gpuLayers"),
        steps: pick(src, "steps", d.steps, int(0, 4096), "steps"),
        algorithm: pick(src, "algorithm", d.algorithm, oneOf(ALGORITHMS), "algorithm"),
        temperature: pick(src, "temperature", d.temperature, num(0, 10), "temperature"),
        topP: pick(src, "topP", d.topP, num(0.01, 1), "topP"),
        cache: pick(src, "cache", d.cache, oneOf(["none", "prefix", "dual"]), "cache"),
        cacheReuse: pick(src, "cacheReuse", d.cacheReuse, { ok: (v) => typeof v === "boolean", expected: "true or false" }, "cacheReuse"),
        blockLength: pick(src, "blockLength", d.blockLength, intAtMost(1, 256, "each cached step recomputes its whole block: a longer one makes every step as slow as a full pass"), "blockLength"),
        confidenceThreshold: pick(src, "confidenceThreshold", d.confidenceThreshold, num(0, 1), "confidenceThreshold"),
        contextTokens: pick(src, "contextTokens", d.contextTokens, int(64, 131072), "contextTokens"),
        holes: {
            marker: pick(holes, "marker", d.holes.marker, { ok: (v) => typeof v === "string" && /^[^\s\\]+$/.test(v), expected: "one or more characters, no spaces or backslashes" }, "holes.marker"),
            defaultTokens: pick(holes, "defaultTokens", d.holes.defaultTokens, int(1, 4096), "holes.defaultTokens")
        },
        inlineCompletion: {
            enable: pick(inline, "enable", d.inlineCompletion.enable, { ok: (v) => isObject(v) && Object.values(v).every((b) => typeof b === "boolean"), expected: "an object of language ids to true or false" }, "inlineCompletion.enable"),
            lineTokens: pick(inline, "lineTokens", d.inlineCompletion.lineTokens, intAtMost(1, 128, "a suggestion in the middle of a line ends with the line"), "inlineCompletion.lineTokens"),
            blockTokens: pick(inline, "blockTokens", d.inlineCompletion.blockTokens, intAtMost(1, 512, "ghost text is decoded on every pause in typing; Sketch Function Body draws longer code"), "inlineCompletion.blockTokens"),
            debounceMs: pick(inline, "debounceMs", d.inlineCompletion.debounceMs, int(0, 5000), "inlineCompletion.debounceMs")
        },
        sketch: { tokens: pick(sketch, "tokens", d.sketch.tokens, int(1, 4096), "sketch.tokens") },
        rewrite: {
            mode: pick(rewrite, "mode", d.rewrite.mode, oneOf(["instruct", "remask"]), "rewrite.mode"),
            remaskRounds: pick(rewrite, "remaskRounds", d.rewrite.remaskRounds, int(1, 16), "rewrite.remaskRounds"),
            remaskBelow: pick(rewrite, "remaskBelow", d.rewrite.remaskBelow, num(0, 1), "rewrite.remaskBelow")
        }
    };
    // Rules between settings, checked here so that the message names the settings (the decoder refuses the
    // same with its own parameter names).
    if (settings.algorithm === "origin" && settings.confidenceThreshold > 0) {
        problems.push({
            message: `dreamCoder.confidenceThreshold: ${settings.confidenceThreshold} needs an algorithm that ranks by confidence (maskgit_plus, topk_margin or entropy), not dreamCoder.algorithm "origin"; using 0`,
            fallback: 0
        });
        settings.confidenceThreshold = 0;
    }
    return { settings, problems };
}

/** Whether inline completion is on for a language: its own entry, else "*", else on. */
/** Whether inline completions are on for a language, from the per-language switch (`*` for the rest). The client's
 * status menu reads it too. */
export function inlineEnabled(enable: Record<string, boolean>, languageId: string): boolean {
    return enable[languageId] ?? enable["*"] ?? true;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

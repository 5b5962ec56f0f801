// A typed view of the `dreamCoder.*` settings. They are declared once, in package.json's
// contributes.configuration (what VS Code's Settings editor shows): each one's type, default, range, choices and
// pattern are read from there, for the defaults below and for checking what the editor or the CLI sends.
// test/server/settings.test.ts checks that every declared key is read here and listed in the README.
import manifest from "../package.json";
import type { Algorithm, CacheMode } from "./decoding";

export interface Settings {
    /** A GGUF path or a catalog id; empty: no model set yet. */
    model: string;
    /** Where catalog models are downloaded; empty: ~/.cache/dream-coder/models (Windows: %LOCALAPPDATA%\dream-coder\models). */
    modelsDirectory: string;
    /** CPU threads for llama.cpp; 0: every core (at most 8), fewer while other programs keep cores busy. */
    threads: number;
    /** Layers offloaded to the GPU: "auto" (as many as fit), a count, -1 all, 0 none. */
    gpuLayers: number | "auto";
    /** "auto" (a GPU when a GPU runtime finds one), "cpu", or "VulkanN" (that Vulkan device, lavapipe included). */
    device: string;
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
        /** With a model that has expand and delete tokens: the masks a hole of no set size starts from (0: fixed). */
        startTokens: number;
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

/** A setting's declaration in package.json (the parts this file reads). */
type DeclaredType = "string" | "integer" | "number" | "boolean" | "object";
interface Declared {
    /** Several types: a value of any of them (gpuLayers: "auto" or a count). */
    type: DeclaredType | DeclaredType[];
    description?: string;
    markdownDescription?: string;
    default: unknown;
    minimum?: number;
    maximum?: number;
    enum?: string[];
    pattern?: string;
    patternErrorMessage?: string;
    additionalProperties?: { type: string };
}

/** Every declared setting, by its key without the `dreamCoder.` prefix. */
export const DECLARED: Readonly<Record<string, Declared>> = Object.fromEntries(
    manifest.contributes.configuration.flatMap((group) => Object.entries(group.properties)).map(([key, d]) => [key.replace(/^dreamCoder\./, ""), d as Declared])
);

function declared(key: string): Declared {
    const d = DECLARED[key];
    if (!d) throw new Error(`dreamCoder.${key} is not declared in package.json`);
    return d;
}
const def = <T>(key: string): T => structuredClone(declared(key).default) as T;

/** The settings object, each value taken by its declared key ("holes.marker"): its shape written once. */
function settingsFrom(value: <T>(key: string) => T): Settings {
    return {
        model: value("model"),
        modelsDirectory: value("modelsDirectory"),
        threads: value("threads"),
        gpuLayers: value("gpuLayers"),
        device: value("device"),
        steps: value("steps"),
        algorithm: value<Algorithm>("algorithm"),
        temperature: value("temperature"),
        topP: value("topP"),
        cache: value<CacheMode>("cache"),
        cacheReuse: value("cacheReuse"),
        blockLength: value("blockLength"),
        confidenceThreshold: value("confidenceThreshold"),
        contextTokens: value("contextTokens"),
        holes: { marker: value("holes.marker"), defaultTokens: value("holes.defaultTokens"), startTokens: value("holes.startTokens") },
        inlineCompletion: {
            enable: value("inlineCompletion.enable"),
            lineTokens: value("inlineCompletion.lineTokens"),
            blockTokens: value("inlineCompletion.blockTokens"),
            debounceMs: value("inlineCompletion.debounceMs")
        },
        sketch: { tokens: value("sketch.tokens") },
        rewrite: { mode: value("rewrite.mode"), remaskRounds: value("rewrite.remaskRounds"), remaskBelow: value("rewrite.remaskBelow") }
    };
}

export const DEFAULT_SETTINGS: Settings = settingsFrom(def);

/** A setting's value that is not valid: what it is, what was expected, and the default used instead. */
export interface SettingProblem {
    /** e.g. `dreamCoder.threads: 100000 is not valid (a whole number from 0 to 256)` */
    message: string;
    fallback: unknown;
}

/** A value test, with what it expects in words. */
/**
 * Sizes of work done per keystroke or per step, above whose declared maximum more only makes a request slower:
 * a larger value is not refused but lowered to the maximum, and reported with why.
 */
const LOWERED_TO_MAXIMUM: Readonly<Record<string, string>> = {
    blockLength: "each cached step recomputes its whole block: a longer one makes every step as slow as a full pass",
    "inlineCompletion.lineTokens": "a suggestion in the middle of a line ends with the line",
    "inlineCompletion.blockTokens": "ghost text is decoded on every pause in typing; Sketch Function Body draws longer code"
};

/** Whether `v` is what setting `key` declares, and the expectation in words for the message when it is not. */
function check(key: string, v: unknown): { ok: boolean; expected: string } {
    return checkDeclared(declared(key), v);
}

/** What setting `key` takes, in words ("a whole number from 1 to 256"), for a command line's list of what it accepts. */
export function settingExpects(key: string): string {
    return check(key, undefined).expected;
}

/**
 * A setting's value from command-line text: a number where the setting takes one and the text is one, else the
 * text itself, which readSettings then refuses with what the setting expects (or keeps, for a setting that is
 * also a string: gpuLayers "auto").
 */
export function settingFromText(key: string, text: string): unknown {
    const d = declared(key);
    const types: readonly DeclaredType[] = Array.isArray(d.type) ? d.type : [d.type];
    const numeric = types.includes("integer") || types.includes("number");
    return numeric && text.trim() !== "" && Number.isFinite(Number(text)) ? Number(text) : text;
}

function checkDeclared(d: Declared, v: unknown): { ok: boolean; expected: string } {
    if (Array.isArray(d.type)) {
        const each = d.type.map((type) => checkDeclared({ ...d, type }, v));
        return { ok: each.some((c) => c.ok), expected: each.map((c) => c.expected).join(", or ") };
    }
    const range = (what: string) =>
        d.maximum === undefined
            ? `${what} of at least ${d.minimum}`
            : d.minimum === undefined
              ? `${what} of at most ${d.maximum}`
              : `${what} from ${d.minimum} to ${d.maximum}`;
    const inRange = (n: number) => (d.minimum === undefined || n >= d.minimum) && (d.maximum === undefined || n <= d.maximum);
    switch (d.type) {
        case "boolean":
            return { ok: typeof v === "boolean", expected: "true or false" };
        case "integer":
            return { ok: Number.isInteger(v) && inRange(v as number), expected: range("a whole number") };
        case "number":
            return { ok: typeof v === "number" && Number.isFinite(v) && inRange(v), expected: range("a number") };
        case "object":
            // Declared with boolean values (inlineCompletion.enable: language id -> on/off).
            return {
                ok: isObject(v) && Object.values(v).every((b) => typeof b === d.additionalProperties?.type),
                expected: "an object of language ids to true or false"
            };
        case "string":
            if (d.enum) return { ok: d.enum.includes(v as string), expected: `one of ${d.enum.join(", ")}` };
            if (d.pattern)
                return { ok: typeof v === "string" && new RegExp(d.pattern).test(v), expected: d.patternErrorMessage ?? `text matching ${d.pattern}` };
            return { ok: typeof v === "string", expected: "text" };
    }
}

/**
 * Settings from whatever the editor sent: known keys of the right type override the defaults; a wrong value is
 * reported in `problems` (the server logs it and keeps the default, so one typo never stops it; the CLI stops).
 */
export function readSettings(raw: unknown): { settings: Settings; problems: SettingProblem[] } {
    const problems: SettingProblem[] = [];
    const src = isObject(raw) ? raw : {};
    // `key` as declared ("holes.marker"): the editor sends sections as nested objects.
    const pick = <T>(key: string): T => {
        const fallback = def<T>(key);
        const path = key.split(".");
        let v: unknown = src;
        for (const part of path) v = isObject(v) ? v[part] : undefined;
        if (v === undefined || v === null) return fallback;
        const { ok, expected } = check(key, v);
        if (ok) return v as T;
        const max = declared(key).maximum;
        if (LOWERED_TO_MAXIMUM[key] && max !== undefined && Number.isInteger(v) && (v as number) > max) {
            problems.push({ message: `dreamCoder.${key}: ${v} is more than ${max} (${LOWERED_TO_MAXIMUM[key]})`, fallback: max });
            return max as T;
        }
        problems.push({ message: `dreamCoder.${key}: ${JSON.stringify(v)} is not valid (${expected})`, fallback });
        return fallback;
    };
    const settings = settingsFrom(pick);
    settings.model = settings.model.trim();
    // Rules between settings, checked here so that the message names the settings (the decoder refuses the
    // same with its own parameter names).
    if (settings.algorithm === "origin" && settings.confidenceThreshold > 0) {
        problems.push({
            message: `dreamCoder.confidenceThreshold: ${settings.confidenceThreshold} needs an algorithm that ranks by confidence (maskgit_plus, topk_margin or entropy), not dreamCoder.algorithm "origin"`,
            fallback: 0
        });
        settings.confidenceThreshold = 0;
    }
    return { settings, problems };
}

/** Sets a setting by its declared key ("holes.marker") in a raw settings object, whose sections are nested objects as
 * the editor sends them; readSettings checks the value. */
export function setSetting(raw: Record<string, unknown>, key: string, value: unknown): void {
    const path = key.split(".");
    let at = raw;
    for (const part of path.slice(0, -1)) {
        if (!isObject(at[part])) at[part] = {};
        at = at[part] as Record<string, unknown>;
    }
    at[path[path.length - 1]] = value;
}

/** Whether inline completions are on for a language, from the per-language switch (`*` for the rest). The client's
 * status menu reads it too. */
export function inlineEnabled(enable: Record<string, boolean>, languageId: string): boolean {
    return enable[languageId] ?? enable["*"] ?? true;
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

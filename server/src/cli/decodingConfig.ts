// Decoding configurations as the command lines write them: `dream-coder eval --configs`, `dream-coder bench
// --compare` and the runtime benchmark's --modes. One grammar in the settings' words, so that a configuration
// means the same to each of them and a row of any of their tables can be pasted back as an argument: terms
// joined by "+", e.g. "none", "dual+reuse", "dual+confidence-threshold=0.9", "block-length=16"; a list joins
// configurations with commas. A configuration's settings are checked by readSettings, as the CLI's flags are.
import { InvalidArgumentError } from "commander";
import type { CacheMode } from "../../../common/decoding";
import { DECLARED, readSettings, settingExpects, settingFromText, type Settings } from "../../../common/settings";

/** Key=value terms that set a setting: the key is the setting's flag (`dream-coder fill --block-length`). */
const SETTING_TERMS = {
    "block-length": "blockLength",
    "confidence-threshold": "confidenceThreshold",
    algorithm: "algorithm"
} as const;

/** Key=value terms for decoder parameters that no setting has (DecodeParams' names, spelled as flags). */
const DECODER_TERMS = {
    "entropy-bound": { param: "entropyBound", about: "the EB-sampler's bound on the entropy one step reveals, in nats" },
    "eot-penalty": { param: "eotPenalty", about: "Dream-Coder's padding penalty, taken off the end-of-text logits and decaying to 0 over the steps" }
} as const;

const CACHE_MODES = DECLARED.cache.enum as CacheMode[];
/** The bare word for dreamCoder.cacheReuse: keep each document's cache for its next request. */
const REUSE = "reuse";

type SettingTerm = keyof typeof SETTING_TERMS;
type DecoderTerm = keyof typeof DECODER_TERMS;
/** A kind of term by the word that writes it; "cache" stands for the cache modes' own words. */
export type Term = "cache" | typeof REUSE | SettingTerm | DecoderTerm;

export interface DecodingConfig {
    /** As written: the row's name in tables, JSON and resume files. */
    name: string;
    /** The cache and cacheReuse always (none and off unless named, so that a configuration says what its cache
     *  does whatever the other settings are); the other settings where named. */
    settings: Pick<Settings, "cache" | "cacheReuse"> & Partial<Pick<Settings, (typeof SETTING_TERMS)[SettingTerm]>>;
    /** Decoder parameters that no setting has, where named. */
    decoder: { [T in DecoderTerm as (typeof DECODER_TERMS)[T]["param"]]?: number };
}

/** Exact decoding and nothing else: the configuration whose completions the others' are compared with. */
export const REFERENCE_CONFIG = "none";

/** Everything a configuration may say: the end of every refusal. */
export const DECODING_CONFIG_GRAMMAR =
    `a configuration is terms joined by +: the cache, ${CACHE_MODES.join(" | ")} (none when not named; none is exact, every step a full pass); ` +
    `${REUSE} (dreamCoder.cacheReuse: keep each document's cache for its next request; needs a cache); key=value terms: ` +
    [
        ...Object.entries(SETTING_TERMS).map(([term, key]) => `${term} (dreamCoder.${key}: ${settingExpects(key)})`),
        ...Object.entries(DECODER_TERMS).map(([term, { about }]) => `${term} (${about}: a number above 0)`)
    ].join(", ") +
    "; a list joins configurations with commas, e.g. none,dual,dual+reuse,dual+confidence-threshold=0.9";

/** Terms a command cannot honour, each with the sentence that says why: refused like a wrong term. */
export type Unsupported = Partial<Record<Term, string>>;

/** What a term is: a cache mode's word, reuse, or a known key (with a value); undefined for anything else. */
function termKind(key: string, value: string | undefined): Term | undefined {
    if (value === undefined) return CACHE_MODES.includes(key as CacheMode) ? "cache" : key === REUSE ? REUSE : undefined;
    return Object.hasOwn(SETTING_TERMS, key) || Object.hasOwn(DECODER_TERMS, key) ? (key as SettingTerm | DecoderTerm) : undefined;
}

/** "dual+confidence-threshold=0.9" → its settings and decoder parameters; a wrong one throws with the grammar. */
export function parseDecodingConfig(text: string, unsupported: Unsupported = {}): DecodingConfig {
    const name = text.trim();
    const refuse = (why: string) => new InvalidArgumentError(`bad configuration "${name}": ${why}; ${DECODING_CONFIG_GRAMMAR}`);
    if (name === "") throw refuse("it is empty");
    const raw: Record<string, unknown> = { cache: "none", cacheReuse: false };
    const decoder: DecodingConfig["decoder"] = {};
    const named = new Set<Term>();
    for (const term of name.split("+")) {
        const at = term.indexOf("=");
        const [key, value] = at < 0 ? [term, undefined] : [term.slice(0, at), term.slice(at + 1)];
        const kind = termKind(key, value);
        if (kind === undefined) {
            throw refuse(
                value === undefined
                    ? `"${term}" is not a cache mode (${CACHE_MODES.join(", ")}) or ${REUSE}`
                    : `"${key}" is not a key (${[...Object.keys(SETTING_TERMS), ...Object.keys(DECODER_TERMS)].join(", ")})`
            );
        }
        const why = unsupported[kind];
        if (why) throw refuse(why);
        if (named.has(kind)) throw refuse(kind === "cache" ? "it names two cache modes" : `it names ${kind} twice`);
        named.add(kind);
        if (kind === "cache") raw.cache = key;
        else if (kind === REUSE) raw.cacheReuse = true;
        else if (Object.hasOwn(SETTING_TERMS, kind)) raw[SETTING_TERMS[kind as SettingTerm]] = settingFromText(SETTING_TERMS[kind as SettingTerm], value!);
        else {
            const n = Number(value);
            if (value!.trim() === "" || !(Number.isFinite(n) && n > 0)) throw refuse(`${kind} takes a number above 0, not "${value}"`);
            decoder[DECODER_TERMS[kind as DecoderTerm].param] = n;
        }
    }
    if (raw.cacheReuse && raw.cache === "none") throw refuse(`${REUSE} keeps the cache for the next request, and none has no cache`);
    const { settings, problems } = readSettings(raw);
    if (problems.length) throw refuse(problems.map((p) => p.message).join("; "));
    const given = Object.entries(SETTING_TERMS).filter(([term]) => named.has(term as SettingTerm));
    return {
        name,
        settings: { cache: settings.cache, cacheReuse: settings.cacheReuse, ...Object.fromEntries(given.map(([, key]) => [key, settings[key]])) },
        decoder
    };
}

/** "none,dual+reuse" → two configurations; a wrong one, or one given twice, throws. */
export function parseDecodingConfigs(list: string, unsupported: Unsupported = {}): DecodingConfig[] {
    const configs = list.split(",").map((text) => parseDecodingConfig(text, unsupported));
    const names = configs.map((c) => c.name);
    const twice = names.find((n, i) => names.indexOf(n) !== i);
    if (twice !== undefined) throw new InvalidArgumentError(`configuration "${twice}" is given twice`);
    return configs;
}

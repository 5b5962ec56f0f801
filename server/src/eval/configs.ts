// Decoding configurations as the command line names them: terms joined by "+", e.g. "exact",
// "dual+threshold=0.9", "dual+entropy=1", "block=16". Each becomes the decoder's parameters for one hole.
import { decodeParams } from "../jobs/denoise";
import type { Algorithm, CacheMode } from "../../../common/decoding";
import type { DecodeParams } from "../runtime/native";
import { DEFAULT_SETTINGS, type Settings } from "../../../common/settings";

export interface DecodeConfig {
    /** As given on the command line: the row's name. */
    name: string;
    cache: CacheMode;
    /** Block schedule with this length; undefined: exact mode keeps Dream's time grid over the whole hole. */
    blockLength?: number;
    confidenceThreshold?: number;
    entropyBound?: number;
    algorithm?: Algorithm;
    /** Subtracted from the end-of-text logits, decaying to 0 over the steps: Dream-Coder's padding penalty. */
    eotPenalty?: number;
}

export const CONFIG_GRAMMAR =
    "a configuration is terms joined by +: exact | prefix | dual (the cache; default exact), threshold=X (0 < X ≤ 1), " +
    "entropy=X (nats, > 0), block=N (tokens), alg=origin|maskgit_plus|topk_margin|entropy, eot=X (end-of-text penalty, > 0); " +
    "e.g. exact,dual,dual+threshold=0.9,block=16,exact+eot=5";

const CACHES: Record<string, CacheMode> = { exact: "none", prefix: "prefix", dual: "dual" };
const ALGORITHMS: readonly Algorithm[] = ["origin", "maskgit_plus", "topk_margin", "entropy"];

/** "exact,dual+threshold=0.9" → two configurations; a bad one throws with the grammar. */
export function parseConfigs(list: string): DecodeConfig[] {
    const names = list.split(",").map((s) => s.trim());
    const configs = names.map(parseConfig);
    const seen = new Set<string>();
    for (const c of configs) {
        if (seen.has(c.name)) throw new Error(`configuration "${c.name}" is given twice`);
        seen.add(c.name);
    }
    return configs;
}

function parseConfig(name: string): DecodeConfig {
    const bad = (why: string) => new Error(`bad configuration "${name}": ${why}; ${CONFIG_GRAMMAR}`);
    if (name === "") throw bad("it is empty");
    const config: DecodeConfig = { name, cache: "none" };
    let cacheGiven = false;
    for (const term of name.split("+")) {
        const [key, value, extra] = term.split("=");
        if (value === undefined) {
            const cache = CACHES[key];
            if (!cache) throw bad(`"${term}" is not a cache mode`);
            if (cacheGiven) throw bad("it names two cache modes");
            config.cache = cache;
            cacheGiven = true;
            continue;
        }
        const n = Number(value);
        if (extra !== undefined || value === "") throw bad(`"${term}" is not key=value`);
        if (key === "threshold") {
            if (!(n > 0 && n <= 1)) throw bad("threshold wants a number above 0, at most 1");
            config.confidenceThreshold = n;
        } else if (key === "entropy") {
            if (!(n > 0 && Number.isFinite(n))) throw bad("entropy wants a positive number of nats");
            config.entropyBound = n;
        } else if (key === "block") {
            if (!(Number.isInteger(n) && n >= 1)) throw bad("block wants a whole number of tokens");
            config.blockLength = n;
        } else if (key === "eot") {
            if (!(n > 0 && Number.isFinite(n))) throw bad("eot wants a positive number (logits)");
            config.eotPenalty = n;
        } else if (key === "alg") {
            if (!ALGORITHMS.includes(value as Algorithm)) throw bad(`alg wants one of ${ALGORITHMS.join(", ")}`);
            config.algorithm = value as Algorithm;
        } else {
            throw bad(`"${key}" is not a known key`);
        }
    }
    return config;
}

/**
 * The decoder's parameters for a hole of `budget` tokens: greedy, one step per token (Dream's setting; the
 * threshold and entropy bound then reveal more per step), the product's default algorithm and block length.
 * `earlyStop` fills the rest of the hole with end-of-text after the first one (the fixed-budget policy).
 */
export function configParams(config: DecodeConfig, budget: number, earlyStop: boolean): DecodeParams {
    const settings: Settings = {
        ...DEFAULT_SETTINGS,
        steps: 0,
        temperature: 0,
        cache: config.cache,
        algorithm: config.algorithm ?? DEFAULT_SETTINGS.algorithm,
        blockLength: config.blockLength ?? DEFAULT_SETTINGS.blockLength,
        confidenceThreshold: config.confidenceThreshold ?? 0
    };
    const params = { ...decodeParams(settings, budget), earlyStop };
    if (config.entropyBound) params.entropyBound = config.entropyBound;
    if (config.eotPenalty) params.eotPenalty = config.eotPenalty;
    // block=N without a cache: exact forward passes, LLaDA's block schedule.
    if (config.cache === "none" && config.blockLength) Object.assign(params, { schedule: "block", blockLength: config.blockLength });
    return params;
}

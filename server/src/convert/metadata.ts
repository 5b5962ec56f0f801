// The general.* metadata convert_hf_to_gguf.py writes (gguf-py/gguf/metadata.py and utility.py): the model's name,
// organization, basename, finetune, version and size label guessed from the model card's YAML front matter, the
// config's _name_or_path and the folder's name; license, tags, languages, base models and datasets from the model
// card; recommended sampling from generation_config.json. The same heuristics, in the same order, with the same
// results, for what Hugging Face checkpoint folders contain. Not replicated: the --metadata override file and
// --model-name (the product has neither), and model card values that are nested YAML (a base model or dataset given
// as a mapping, block scalars): those are ignored here.
import { readFile } from "node:fs/promises";
import { basename, join, resolve } from "node:path";
import type { GgufKv } from "./gguf";

/** Parameter counts of the converted tensors (gguf_writer.get_total_parameter_count). */
export interface ParameterCounts {
    total: number;
    shared: number;
    expert: number;
    expertCount: number;
}

type CardValue = string | null | CardValue[] | { complex: true };
type Card = Map<string, CardValue>;

interface Source {
    name?: string;
    author?: string;
    version?: string;
    organization?: string;
    description?: string;
    url?: string;
    doi?: string;
    uuid?: string;
    repo_url?: string;
}

interface Metadata {
    name?: string;
    author?: string;
    version?: string;
    organization?: string;
    finetune?: string;
    basename?: string;
    description?: string;
    quantized_by?: string;
    size_label?: string;
    url?: string;
    doi?: string;
    uuid?: string;
    repo_url?: string;
    source_url?: string;
    source_doi?: string;
    source_uuid?: string;
    source_repo_url?: string;
    license?: string | string[];
    license_name?: string;
    license_link?: string;
    base_models?: Source[];
    datasets?: Source[];
    tags?: string[];
    languages?: string[];
}

// ---- The model card's front matter: the YAML subset model cards use (top-level keys with scalars or lists).

function unquote(text: string): string | null {
    const t = text.trim();
    if (t.startsWith('"') && t.endsWith('"') && t.length >= 2) {
        try {
            return JSON.parse(t) as string;
        } catch {
            return t.slice(1, -1);
        }
    }
    if (t.startsWith("'") && t.endsWith("'") && t.length >= 2) return t.slice(1, -1).replace(/''/g, "'");
    // A plain scalar ends at a comment; YAML's nulls are not strings.
    const plain = t.replace(/\s+#.*$/, "");
    return /^(~|null|Null|NULL|)$/.test(plain) ? null : plain;
}

/** Splits a flow sequence's inside on commas outside quotes. */
function flowItems(inside: string): string[] {
    const items: string[] = [];
    let current = "";
    let quote = "";
    for (const c of inside) {
        if (quote) {
            if (c === quote) quote = "";
        } else if (c === '"' || c === "'") quote = c;
        else if (c === ",") {
            items.push(current);
            current = "";
            continue;
        }
        current += c;
    }
    if (current.trim()) items.push(current);
    return items;
}

function scalarOrFlow(text: string): CardValue {
    const t = text.replace(/^\s+/, "");
    if (t.startsWith("[")) {
        const end = t.lastIndexOf("]");
        if (end < 0) return { complex: true };
        return flowItems(t.slice(1, end)).map(unquote);
    }
    if (t.startsWith("{") || t.startsWith("|") || t.startsWith(">") || t.startsWith("&") || t.startsWith("*")) return { complex: true };
    return unquote(t);
}

/** The front matter of a README.md, as metadata.py's load_model_card reads it (empty without one). */
export function parseModelCard(content: string): Card {
    const card: Card = new Map();
    const lines = content.split(/\r\n|\r|\n/);
    if (lines[0] !== "---") return card;
    const yaml: string[] = [];
    for (const line of lines.slice(1)) {
        if (line === "---") break;
        yaml.push(line.replace(/\t/g, "  "));
    }
    const meaningful = yaml.filter((l) => l.trim() !== "" && !/^\s*#/.test(l));
    for (let i = 0; i < meaningful.length; i++) {
        const m = /^("[^"]*"|'[^']*'|[^\s:#][^:]*?)\s*:(?:\s+(.*)|\s*)$/.exec(meaningful[i]);
        if (!m) continue; // an indented or unexpected line outside a key's block
        const key = unquote(m[1]) ?? "";
        const rest = m[2] ?? "";
        // The key's block: more indented lines, or list items at the key's own indentation.
        const block: string[] = [];
        while (i + 1 < meaningful.length && (/^\s/.test(meaningful[i + 1]) || /^-(\s|$)/.test(meaningful[i + 1]))) block.push(meaningful[++i]);
        if (rest.trim() !== "" && !rest.trim().startsWith("#")) {
            card.set(key, block.length ? { complex: true } : scalarOrFlow(rest));
            continue;
        }
        if (block.length === 0) {
            card.set(key, null);
            continue;
        }
        const indent = /^\s*/.exec(block[0])![0].length;
        const items = block.map((l) => (l.length - l.trimStart().length === indent ? /^\s*-(?:\s+(.*)|\s*)$/.exec(l) : null));
        if (items.every((it) => it !== null && !/^[^"'[{]*:(\s|$)/.test(it[1] ?? ""))) {
            card.set(
                key,
                items.map((it) => scalarOrFlow(it![1] ?? ""))
            );
        } else card.set(key, { complex: true });
    }
    return card;
}

// ---- Names: metadata.py's get_model_id_components and id_to_title.

const isDecimal = (c: string | undefined) => c !== undefined && c >= "0" && c <= "9";
const isAlpha = (s: string) => /^\p{L}+$/u.test(s);
const isLower = (w: string) => w.toLowerCase() === w && w.toUpperCase() !== w;

/** Python's str.title(): each run of letters capitalized. */
function pythonTitle(w: string): string {
    let out = "";
    let previousCased = false;
    for (const c of w) {
        const cased = c.toLowerCase() !== c.toUpperCase();
        out += cased ? (previousCased ? c.toLowerCase() : c.toUpperCase()) : c;
        previousCased = cased;
    }
    return out;
}

export function idToTitle(s: string): string {
    return s
        .trim()
        .replace(/-/g, " ")
        .split(/\s+/)
        .filter((w) => w !== "")
        .map((w) => (isLower(w) && !/^(v\d+(?:\.\d+)*|\d.*)$/.test(w) ? pythonTitle(w) : w))
        .join(" ");
}

export interface ModelIdComponents {
    fullName?: string;
    organization?: string;
    basename?: string;
    finetune?: string;
    version?: string;
    sizeLabel?: string;
}

type NameType = "basename" | "size_label" | "finetune" | "version" | "type";

export function modelIdComponents(modelId: string | undefined, totalParams: number): ModelIdComponents {
    if (modelId === undefined) return {};
    if (modelId.includes(" ")) return { fullName: modelId };
    let organization: string | undefined;
    let fullName = modelId;
    const slash = modelId.indexOf("/");
    if (slash >= 0) {
        organization = modelId.slice(0, slash);
        fullName = modelId.slice(slash + 1);
    }
    if (organization?.startsWith(".")) organization = undefined;

    const parts = fullName.split("-").filter((p) => p !== "");
    const types = parts.map(() => new Set<NameType>());
    parts.forEach((original, i) => {
        let part = original;
        if (/^(v|iter)?\d+([.]\d+)*$/i.test(part)) types[i].add("version");
        else if (/^(i?q\d(_\w)*|b?fp?(16|32))$/i.test(part)) {
            types[i].add("type");
            parts[i] = part.toUpperCase();
        } else if (i > 0 && /^(([A]|\d+[x])?\d+([._]\d+)?[KMBT][\d]?|small|mini|medium|large|x?xl)$/i.test(part)) {
            part = part.replace(/_/g, ".");
            if (isDecimal(part.at(-1))) part = `${part.slice(0, -2)}.${part.at(-1)}${part.at(-2)}`;
            if (part.length > 1 && isDecimal(part.at(-2)) && "kmbt".includes(part.at(-1)!)) part = part.slice(0, -1) + part.at(-1)!.toUpperCase();
            if (totalParams !== 0) {
                const scale = " KMBT".indexOf(part.at(-1)!);
                const mantissa = pythonFloat(part.slice(0, -1));
                if (mantissa !== undefined) {
                    const labelParams = mantissa * 1000 ** scale;
                    if (
                        (totalParams < 0 && labelParams < Math.floor(Math.abs(totalParams) / 8)) ||
                        (totalParams > 0 && Math.abs(labelParams - totalParams) > Math.floor((7 * totalParams) / 8))
                    ) {
                        types[i].add("finetune"); // likely a context length
                        part = part.slice(0, -1) + part.at(-1)!.toLowerCase();
                    }
                }
            }
            if (types[i].size === 0) types[i].add("size_label");
            parts[i] = part;
        } else if (i > 0 && /^(chat|instruct|vision|lora)$/i.test(part)) {
            types[i].add(totalParams < 0 && part.toLowerCase() === "lora" ? "type" : "finetune");
        }
    });
    // Word-based size labels give way to a number-based one.
    if (parts.some((p, i) => types[i].has("size_label") && /\d/.test(p))) {
        parts.forEach((p, i) => {
            if (types[i].has("size_label") && isAlpha(p)) types[i].delete("size_label");
        });
    }
    let atStart = true;
    parts.forEach((p, i) => {
        const t = types[i];
        if (atStart && ((t.size === 0 && /^\p{L}/u.test(p)) || t.has("version"))) t.add("basename");
        else {
            atStart = false;
            if (t.size === 0) t.add("finetune");
        }
    });
    for (let i = parts.length - 1; i >= 0; i--) {
        if (types[i].has("basename") && types[i].size > 1) types[i].delete("basename");
        else break;
    }
    const join = (pick: (t: Set<NameType>) => boolean, unique = false) => {
        let picked = parts.filter((_, i) => pick(types[i]));
        if (unique) picked = [...new Set(picked)];
        return picked.join("-") || undefined;
    };
    let base = join((t) => t.has("basename"));
    const sizeLabel = join((t) => t.has("size_label"), true);
    const finetune = join((t) => t.has("finetune"));
    const version = join((t) => t.has("version") && !t.has("basename"));
    if (sizeLabel === undefined && finetune === undefined && version === undefined) base = undefined;
    return { fullName, organization, basename: base, finetune, version, sizeLabel };
}

/** Python's float() of the strings a size label can hold, or undefined where it raises. */
function pythonFloat(s: string): number | undefined {
    return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s) ? Number(s) : undefined;
}

// ---- Size labels: utility.py's size_label and model_weight_count_rounded_notation.

/** Python's round() (half to even) of a float. */
function pythonRound(x: number): number {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Python's f"{x:.{digits}f}": the exact value rounded half to even (toFixed breaks exact ties upwards). */
function pythonFixed(x: number, digits: number): string {
    const exact = x.toFixed(Math.min(100, digits + 60));
    const [whole, fraction = ""] = exact.split(".");
    const rest = fraction.slice(digits);
    if (!/^50*$/.test(rest)) return x.toFixed(digits);
    const kept = whole + (digits ? `.${fraction.slice(0, digits)}` : "");
    const lastDigit = Number((whole + fraction.slice(0, digits)).at(-1));
    return lastDigit % 2 === 0 ? kept : x.toFixed(digits);
}

function roundedNotation(count: number, minDigits = 2): string {
    let scaled: number;
    let suffix: string;
    if (count > 1e12) [scaled, suffix] = [count * 1e-12, "T"];
    else if (count > 1e9) [scaled, suffix] = [count * 1e-9, "B"];
    else if (count > 1e6) [scaled, suffix] = [count * 1e-6, "M"];
    else [scaled, suffix] = [count * 1e-3, "K"];
    const fix = Math.max(minDigits - String(pythonRound(scaled)).replace(/^0+/, "").length, 0);
    return pythonFixed(scaled, fix) + suffix;
}

export function sizeLabel(p: ParameterCounts): string {
    if (p.expertCount > 0) return `${p.expertCount}x${roundedNotation(Math.abs(p.shared) + Math.abs(p.expert))}`;
    return roundedNotation(Math.abs(p.total));
}

// ---- metadata.py's Metadata.load and apply_metadata_heuristic.

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
    try {
        const v = JSON.parse(await readFile(file, "utf8"));
        return typeof v === "object" && v !== null && !Array.isArray(v) ? v : undefined;
    } catch {
        return undefined;
    }
}

async function readModelCard(dir: string): Promise<Card> {
    try {
        return parseModelCard(await readFile(join(dir, "README.md"), "utf8"));
    } catch {
        return new Map();
    }
}

const isString = (v: unknown): v is string => typeof v === "string";

/** A model or dataset reference from the model card, as metadata.py expands it. */
function source(id: CardValue, totalParams: number): Source {
    if (typeof id !== "string") return {}; // metadata.py logs it and keeps an empty entry
    const entry: Source = {};
    if (/^(https?|ssh):\/\//.test(id)) {
        entry.repo_url = id;
        const hf = /^https?:\/\/huggingface.co\/([^/]+\/[^/]+)$/.exec(id);
        if (id.includes("huggingface.co") && hf) {
            const c = modelIdComponents(hf[1], totalParams);
            if (c.fullName !== undefined) entry.name = idToTitle(c.fullName);
            if (c.organization !== undefined) entry.organization = idToTitle(c.organization);
            if (c.version !== undefined) entry.version = c.version;
        }
        return entry;
    }
    const c = modelIdComponents(id, totalParams);
    if (c.fullName !== undefined) entry.name = idToTitle(c.fullName);
    if (c.organization !== undefined) entry.organization = idToTitle(c.organization);
    if (c.version !== undefined) entry.version = c.version;
    if (c.organization !== undefined && c.fullName !== undefined) entry.repo_url = `https://huggingface.co/${c.organization}/${c.fullName}`;
    return entry;
}

function heuristics(card: Card, hparams: Record<string, unknown>, dir: string, totalParams: number): Metadata {
    const m: Metadata = {};
    type StringField = Exclude<keyof Metadata, "license" | "base_models" | "datasets" | "tags" | "languages">;
    const use = (field: StringField | "license", cardKey: string) => {
        if (!card.has(cardKey) || m[field] !== undefined) return;
        const v = card.get(cardKey);
        if (field === "license" && Array.isArray(v)) m.license = v.filter(isString);
        else if (typeof v === "string") m[field] = v;
    };
    const useArray = (field: "tags" | "languages", cardKey: string) => {
        const v = card.get(cardKey);
        if (v === undefined || v === null) return;
        const current = m[field] ?? [];
        if (typeof v === "string") current.push(v);
        else if (Array.isArray(v)) current.push(...v.filter(isString));
        m[field] = current;
    };
    if (card.size) {
        for (const [field, key] of [
            ["name", "name"],
            ["author", "author"],
            ["version", "version"],
            ["organization", "organization"],
            ["description", "description"],
            ["finetune", "finetune"],
            ["basename", "basename"],
            ["size_label", "size_label"],
            ["source_url", "url"],
            ["source_doi", "doi"],
            ["source_uuid", "uuid"],
            ["source_repo_url", "repo_url"],
            ["name", "model_name"],
            ["author", "model_author"],
            ["version", "model_version"],
            ["organization", "model_organization"],
            ["description", "model_description"],
            ["finetune", "model_finetune"],
            ["basename", "model_basename"],
            ["size_label", "model_size_label"],
            ["source_url", "model_url"],
            ["source_doi", "model_doi"],
            ["source_uuid", "model_uuid"],
            ["source_repo_url", "model_repo_url"],
            ["author", "model_creator"],
            ["basename", "model_type"]
        ] as const) {
            use(field, key);
        }
        const references = (keys: string[]): Source[] | undefined => {
            const key = keys.find((k) => card.has(k));
            if (key === undefined) return undefined;
            const v = card.get(key);
            const ids = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
            return ids.map((id) => source(id, totalParams));
        };
        m.base_models = references(["base_model", "base_models", "base_model_sources"]);
        m.datasets = references(["datasets", "dataset", "dataset_sources"]);
        use("license", "license");
        use("license_name", "license_name");
        use("license_link", "license_link");
        useArray("tags", "tags");
        useArray("tags", "pipeline_tag");
        useArray("languages", "languages");
        useArray("languages", "language");
    }
    const fill = (c: ModelIdComponents) => {
        if (m.name === undefined && c.fullName !== undefined) m.name = idToTitle(c.fullName);
        if (m.organization === undefined && c.organization !== undefined) m.organization = idToTitle(c.organization);
        if (m.basename === undefined && c.basename !== undefined) m.basename = c.basename;
        if (m.finetune === undefined && c.finetune !== undefined) m.finetune = c.finetune;
        if (m.version === undefined && c.version !== undefined) m.version = c.version;
        if (m.size_label === undefined && c.sizeLabel !== undefined) m.size_label = c.sizeLabel;
    };
    const nameOrPath = hparams._name_or_path;
    // Only a model name ("org/name"), not a path on someone's computer.
    if (isString(nameOrPath) && (nameOrPath.match(/\//g) ?? []).length <= 1) fill(modelIdComponents(nameOrPath, totalParams));
    fill(modelIdComponents(basename(resolve(dir)), totalParams));
    return m;
}

/** gguf_writer's add_* for the recommended sampling: the key, its type and generation_config.json's field(s). */
const SAMPLING: [string, "string" | "i32" | "f32", string[]][] = [
    ["general.sampling.sequence", "string", ["sequence"]],
    ["general.sampling.top_k", "i32", ["top_k"]],
    ["general.sampling.top_p", "f32", ["top_p"]],
    ["general.sampling.min_p", "f32", ["min_p"]],
    ["general.sampling.xtc_probability", "f32", ["xtc_probability"]],
    ["general.sampling.xtc_threshold", "f32", ["xtc_threshold"]],
    ["general.sampling.temp", "f32", ["temperature"]],
    ["general.sampling.penalty_last_n", "i32", ["penalty_last_n"]],
    ["general.sampling.penalty_repeat", "f32", ["penalty_repeat", "repetition_penalty"]],
    ["general.sampling.mirostat", "i32", ["mirostat"]],
    ["general.sampling.mirostat_tau", "f32", ["mirostat_tau"]],
    ["general.sampling.mirostat_eta", "f32", ["mirostat_eta"]]
];

/**
 * The general.* entries metadata.py's set_gguf_meta_model writes for the checkpoint in `dir`, in its order (after
 * general.architecture and general.type): recommended sampling, name and the other authorship fields, size label,
 * license, sources, base models, datasets, tags, languages.
 */
export async function generalMetadata(dir: string, hparams: Record<string, unknown>, params: ParameterCounts): Promise<GgufKv[]> {
    const card = await readModelCard(dir);
    const generation = (await readJson(join(dir, "generation_config.json"))) ?? {};
    const m = heuristics(card, hparams, dir, params.total);
    if (m.name === undefined) m.name = basename(resolve(dir));
    if (m.size_label === undefined && params.total > 0) m.size_label = sizeLabel(params);

    const kvs: GgufKv[] = [];
    const str = (key: string, v: string | undefined) => {
        if (v) kvs.push({ key, value: { type: "string", value: v } }); // add_string skips empty strings
    };
    for (const [key, type, fields] of SAMPLING) {
        const field = fields.find((f) => f in generation);
        const v = field === undefined ? undefined : generation[field];
        if (v === undefined || v === null) continue;
        if (type === "string") str(key, String(v));
        else if (typeof v === "number") kvs.push({ key, value: { type, value: v } });
    }
    str("general.name", m.name);
    str("general.author", m.author);
    str("general.version", m.version);
    str("general.organization", m.organization);
    str("general.finetune", m.finetune);
    str("general.basename", m.basename);
    str("general.description", m.description);
    str("general.quantized_by", m.quantized_by);
    str("general.size_label", m.size_label);
    str("general.license", Array.isArray(m.license) ? m.license.join(",") : m.license);
    str("general.license.name", m.license_name);
    str("general.license.link", m.license_link);
    str("general.url", m.url);
    str("general.doi", m.doi);
    str("general.uuid", m.uuid);
    str("general.repo_url", m.repo_url);
    str("general.source.url", m.source_url);
    str("general.source.doi", m.source_doi);
    str("general.source.uuid", m.source_uuid);
    str("general.source.repo_url", m.source_repo_url);
    for (const [prefix, list] of [
        ["general.base_model", m.base_models],
        ["general.dataset", m.datasets]
    ] as const) {
        if (list === undefined) continue;
        kvs.push({ key: `${prefix}.count`, value: { type: "u32", value: list.length } });
        list.forEach((s, i) => {
            for (const field of ["name", "author", "version", "organization", "description", "url", "doi", "uuid", "repo_url"] as const) {
                str(`${prefix}.${i}.${field}`, s[field]);
            }
        });
    }
    // add_array skips empty arrays.
    if (m.tags?.length) kvs.push({ key: "general.tags", value: { type: "array", itemType: "string", value: m.tags } });
    if (m.languages?.length) kvs.push({ key: "general.languages", value: { type: "array", itemType: "string", value: m.languages } });
    return kvs;
}

// A request's fields, read with the type each must have: a wrong type is a 400 with a sentence naming the field, a
// field the server does not know is ignored (as llama-server does). Decoding fields become the request's own
// settings: the server's settings with the request's values in their place, checked by the settings' reader.
import { readSettings, type Settings, setSetting } from "../../../common/settings";
import { HttpError } from "./http";

/** Request fields that set a dreamCoder.* setting for one request, the same in every API family. */
export const DECODING_FIELDS: Readonly<Record<string, string>> = {
    temperature: "temperature",
    top_p: "topP",
    steps: "steps",
    algorithm: "algorithm",
    cache: "cache",
    block_length: "blockLength",
    confidence_threshold: "confidenceThreshold"
};

/** A value as a message quotes it: short, and never a whole document. */
function shown(value: unknown): string {
    if (Array.isArray(value)) return "an array";
    if (typeof value === "object" && value !== null) return "an object";
    const text = JSON.stringify(value) ?? String(value);
    return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

export class RequestFields {
    /** Characters of text read so far, against the server's limit on what one request may ask the model to read. */
    private textChars = 0;

    constructor(
        readonly body: Record<string, unknown>,
        private readonly maxTextChars: number
    ) {}

    /** A field's value; null counts as absent, as OpenAI's clients send it for "the default". */
    private value(name: string): unknown {
        const v = this.body[name];
        return v === null ? undefined : v;
    }

    has(name: string): boolean {
        return this.value(name) !== undefined;
    }

    text(name: string): string | undefined {
        const v = this.value(name);
        if (v === undefined) return undefined;
        if (typeof v !== "string") throw new HttpError(400, `"${name}" must be text (a JSON string), not ${shown(v)}.`);
        return this.counted(v);
    }

    requiredText(name: string): string {
        const v = this.text(name);
        if (v === undefined) throw new HttpError(400, `"${name}" is missing: it is the text to work on (a JSON string).`);
        return v;
    }

    /** Text a request brings in some other shape (a message's parts), counted against the same limit. */
    counted(text: string): string {
        this.textChars += text.length;
        if (this.textChars > this.maxTextChars) {
            throw new HttpError(
                413,
                `The request holds more than ${this.maxTextChars.toLocaleString("en")} characters of text, the most this server takes a request.`
            );
        }
        return text;
    }

    integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
        const v = this.value(name);
        if (v === undefined) return undefined;
        if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
            const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
            throw new HttpError(400, `"${name}" must be a whole number ${range}, not ${shown(v)}.`);
        }
        return v as number;
    }

    boolean(name: string): boolean | undefined {
        const v = this.value(name);
        if (v === undefined) return undefined;
        if (typeof v !== "boolean") throw new HttpError(400, `"${name}" must be true or false, not ${shown(v)}.`);
        return v;
    }

    /** A string or a list of strings (stop words). */
    textList(name: string): string[] {
        const v = this.value(name);
        if (v === undefined) return [];
        const list = typeof v === "string" ? [v] : v;
        if (!Array.isArray(list) || !list.every((s) => typeof s === "string")) {
            throw new HttpError(400, `"${name}" must be text or a list of texts, not ${shown(v)}.`);
        }
        return list.filter((s) => s !== "").map((s) => this.counted(s));
    }

    /** A list, each item checked by the caller. */
    list(name: string): unknown[] | undefined {
        const v = this.value(name);
        if (v === undefined) return undefined;
        if (!Array.isArray(v)) throw new HttpError(400, `"${name}" must be a list (a JSON array), not ${shown(v)}.`);
        return v;
    }

    /**
     * The server's settings with this request's values: the decoding fields, `extra` fields of the endpoint (field
     * -> setting key), and values the endpoint worked out itself (setting key -> value). A value the setting does not
     * allow is a 400 that says what it allows, as the command line's flags are refused.
     */
    settings(base: Settings, extra: Readonly<Record<string, string>> = {}, worked: Readonly<Record<string, unknown>> = {}): Settings {
        const raw = structuredClone(base) as unknown as Record<string, unknown>;
        const fields = { ...DECODING_FIELDS, ...extra };
        for (const [field, key] of Object.entries(fields)) {
            const v = this.value(field);
            if (v !== undefined) setSetting(raw, key, v);
        }
        for (const [key, v] of Object.entries(worked)) setSetting(raw, key, v);
        const { settings, problems } = readSettings(raw);
        if (problems.length === 0) return settings;
        // The settings' messages name dreamCoder.KEY; the client wrote the field.
        const named = (message: string) => Object.entries(fields).reduce((m, [field, key]) => m.replaceAll(`dreamCoder.${key}`, `"${field}"`), message);
        throw new HttpError(400, `${problems.map((p) => named(p.message)).join("; ")}.`);
    }
}

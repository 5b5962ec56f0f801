// Inline completion: infill between the text before and after the cursor. The hole is one line's worth in the
// middle of a line (its run ends once that line is revealed) and a block at an empty line; end-of-text inside it
// shortens it. A newer request for the same document cancels the older one, and a small cache answers a repeated
// request at once. While the user types out a suggestion, its rest is the answer: no new decode, and the ghost
// text does not change under them.
import { type ContextWindow, cutWindow, lineEndAfter, lineStartBefore } from "../contextWindow";
import type { ModelHost } from "../modelHost";
import { DecodeCancelledError } from "../runtime/runtime";
import type { Settings } from "../../../common/settings";
import { lineEnding, withLineEnding } from "../spanEdits";
import { budgetHole, contextBudget, decodeParams, denoise, type Denoised, type JobOptions } from "./denoise";

export interface Completion {
    text: string;
    /** The run that made it; null when it came from the cache. */
    denoised: Denoised | null;
    /** The part of the text the model was shown; absent for the rest of a suggestion that is being typed out. */
    window?: ContextWindow;
}

/** The hole's size: a line's worth when the cursor's line has text, a block when it is blank. */
export function completionBudget(text: string, offset: number, settings: Settings): { tokens: number; midLine: boolean } {
    const midLine = text.slice(lineStartBefore(text, offset), lineEndAfter(text, offset)).trim().length > 0;
    return { tokens: midLine ? settings.inlineCompletion.lineTokens : settings.inlineCompletion.blockTokens, midLine };
}

/** A document's last decoded suggestion and what it was decoded from. */
interface Suggestion {
    /** The cursor and the document's length when it was asked for, and the text the model saw around the cursor
     *  (not the whole document: the model saw no more, and a large document is not kept twice). */
    offset: number;
    length: number;
    prefix: string;
    suffix: string;
    completion: string;
    /** The model and decoding settings it was made with (`suggestionIdentity`). */
    identity: string;
    tokens: number;
}

const suggestionIdentity = (settings: Settings, tokens: number) =>
    JSON.stringify([settings.model, settings.modelsDirectory, settings.contextTokens, tokens, settings.holes.startTokens, decodeParams(settings, tokens)]);

export class InlineCompleter {
    private readonly cache = new Map<string, string>();
    private readonly running = new Map<string, AbortController>();
    private readonly shown = new Map<string, Suggestion>();

    constructor(private readonly cacheSize = 64) {}

    /**
     * Completes at `offset` of document `uri`. Cancels the request still running for the same document, waits
     * `debounceMs` (a newer keystroke cancels this one meanwhile), then decodes. The cache kept for reuse is `uri`'s,
     * or options.document's where the caller names another (the HTTP server's requests: each its own `uri`, a
     * client's document for the cache).
     */
    async complete(host: ModelHost, uri: string, text: string, offset: number, options: JobOptions): Promise<Completion> {
        this.running.get(uri)?.abort();
        const own = new AbortController();
        this.running.set(uri, own);
        const signal = options.signal ? AbortSignal.any([options.signal, own.signal]) : own.signal;
        try {
            const { settings } = options;
            const rest = this.typedThrough(uri, text, offset, settings);
            if (rest !== undefined) return { text: rest, denoised: null };
            await delay(settings.inlineCompletion.debounceMs, signal);
            const m = await host.model();
            if (signal.aborted) throw new DecodeCancelledError();
            const { tokens, midLine } = completionBudget(text, offset, settings);
            const win = cutWindow(text, offset, offset, contextBudget(m, settings, tokens), (s) => m.tokenize(s).length);
            const prefix = text.slice(win.start, offset);
            const suffix = text.slice(offset, win.end);
            const key = JSON.stringify([m.file.path, tokens, settings.holes.startTokens, decodeParams(settings, tokens), prefix, suffix]);
            const hit = this.cache.get(key);
            if (hit !== undefined) {
                this.cache.delete(key);
                this.cache.set(key, hit);
                this.remember(uri, { offset, length: text.length, prefix, suffix, completion: hit, identity: suggestionIdentity(settings, tokens), tokens });
                return { text: hit, denoised: null, window: win };
            }
            const denoised = await host.run((model) =>
                denoise(model, model.layout([prefix, budgetHole(model, settings, tokens), suffix]), {
                    ...options,
                    signal,
                    document: options.document ?? uri,
                    firstLineOnly: midLine
                })
            );
            let completion = denoised.texts[0];
            // In the middle of a line the suggestion ends with the line (a lone \r breaks lines in editors too); a
            // suggestion of lines breaks them as the document does (CRLF on Windows), as a fill's text does.
            if (midLine) completion = completion.split(/\r\n|\r|\n/)[0];
            else completion = withLineEnding(completion, lineEnding(text));
            this.cache.set(key, completion);
            if (this.cache.size > this.cacheSize) this.cache.delete(this.cache.keys().next().value!);
            this.remember(uri, { offset, length: text.length, prefix, suffix, completion, identity: suggestionIdentity(settings, tokens), tokens });
            return { text: completion, denoised, window: win };
        } finally {
            if (this.running.get(uri) === own) this.running.delete(uri);
        }
    }

    /**
     * The rest of the document's last suggestion when the user has typed its start at its place and changed
     * nothing else in the text the model saw (as VS Code keeps showing ghost text while it is typed out, and
     * Copilot answers then).
     */
    private typedThrough(uri: string, text: string, offset: number, settings: Settings): string | undefined {
        const s = this.shown.get(uri);
        if (!s || offset <= s.offset || text.length - s.length !== offset - s.offset) return undefined;
        const typed = text.slice(s.offset, offset);
        if (typed.length >= s.completion.length || !s.completion.startsWith(typed)) return undefined;
        if (s.identity !== suggestionIdentity(settings, s.tokens)) return undefined;
        if (!text.startsWith(s.prefix, s.offset - s.prefix.length) || !text.startsWith(s.suffix, offset)) return undefined;
        return s.completion.slice(typed.length);
    }

    private remember(uri: string, suggestion: Suggestion): void {
        this.shown.delete(uri);
        this.shown.set(uri, suggestion);
        if (this.shown.size > this.cacheSize) this.shown.delete(this.shown.keys().next().value!);
    }

    /** Forgets a closed document's suggestion. */
    forget(uri: string): void {
        this.shown.delete(uri);
    }

    /** Stops a document's running request (it changed or closed). */
    cancel(uri: string): void {
        this.running.get(uri)?.abort();
        this.running.delete(uri);
    }

    /** Stops every running request: ghost text is speculative, and a job the user asked for goes first. */
    cancelAll(): void {
        for (const uri of [...this.running.keys()]) this.cancel(uri);
    }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
        if (signal.aborted) return reject(new DecodeCancelledError());
        const timer = setTimeout(() => {
            signal.removeEventListener("abort", onAbort);
            resolve();
        }, ms);
        const onAbort = () => {
            clearTimeout(timer);
            reject(new DecodeCancelledError());
        };
        signal.addEventListener("abort", onAbort, { once: true });
    });
}

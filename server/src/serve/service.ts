// What every endpoint of `dream-coder serve` shares: the one model and the queue in front of it, the inline
// completer that /infill and /v1/completions run, the cache each client reuses, and streaming the part of a
// hole's text that no later step changes.
import { basename } from "node:path";
import { PLACEHOLDER } from "../../../common/protocol";
import type { Settings } from "../../../common/settings";
import { type Completion, completionBudget, InlineCompleter } from "../jobs/completion";
import type { Denoised } from "../jobs/denoise";
import type { ModelHost } from "../modelHost";
import { DecodeCancelledError, type DiffusionModel } from "../runtime/runtime";
import { lineEnding, withLineEnding } from "../spanEdits";
import { type Exchange, HttpError } from "./http";
import { RequestFields } from "./fields";

/** How a completion ended, in llama-server's words: end-of-text, its token budget, a stop word. */
export type StopType = "eos" | "limit" | "word";

export interface CompletionRequest {
    /** The document (or the text around the cursor) and the cursor's offset in it. */
    text: string;
    offset: number;
    settings: Settings;
    /** The completion ends before the first of these. */
    stop: string[];
    /** Where to keep the cache for the client's next request (settings.cacheReuse). */
    document: string;
    /** llama-server's t_max_predict_ms: once this long after the first step, stop at the last whole line revealed. */
    predictMs?: number;
    /** Streaming: each piece of text as it settles. */
    onText?: (piece: string) => void;
}

export interface CompletionAnswer {
    text: string;
    stopType: StopType;
    stoppingWord: string;
    /** The model saw only part of the text (the window around the cursor). */
    truncated: boolean;
    /** The hole's size in tokens. */
    budget: number;
    usage: Usage;
}

/** Token counts and time of a request, for llama-server's `timings` and OpenAI's `usage`. */
export interface Usage {
    promptTokens: number;
    completionTokens: number;
    cachedTokens: number;
    ms: number;
}

export class ModelService {
    private readonly completer = new InlineCompleter();
    /** Requests the model is working on or that wait for it. */
    private admitted = 0;
    /** Names each completion request, so that none cancels or takes the suggestion of another (InlineCompleter's uri). */
    private requests = 0;
    /** When the server started, in seconds (OpenAI's `created` of the model). */
    readonly started = Math.floor(Date.now() / 1000);

    constructor(
        private readonly host: ModelHost,
        /** The server's settings: what a request does not set. */
        readonly settings: Settings,
        /** Requests that may wait while one runs; one more is refused with 503. */
        private readonly queue: number,
        private readonly maxTextChars: number
    ) {}

    /** The model's name as clients see it: the catalog id or the file's name, never the server's path. */
    get modelId(): string {
        return basename(this.settings.model);
    }

    get state(): ModelHost["status"] {
        return this.host.status;
    }

    fields(exchange: Exchange): RequestFields {
        return new RequestFields(exchange.body, this.maxTextChars);
    }

    model(): Promise<DiffusionModel> {
        return this.host.model();
    }

    /**
     * Runs work on the model once the requests before it are done, or refuses it with 503 when `queue` requests
     * already wait. The answer comes as soon as the client has gone or the time limit has passed; the model skips
     * such a request when its turn comes, or stops it at its next step.
     */
    async run<T>(exchange: Exchange, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
        if (this.admitted > this.queue) {
            const waiting = this.admitted - 1;
            const why =
                waiting === 0
                    ? "it is working on a request and queues none"
                    : `${waiting} request${waiting === 1 ? " waits" : "s wait"} for the model, the most it queues`;
            throw new HttpError(503, `The server is busy: ${why}. Try again shortly.`, { "Retry-After": "1" });
        }
        this.admitted++;
        try {
            return await untilAborted(work(exchange.signal), exchange.signal);
        } finally {
            this.admitted--;
        }
    }

    /** Runs a job through the model host (its status, its latency). */
    job<T>(exchange: Exchange, job: (model: DiffusionModel, signal: AbortSignal) => Promise<T>): Promise<T> {
        return this.run(exchange, (signal) => this.host.run((model) => job(model, signal)));
    }

    /**
     * The cache a request reuses (dreamCoder.cacheReuse): the client's own id where it sends one (llama-server's
     * `id_slot`, OpenAI's `user`), else its address. Reuse is approximate and keyed, so a key two clients share
     * costs speed, never correctness.
     */
    documentFor(exchange: Exchange, fields: RequestFields): string {
        const slot = fields.integer("id_slot", -1);
        if (slot !== undefined && slot >= 0) return `id_slot ${slot}`;
        const user = fields.text("user");
        return user ? `user ${user}` : `address ${exchange.client}`;
    }

    /** An inline completion at `offset`: the editor's ghost text, as the language server makes it. */
    async complete(exchange: Exchange, request: CompletionRequest): Promise<CompletionAnswer> {
        const { text, offset, settings } = request;
        const budget = completionBudget(text, offset, settings);
        const stream = request.onText && new SettledStream(request.onText, budget.midLine, request.stop, lineEnding(text));
        // Stops the decode when t_max_predict_ms has passed and a whole line is settled.
        const enough = new AbortController();
        let settled = "";
        let firstStep: number | undefined;
        const uri = `request ${++this.requests}`;
        return this.run(exchange, async (signal) => {
            let completion: Completion;
            let stopType: StopType;
            try {
                completion = await this.completer.complete(this.host, uri, text, offset, {
                    settings,
                    signal: AbortSignal.any([signal, enough.signal]),
                    document: request.document,
                    onPartial: (p) => {
                        settled = settledPart(p.texts[0] ?? "");
                        stream?.step(p.texts[0] ?? "");
                        firstStep ??= performance.now();
                        if (request.predictMs && performance.now() - firstStep >= request.predictMs && settled.includes("\n")) enough.abort();
                    }
                });
                // A completion from the cache ran nothing: whether it filled its hole is told by its length.
                const filled = completion.denoised
                    ? !holeEnded(completion.denoised)
                    : (await this.host.model()).tokenize(completion.text).length >= budget.tokens;
                stopType = filled ? "limit" : "eos";
            } catch (e) {
                if (!(e instanceof DecodeCancelledError && enough.signal.aborted && !signal.aborted)) throw e;
                // The whole lines settled so far, with the document's line breaks, as the completer ends its texts.
                const lines = budget.midLine ? settled.split(/\r\n|\r|\n/)[0] : settled.slice(0, settled.lastIndexOf("\n") + 1);
                completion = { text: withLineEnding(lines, lineEnding(text)), denoised: null };
                stopType = "limit";
            }
            const cut = cutAtStop(completion.text, request.stop);
            stream?.end(cut.text);
            const window = completion.window;
            return {
                text: cut.text,
                stopType: cut.word ? "word" : stopType,
                stoppingWord: cut.word,
                truncated: window !== undefined && (window.start > 0 || window.end < text.length),
                budget: budget.tokens,
                usage: usageOf(completion.denoised, completion.text)
            };
        });
    }
}

/** Settles a promise as soon as `signal` aborts, whatever the work still does. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
    return new Promise<T>((resolve, reject) => {
        const onAbort = () => reject(new DecodeCancelledError());
        if (signal.aborted) onAbort();
        signal.addEventListener("abort", onAbort, { once: true });
        work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
    });
}

/** Whether the (first) hole ended with an end-of-text of its own, before its last place. */
export function holeEnded(denoised: Denoised): boolean {
    const hole = denoised.result.holes[0];
    return hole !== undefined && hole.textTokens.length < hole.tokens.length;
}

/** The counts of a request that ran nothing: an answer from the cache, or a request for no tokens. */
export const NOTHING_RAN: Readonly<Usage> = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, ms: 0 };

/** The counts of a run. */
export function usageOf(denoised: Denoised | null, text: string): Usage {
    if (!denoised) return NOTHING_RAN;
    const { result } = denoised;
    const generated = result.holes.reduce((a, h) => a + h.length, 0);
    return {
        promptTokens: result.tokens.length - generated,
        completionTokens: text ? result.holes.reduce((a, h) => a + h.textTokens.length, 0) : 0,
        cachedTokens: result.reusedTokens,
        ms: result.totalMs
    };
}

/** The text before the first stop word, and the word. */
export function cutAtStop(text: string, stop: string[]): { text: string; word: string } {
    let at = -1;
    let word = "";
    for (const s of stop) {
        const i = text.indexOf(s);
        if (i >= 0 && (at < 0 || i < at)) [at, word] = [i, s];
    }
    return at < 0 ? { text, word: "" } : { text: text.slice(0, at), word };
}

/**
 * The part of a hole's partial text that later steps do not change: up to its first place still masked, and short
 * of a token that holds only part of a character's bytes (shown as U+FFFD until its neighbour is revealed).
 */
function settledPart(partial: string): string {
    const masked = partial.indexOf(PLACEHOLDER);
    const revealed = masked < 0 ? partial : partial.slice(0, masked);
    const broken = revealed.indexOf("\ufffd");
    return broken < 0 ? revealed : revealed.slice(0, broken);
}

/**
 * A hole's text streamed in order as it settles. Diffusion reveals places anywhere in the hole; only a run from its
 * start is final. A completion in the middle of a line ends with the line, and every stream before a stop word:
 * text that could be the start of one is held back until the next step says.
 */
export class SettledStream {
    private sent = "";
    private readonly holdBack: number;

    constructor(
        private readonly onText: (piece: string) => void,
        private readonly firstLineOnly: boolean,
        private readonly stop: string[],
        /** The document's line break, which the final text has (models write LF). */
        private readonly eol: "\r\n" | "\n" = "\n"
    ) {
        this.holdBack = Math.max(0, ...stop.map((s) => s.length - 1));
    }

    /** After a step: the hole's partial text. */
    step(partial: string): void {
        let text = withLineEnding(settledPart(partial), this.eol);
        if (this.firstLineOnly) text = text.split(/\r\n|\r|\n/)[0];
        const cut = cutAtStop(text, this.stop);
        this.send(cut.word ? cut.text : cut.text.slice(0, cut.text.length - this.holdBack));
    }

    /** The final text. */
    end(text: string): void {
        this.send(text);
    }

    private send(text: string): void {
        if (text.length <= this.sent.length || !text.startsWith(this.sent)) return;
        this.onText(text.slice(this.sent.length));
        this.sent = text;
    }
}

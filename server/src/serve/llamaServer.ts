// llama-server's own endpoints, as far as its clients use them (llama.vscode, llama.vim, Continue's llama.cpp
// provider): /health, /props, /tokenize, /detokenize, /infill and /completion, with llama-server's request fields
// and answer shape. A diffusion model fills the hole between the prefix and the suffix as the editor's ghost text.
import manifest from "../../../package.json";
import { DECLARED, type Settings } from "../../../common/settings";
import { type Exchange, HttpError, type Route } from "./http";
import type { RequestFields } from "./fields";
import { type CompletionAnswer, type ModelService, NOTHING_RAN } from "./service";

/** n_predict sets both hole sizes of a completion (in the middle of a line, at an empty line), each within its setting's
 * maximum; 0 asks for no completion, so it sets no hole. */
export function budgetSettings(tokens: number | undefined): Record<string, number> {
    if (!tokens) return {};
    const within = (key: string) => Math.min(tokens, DECLARED[key].maximum ?? tokens);
    return { "inlineCompletion.lineTokens": within("inlineCompletion.lineTokens"), "inlineCompletion.blockTokens": within("inlineCompletion.blockTokens") };
}

/** What a completion request sets besides the decoding fields: the hole's size, no debounce (the client has its own),
 * and no cache kept for a client that asks for none (llama-server's cache_prompt). */
export function completionSettings(service: ModelService, fields: RequestFields, tokens: number | undefined): Settings {
    const reuse = fields.boolean("cache_prompt") ?? true;
    return fields.settings(service.settings, {}, { ...budgetSettings(tokens), "inlineCompletion.debounceMs": 0, ...(reuse ? {} : { cacheReuse: false }) });
}

/** llama-server's input_extra: chunks of other files, [{filename, text}], shown before the prefix. */
function extraContext(fields: RequestFields): string {
    const chunks = fields.list("input_extra") ?? [];
    return chunks
        .map((chunk, i) => {
            const text = (chunk as { text?: unknown } | null)?.text;
            if (typeof text !== "string") throw new HttpError(400, `"input_extra" must be a list of {"filename", "text"} objects; item ${i} has no text.`);
            const counted = fields.counted(text);
            return counted.endsWith("\n") || counted === "" ? counted : `${counted}\n`;
        })
        .join("");
}

/** The decoding a request ran with, by llama-server's names where it has one. */
function generationSettings(service: ModelService, settings: Settings, budget: number) {
    return {
        n_predict: budget,
        model: service.modelId,
        temperature: settings.temperature,
        top_p: settings.topP,
        steps: settings.steps,
        algorithm: settings.algorithm,
        cache: settings.cache,
        block_length: settings.blockLength,
        confidence_threshold: settings.confidenceThreshold
    };
}

/** The answer of /infill and /completion in llama-server's shape (the fields its clients read). */
function completionBody(service: ModelService, settings: Settings, nCtx: number, idSlot: number, answer: CompletionAnswer) {
    const { usage } = answer;
    const perSecond = (n: number, ms: number) => (ms > 0 ? (1000 * n) / ms : 0);
    return {
        index: 0,
        content: answer.text,
        tokens: [],
        id_slot: idSlot,
        stop: true,
        model: service.modelId,
        tokens_predicted: usage.completionTokens,
        tokens_evaluated: usage.promptTokens,
        generation_settings: { n_ctx: nCtx, ...generationSettings(service, settings, answer.budget) },
        has_new_line: answer.text.includes("\n"),
        truncated: answer.truncated,
        stop_type: answer.stopType,
        stopping_word: answer.stoppingWord,
        tokens_cached: usage.cachedTokens,
        // A diffusion model reads the prompt in every denoising pass, not once before generating: all its time is
        // generation's.
        timings: {
            prompt_n: usage.promptTokens - usage.cachedTokens,
            prompt_ms: 0,
            prompt_per_token_ms: 0,
            prompt_per_second: 0,
            predicted_n: usage.completionTokens,
            predicted_ms: usage.ms,
            predicted_per_token_ms: usage.completionTokens ? usage.ms / usage.completionTokens : 0,
            predicted_per_second: perSecond(usage.completionTokens, usage.ms)
        }
    };
}

/** /infill and /completion: the text before the cursor and after it, from the request's fields. */
async function completion(service: ModelService, exchange: Exchange, around: (fields: RequestFields) => { before: string; after: string }) {
    const fields = service.fields(exchange);
    const { before, after } = around(fields);
    const nPredict = fields.integer("n_predict", -1);
    const tokens = nPredict === undefined || nPredict < 0 ? undefined : nPredict;
    const settings = completionSettings(service, fields, tokens);
    const stop = fields.textList("stop");
    const predictMs = fields.integer("t_max_predict_ms", 0);
    const stream = fields.boolean("stream") ?? false;
    const idSlot = fields.integer("id_slot", -1) ?? -1;
    const document = service.documentFor(exchange, fields);
    const nCtx = (await service.model()).info.nCtxTrain;
    const text = before + after;
    const empty: CompletionAnswer = {
        text: "",
        stopType: "limit",
        stoppingWord: "",
        truncated: false,
        budget: 0,
        usage: NOTHING_RAN
    };
    const events = stream ? exchange.events() : undefined;
    // n_predict 0 asks llama-server to read the prompt into its cache only (llama.vscode sends one as new context
    // arrives): a diffusion model's cache holds a request's window, made when a completion runs.
    const answer =
        tokens === 0
            ? empty
            : await service.complete(exchange, {
                  text,
                  offset: before.length,
                  settings,
                  stop,
                  document,
                  predictMs,
                  onText: events && ((piece) => events.send({ index: 0, content: piece, tokens: [], stop: false, id_slot: idSlot }))
              });
    const body = completionBody(service, settings, nCtx, idSlot, answer);
    if (!events) return body;
    events.send({ ...body, content: "" });
    events.end(false);
    return undefined;
}

export function llamaServerRoutes(service: ModelService): Route[] {
    const health = async () => {
        const { state, message } = service.state;
        if (state === "ready" || state === "busy") return { status: "ok" };
        if (state === "error") throw new HttpError(500, `The model could not be loaded: ${message}`);
        throw new HttpError(503, "Loading model");
    };
    return [
        { method: "GET", path: "/health", handle: health },
        { method: "GET", path: "/v1/health", handle: health },
        {
            method: "GET",
            path: "/props",
            handle: async () => {
                const model = await service.model();
                const { settings } = service;
                return {
                    default_generation_settings: {
                        n_ctx: model.info.nCtxTrain,
                        params: { ...generationSettings(service, settings, settings.inlineCompletion.blockTokens), stream: false }
                    },
                    // One request at a time: the model is shared by a queue, not split into slots.
                    total_slots: 1,
                    model_path: service.modelId,
                    chat_template: model.info.chatTemplate ?? model.file.chatTemplate ?? "",
                    modalities: { vision: false, audio: false },
                    build_info: `dream-coder ${manifest.version}`,
                    is_sleeping: false
                };
            }
        },
        {
            method: "POST",
            path: "/tokenize",
            handle: async (exchange) => {
                const fields = service.fields(exchange);
                const content = fields.requiredText("content");
                const addSpecial = fields.boolean("add_special") ?? false;
                const parseSpecial = fields.boolean("parse_special") ?? true;
                const withPieces = fields.boolean("with_pieces") ?? false;
                const model = await service.model();
                const tokens = [...model.tokenize(content, { addSpecial, parseSpecial })];
                return { tokens: withPieces ? tokens.map((id) => ({ id, piece: model.detokenize([id], true) })) : tokens };
            }
        },
        {
            method: "POST",
            path: "/detokenize",
            handle: async (exchange) => {
                const tokens = service.fields(exchange).list("tokens") ?? [];
                const model = await service.model();
                // llama.cpp reads a token's text by its id: one outside the vocabulary would read past the table.
                const bad = tokens.findIndex((t) => !Number.isInteger(t) || (t as number) < 0 || (t as number) >= model.info.nVocab);
                if (bad >= 0) {
                    throw new HttpError(400, `"tokens" must be token ids from 0 to ${model.info.nVocab - 1}; item ${bad} is ${JSON.stringify(tokens[bad])}.`);
                }
                return { content: model.detokenize(tokens as number[], true) };
            }
        },
        {
            method: "POST",
            path: "/infill",
            // llama-server's layout: input_extra, then input_prefix, then the hole, whose text starts with `prompt`.
            handle: (exchange) =>
                completion(service, exchange, (fields) => {
                    const extra = extraContext(fields);
                    const prefix = fields.text("input_prefix") ?? "";
                    const prompt = fields.text("prompt") ?? "";
                    return { before: extra + prefix + prompt, after: fields.text("input_suffix") ?? "" };
                })
        },
        {
            method: "POST",
            path: "/completion",
            handle: (exchange) => completion(service, exchange, (fields) => ({ before: fields.requiredText("prompt"), after: "" }))
        }
    ];
}

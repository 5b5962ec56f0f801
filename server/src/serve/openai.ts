// OpenAI's endpoints as local code tools call them: /v1/models, /v1/completions (a prompt and a suffix: the hole
// between them filled, as ghost text), /v1/chat/completions (an instruct model's reply), both streamed as
// server-sent events ending with `data: [DONE]` when the client asks.
import { randomUUID } from "node:crypto";
import { MAX_HOLE_TOKENS } from "../holes";
import { replyTo } from "../jobs/chat";
import type { ChatMessage } from "../runtime/runtime";
import { type Exchange, HttpError, type Route } from "./http";
import type { RequestFields } from "./fields";
import { completionSettings } from "./llamaServer";
import { cutAtStop, holeEnded, type ModelService, NOTHING_RAN, SettledStream, type StopType, type Usage, usageOf } from "./service";

/** A chat reply's hole when the client names no max_tokens: a diffusion model decodes the whole hole, so the cost
 * of a reply is set by this, not by where the reply ends. */
const DEFAULT_REPLY_TOKENS = 256;

/** The fill-in-the-middle markers of Qwen2.5-Coder, which Dream-Coder's tokenizer shares: Continue and twinny send a
 * prompt written with them to /v1/completions instead of a `suffix`. */
const FIM = { prefix: "<|fim_prefix|>", suffix: "<|fim_suffix|>", middle: "<|fim_middle|>" };

/** The text before and after the hole: `prompt` and `suffix`, or a prompt in the FIM markers' layout. */
export function splitFim(prompt: string, suffix: string | undefined): { before: string; after: string } {
    if (suffix !== undefined) return { before: prompt, after: suffix };
    const p = prompt.indexOf(FIM.prefix);
    const s = prompt.indexOf(FIM.suffix, p);
    const m = prompt.indexOf(FIM.middle, s);
    if (p < 0 || s < 0 || m < 0) return { before: prompt, after: "" };
    // Text before the prefix marker (a file's name, other files) is context above the prefix; text after the
    // middle marker starts the hole, as llama-server's `prompt` after FIM_MID does.
    return {
        before: prompt.slice(0, p) + prompt.slice(p + FIM.prefix.length, s) + prompt.slice(m + FIM.middle.length),
        after: prompt.slice(s + FIM.suffix.length, m)
    };
}

const finishReason = (stop: StopType) => (stop === "limit" ? "length" : "stop");

const usageBody = (u: Usage) => ({ prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.promptTokens + u.completionTokens });

/** What OpenAI's API has and this server does not do: one choice a request, no echo of the prompt. */
function refuseUnsupported(fields: RequestFields): void {
    for (const name of ["n", "best_of"]) {
        if ((fields.integer(name, 1) ?? 1) > 1) throw new HttpError(400, `"${name}" must be 1: this server answers with one choice a request.`);
    }
    if (fields.boolean("echo")) throw new HttpError(400, `"echo" must be false: this server answers with the completion only.`);
}

/** The hole's size: max_tokens (or max_completion_tokens, its newer name); -1, as llama.vscode's chat sends it, or
 * none: the server's. */
function maxTokens(fields: RequestFields): number | undefined {
    const tokens = fields.integer("max_completion_tokens", -1) ?? fields.integer("max_tokens", -1);
    return tokens === undefined || tokens < 0 ? undefined : tokens;
}

/** The message texts in order, each message a role and text (parts of type "text" joined). */
function chatMessages(fields: RequestFields): ChatMessage[] {
    const list = fields.list("messages");
    if (!list?.length) throw new HttpError(400, `"messages" must be a non-empty list of {"role", "content"} messages.`);
    return list.map((m, i) => {
        const { role, content } = (typeof m === "object" && m !== null ? m : {}) as { role?: unknown; content?: unknown };
        // OpenAI's newer name for the system message.
        const as = role === "developer" ? "system" : role;
        if (as !== "system" && as !== "user" && as !== "assistant") {
            throw new HttpError(400, `messages[${i}] has role ${JSON.stringify(role)}: this server takes system, user and assistant messages.`);
        }
        if (typeof content === "string") return { role: as, content: fields.counted(content) };
        if (Array.isArray(content) && content.every((part) => part?.type === "text" && typeof part.text === "string")) {
            return { role: as, content: fields.counted(content.map((part) => part.text).join("")) };
        }
        throw new HttpError(400, `messages[${i}].content must be text, or a list of {"type": "text", "text"} parts: the model reads text only.`);
    });
}

export function openAiRoutes(service: ModelService): Route[] {
    const id = (kind: string) => `${kind}-${randomUUID()}`;
    const created = () => Math.floor(Date.now() / 1000);
    return [
        {
            method: "GET",
            path: "/v1/models",
            handle: async () => {
                const model = await service.model();
                return {
                    object: "list",
                    data: [
                        {
                            id: service.modelId,
                            object: "model",
                            created: service.started,
                            owned_by: "dream-coder",
                            meta: {
                                architecture: model.info.architecture,
                                n_ctx_train: model.info.nCtxTrain,
                                n_vocab: model.info.nVocab,
                                size: model.info.sizeBytes
                            }
                        }
                    ]
                };
            }
        },
        {
            method: "POST",
            path: "/v1/completions",
            handle: async (exchange: Exchange) => {
                const fields = service.fields(exchange);
                refuseUnsupported(fields);
                const prompts = typeof fields.body.prompt === "string" ? [fields.body.prompt] : fields.list("prompt");
                if (prompts?.length !== 1 || typeof prompts[0] !== "string") {
                    throw new HttpError(400, `"prompt" must be text (or a list of one text): this server completes one prompt a request.`);
                }
                const { before, after } = splitFim(fields.counted(prompts[0]), fields.text("suffix"));
                const tokens = maxTokens(fields);
                const settings = completionSettings(service, fields, tokens);
                const stop = fields.textList("stop");
                const stream = fields.boolean("stream") ?? false;
                const document = service.documentFor(exchange, fields);
                const base = { id: id("cmpl"), object: "text_completion", created: created(), model: service.modelId };
                const events = stream ? exchange.events() : undefined;
                const choice = (text: string, finish: string | null) => ({ index: 0, text, logprobs: null, finish_reason: finish });
                const answer =
                    tokens === 0
                        ? undefined
                        : await service.complete(exchange, {
                              text: before + after,
                              offset: before.length,
                              settings,
                              stop,
                              document,
                              onText: events && ((piece) => events.send({ ...base, choices: [choice(piece, null)] }))
                          });
                const finish = answer ? finishReason(answer.stopType) : "length";
                const usage = usageBody(answer?.usage ?? NOTHING_RAN);
                if (!events) return { ...base, choices: [choice(answer?.text ?? "", finish)], usage };
                events.send({ ...base, choices: [choice("", finish)], usage });
                events.end(true);
                return undefined;
            }
        },
        {
            method: "POST",
            path: "/v1/chat/completions",
            handle: async (exchange: Exchange) => {
                const fields = service.fields(exchange);
                refuseUnsupported(fields);
                const messages = chatMessages(fields);
                const requested = maxTokens(fields);
                const settings = fields.settings(service.settings);
                const stop = fields.textList("stop");
                const stream = fields.boolean("stream") ?? false;
                const model = await service.model();
                let prompt: string;
                try {
                    prompt = await model.formatChat(messages);
                } catch (e) {
                    throw new HttpError(400, `The model's chat template cannot take these messages: ${(e as Error).message}.`);
                }
                const promptTokens = model.tokenize(prompt, { parseSpecial: true }).length + (model.info.addBos ? 1 : 0);
                const room = Math.min(MAX_HOLE_TOKENS, model.info.nCtxTrain - promptTokens);
                if (room < 1) {
                    throw new HttpError(
                        400,
                        `The messages take ${promptTokens.toLocaleString("en")} tokens, the model's whole trained context of ${model.info.nCtxTrain.toLocaleString("en")}: shorten them.`
                    );
                }
                // Like llama-server's n_predict, a reply longer than the context holds is lowered to what it holds.
                const tokens = Math.min(requested ?? DEFAULT_REPLY_TOKENS, room);
                const base = { id: id("chatcmpl"), object: "chat.completion.chunk", created: created(), model: service.modelId };
                const events = stream ? exchange.events() : undefined;
                const chunk = (delta: Record<string, string>, finish: string | null) => ({ ...base, choices: [{ index: 0, delta, finish_reason: finish }] });
                let first = true;
                const settled =
                    events &&
                    new SettledStream(
                        (piece) => {
                            events.send(chunk(first ? { role: "assistant", content: piece } : { content: piece }, null));
                            first = false;
                        },
                        false,
                        stop
                    );
                const denoised =
                    tokens === 0
                        ? null
                        : await service.job(exchange, (m, signal) =>
                              replyTo(m, prompt, tokens, { settings, signal, onPartial: settled && ((p) => settled.step(p.texts[0] ?? "")) })
                          );
                const cut = cutAtStop(denoised?.texts[0] ?? "", stop);
                const finish = finishReason(cut.word ? "word" : denoised && holeEnded(denoised) ? "eos" : "limit");
                const usage = usageBody(usageOf(denoised, cut.text));
                if (!events || !settled) {
                    return {
                        ...base,
                        object: "chat.completion",
                        choices: [{ index: 0, message: { role: "assistant", content: cut.text }, finish_reason: finish }],
                        usage
                    };
                }
                settled.end(cut.text);
                if (first) events.send(chunk({ role: "assistant", content: "" }, null));
                events.send({ ...chunk({}, finish), usage });
                events.end(true);
                return undefined;
            }
        }
    ];
}

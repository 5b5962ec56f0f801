// What only a diffusion model does, as the editor's jobs do it: /dream/fill fills every hole marker of a text
// jointly in one run, /dream/rewrite rewrites a span under an instruction and answers with span edits. With
// "stream": true each denoising step is an event (every hole's text so far, ░ where still masked), then the result.
import { HoleParser } from "../holes";
import type { Denoised, JobOptions } from "../jobs/denoise";
import { fillHoles } from "../jobs/fill";
import { rewriteSelection } from "../jobs/rewrite";
import type { DiffusionModel } from "../runtime/runtime";
import { applyEdits, lineEnding, type SpanEdit } from "../spanEdits";
import { type Exchange, HttpError, type Route } from "./http";
import type { RequestFields } from "./fields";
import type { ModelService } from "./service";

interface JobAnswer {
    edits: SpanEdit[];
    denoised: Denoised | null;
}

/** Runs an editing job; with "stream" its steps are events before the result, else the result is the answer. */
async function editJob<T extends JobAnswer>(
    service: ModelService,
    exchange: Exchange,
    fields: RequestFields,
    options: Omit<JobOptions, "signal" | "onPartial">,
    job: (model: DiffusionModel, options: JobOptions) => Promise<T>,
    answer: (result: T) => Record<string, unknown>
): Promise<unknown> {
    const events = (fields.boolean("stream") ?? false) ? exchange.events() : undefined;
    const result = await service.job(exchange, (model, signal) =>
        job(model, {
            ...options,
            signal,
            onPartial: events && ((p) => events.send({ type: "step", step: p.step, total_steps: p.totalSteps, texts: p.texts }))
        })
    );
    const body = { ...answer(result), edits: result.edits, trace: result.denoised?.trace ?? null };
    if (!events) return body;
    events.send({ type: "result", ...body });
    events.end(true);
    return undefined;
}

export function diffusionRoutes(service: ModelService): Route[] {
    return [
        {
            method: "POST",
            path: "/dream/fill",
            handle: async (exchange) => {
                const fields = service.fields(exchange);
                const text = fields.requiredText("text");
                const settings = fields.settings(service.settings, { marker: "holes.marker", hole_tokens: "holes.defaultTokens" });
                const holes = new HoleParser(settings.holes.marker).parse(text);
                if (holes.length === 0) {
                    const marker = settings.holes.marker;
                    throw new HttpError(400, `The text has no hole marker: write ${marker} where code should go (${marker}:40 asks for about 40 tokens).`);
                }
                return editJob(
                    service,
                    exchange,
                    fields,
                    { settings, document: service.documentFor(exchange, fields) },
                    (model, options) => fillHoles(model, text, holes, options),
                    (r) => ({ text: applyEdits(text, r.edits), holes: holes.length })
                );
            }
        },
        {
            method: "POST",
            path: "/dream/rewrite",
            handle: async (exchange) => {
                const fields = service.fields(exchange);
                const text = fields.requiredText("text");
                const start = fields.integer("start", 0, text.length) ?? 0;
                const end = fields.integer("end", start, text.length) ?? text.length;
                const instruction = fields.text("instruction");
                if (instruction === undefined) throw new HttpError(400, `"instruction" is missing: say what to change (a JSON string).`);
                // The language is only named to the model ("Rewrite this python code"); "source" reads for any.
                const languageId = fields.text("language") ?? "source";
                const settings = fields.settings(service.settings, { mode: "rewrite.mode" });
                const request = { selection: text.slice(start, end), at: start, eol: lineEnding(text), instruction, languageId, mode: settings.rewrite.mode };
                return editJob(
                    service,
                    exchange,
                    fields,
                    { settings, document: service.documentFor(exchange, fields) },
                    (model, options) => rewriteSelection(model, request, options),
                    (r) => ({ text: r.text, document: applyEdits(text, r.edits) })
                );
            }
        }
    ];
}

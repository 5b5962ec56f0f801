// A reply from an instruct model: the prompt its chat template made, then one hole of `tokens` masks for the reply.
// Rewrite's instruct mode asks through it, and so does the HTTP server's chat endpoint.
import type { DiffusionModel } from "../runtime/runtime";
import { denoise, type Denoised, type JobOptions } from "./denoise";

/** The reply to `prompt` (model.formatChat's output): the hole's text ends at the model's end-of-turn. */
export function replyTo(model: DiffusionModel, prompt: string, tokens: number, options: JobOptions): Promise<Denoised> {
    // A chat prompt, not a window of a document: keeping its cache would only push the documents' caches out.
    return denoise(model, model.layout([{ special: prompt }, { hole: tokens }]), { ...options, document: undefined });
}

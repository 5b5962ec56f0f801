// Sketch-then-fill: a whole function body drawn in one denoising run from the signature and docstring
// before the cursor (and the code after it), with a generous budget; partial text streams as it forms.
import { cutWindow } from "../contextWindow";
import type { DiffusionModel } from "../runtime/runtime";
import { lineEnding, withLineEnding, type SpanEdit } from "../spanEdits";
import { budgetHole, contextBudget, denoise, type Denoised, type JobOptions } from "./denoise";

export async function sketchBody(model: DiffusionModel, text: string, offset: number, options: JobOptions): Promise<{ edit: SpanEdit; denoised: Denoised }> {
    const { settings } = options;
    const win = cutWindow(text, offset, offset, contextBudget(model, settings, settings.sketch.tokens), (s) => model.tokenize(s).length, 0.9);
    const layout = model.layout([text.slice(win.start, offset), budgetHole(model, settings, settings.sketch.tokens), text.slice(offset, win.end)]);
    const denoised = await denoise(model, layout, options);
    return { edit: { start: offset, end: offset, text: withLineEnding(denoised.texts[0], lineEnding(text)) }, denoised };
}

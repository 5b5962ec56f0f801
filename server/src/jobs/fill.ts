// Hole filling: every marker of the document (or a range) becomes a hole, all decoded jointly in one run,
// with the document's lines around them as context. One edit per hole; nothing else is touched.
import { cutWindow } from "../contextWindow";
import type { Hole } from "../holes";
import type { Segment, DiffusionModel } from "../runtime/runtime";
import { lineEnding, withLineEnding, type SpanEdit } from "../spanEdits";
import { budgetHole, contextBudget, denoise, type Denoised, type JobOptions } from "./denoise";

export async function fillHoles(model: DiffusionModel, text: string, holes: Hole[], options: JobOptions): Promise<{ edits: SpanEdit[]; denoised: Denoised }> {
    if (holes.length === 0) throw new RangeError("there is no hole marker to fill");
    const { settings } = options;
    const generated = holes.reduce((a, h) => a + (h.size ?? settings.holes.defaultTokens), 0);
    const win = cutWindow(text, holes[0].start, holes[holes.length - 1].end, contextBudget(model, settings, generated), (s) => model.tokenize(s).length);
    const segments: Segment[] = [];
    let at = win.start;
    for (const h of holes) {
        // `???:N` is N masks that never grow; a marker without a size is a budget (variable-length holes).
        segments.push(text.slice(at, h.start), h.size ? { hole: h.size } : budgetHole(model, settings, settings.holes.defaultTokens));
        at = h.end;
    }
    segments.push(text.slice(at, win.end));
    const denoised = await denoise(model, model.layout(segments), options);
    const eol = lineEnding(text);
    return { edits: holes.map((h, i) => ({ start: h.start, end: h.end, text: withLineEnding(denoised.texts[i], eol) })), denoised };
}

// What every job shares: decoding parameters from the settings, the per-step partial text of each hole
// (revealed tokens, PLACEHOLDER where still masked) and the trace of the finished run.
import { PLACEHOLDER, type DenoiseTrace } from "../../../common/protocol";
import type { DecodeParams } from "../runtime/native";
import type { DecodeResult, DiffusionModel, Segment, SequenceLayout } from "../runtime/runtime";
import type { Settings } from "../../../common/settings";

export interface JobOptions {
    settings: Settings;
    signal?: AbortSignal;
    /**
     * The document the request's window comes from: with settings.cacheReuse its cache is kept for the next
     * request on the same document. Left out for layouts that are not a window of it (a chat prompt).
     */
    document?: string;
    /** After every step: each hole's text so far. */
    onPartial?: (partial: { step: number; totalSteps: number; texts: string[] }) => void;
    /** Only the holes' first lines are kept (a completion in the middle of a line): see DecodeParams.stopAtLineEnd. */
    firstLineOnly?: boolean;
}

export interface Denoised {
    /** Each hole's text: end-of-text ends it. */
    texts: string[];
    trace: DenoiseTrace;
    result: DecodeResult;
}

export function decodeParams(settings: Settings, generated: number): DecodeParams {
    const params: DecodeParams = {
        steps: settings.steps > 0 ? Math.min(settings.steps, generated) : generated,
        algorithm: settings.algorithm,
        temperature: settings.temperature,
        topP: settings.topP,
        earlyStop: true
    };
    if (settings.confidenceThreshold > 0) params.confidenceThreshold = settings.confidenceThreshold;
    // The cached modes decode block by block; exact mode keeps Dream's time grid over the whole hole.
    if (settings.cache !== "none") Object.assign(params, { cache: settings.cache, schedule: "block", blockLength: settings.blockLength });
    return params;
}

/**
 * A hole of at most `tokens`. With a model that has expand and delete tokens (DreamOn's), it starts at
 * holes.startTokens masks and grows or shrinks to what the code needs, up to `tokens`; else it is `tokens` masks.
 */
export function budgetHole(model: DiffusionModel, settings: Settings, tokens: number): Segment {
    const start = settings.holes.startTokens;
    const variable = model.info.expandToken >= 0 && start > 0 && start < tokens && settings.algorithm !== "origin";
    return variable ? { hole: start, maxLength: tokens } : { hole: tokens };
}

/** Tokens of document text a request may show around `generated` masked ones: the setting, within the model's trained context. */
export function contextBudget(model: DiffusionModel, settings: Settings, generated: number): number {
    return Math.min(settings.contextTokens, trainedRoom(model, generated));
}

/** Tokens of text the model's trained context holds besides `generated` ones: two places go to the BOS /
 * shifted-logits token the layout may put in front. */
export function trainedRoom(model: DiffusionModel, generated: number): number {
    return Math.max(0, model.info.nCtxTrain - generated - 2);
}

export async function denoise(model: DiffusionModel, layout: SequenceLayout, options: JobOptions): Promise<Denoised> {
    // A variable-length hole's budget, not its start: the steps spread over what it may grow to.
    const generated = layout.holes.reduce((a, h) => a + (h.maxLength ?? h.length), 0);
    const params = { ...decodeParams(options.settings, generated), ...(options.firstLineOnly ? { stopAtLineEnd: true } : {}) };
    const pieces = new Map<number, string>();
    const piece = (t: number) => {
        let p = pieces.get(t);
        if (p === undefined) {
            p = model.isEndToken(t) ? "" : model.detokenize([t]);
            pieces.set(t, p);
        }
        return p;
    };
    // The holes' tokens as they are revealed; -1 is still masked.
    let current = layout.holes.map((h) => new Array<number>(h.length).fill(-1));
    const onPartial = options.onPartial;
    const variable = layout.holes.some((h) => h.maxLength !== undefined);
    // Variable-length holes: each hole's length after each step, for the denoising view.
    const holeLengths: number[][] = [];
    // The decoder's plan as of its last step: the run's step count once it has ended.
    let totalSteps = 0;
    // Exact mode keeps no cache: the runtime ignores the key there.
    const reuse = options.document !== undefined && options.settings.cacheReuse;
    const result = await model.decodeLayout(layout, {
        ...params,
        ...(reuse ? { reuseKey: options.document } : {}),
        signal: options.signal,
        onStep: (s) => {
            totalSteps = s.totalSteps;
            if (s.holeTokens) holeLengths[s.step] = s.holeTokens.map((toks) => toks.length);
            if (!onPartial) return;
            if (s.holeTokens) {
                // Variable-length holes: the step says what each hole now holds.
                current = s.holeTokens.map((toks) => toks.map((t) => (t === model.info.mask ? -1 : t)));
            } else {
                s.positions.forEach((pos, i) => {
                    const h = layout.holes.findIndex((hole) => pos >= hole.start && pos < hole.start + hole.length);
                    if (h >= 0) current[h][pos - layout.holes[h].start] = s.tokens[i];
                });
            }
            onPartial({ step: s.step + 1, totalSteps: s.totalSteps, texts: current.map((toks) => partialText(toks, model, piece)) });
        }
    });
    const tokens: DenoiseTrace["tokens"] = [];
    result.holes.forEach((h, hole) => {
        for (let i = 0; i < h.tokens.length && !model.isEndToken(h.tokens[i]); i++) {
            tokens.push({ text: piece(h.tokens[i]), step: h.revealStep[i], hole });
        }
    });
    return {
        texts: result.holes.map((h) => h.text),
        result,
        trace: {
            tokens,
            totalSteps,
            forwardPasses: result.forwardPasses,
            totalMs: result.totalMs,
            msPerStep: result.msPerStep,
            forwardMs: result.forwardMs,
            sampleMs: result.sampleMs,
            reusedTokens: result.reusedTokens,
            tokensPerSecond: result.tokensPerSecond,
            ...(variable ? { holeLengths } : {})
        }
    };
}

/** A hole's text so far: revealed tokens, a placeholder per masked one, nothing after a revealed end-of-text. */
function partialText(tokens: number[], model: DiffusionModel, piece: (t: number) => string): string {
    let out = "";
    for (const t of tokens) {
        if (t < 0) out += PLACEHOLDER;
        else if (model.isEndToken(t)) break;
        else out += piece(t);
    }
    return out;
}

// Selection rewrite. "instruct": the instruct model rewrites the selection under the instruction, and the
// result comes back as the smallest set of span edits. "remask" (experimental, diffusion-native): the selection
// stays in place as the model's reply; each round re-masks the tokens the model finds least likely under the
// instruction and denoises only those, so the edits stay local by construction.
import { PLACEHOLDER } from "../../../common/protocol";
import type { DiffusionModel, SequenceLayout } from "../runtime/runtime";
import { spanEdits, withLineEnding, type SpanEdit } from "../spanEdits";
import { replyTo } from "./chat";
import { denoise, type Denoised, type JobOptions } from "./denoise";

export interface RewriteRequest {
    selection: string;
    /** Where the selection starts in its document. */
    at: number;
    /** The document's line break, which the rewrite keeps. */
    eol: "\r\n" | "\n";
    instruction: string;
    languageId: string;
    mode: "instruct" | "remask";
}

export interface Rewritten {
    text: string;
    /** Offsets in the document. */
    edits: SpanEdit[];
    denoised: Denoised | null;
}

/** An instruction is a sentence or a paragraph; a longer one is refused before it is tokenized (which would block). */
const MAX_INSTRUCTION_CHARS = 4096;
/** The most tokens a rewrite may produce. */
const MAX_REWRITE_TOKENS = 2048;
/** At most this share of the selection is re-masked per round, the least likely tokens first. */
const REMASK_SHARE = 0.25;
/** Extra masked places per re-masked run, so a run can come back longer; unused ones decode to end-of-text. */
const REMASK_SLACK = 2;

export async function rewriteSelection(model: DiffusionModel, request: RewriteRequest, options: JobOptions): Promise<Rewritten> {
    if (!request.instruction.trim()) throw new RangeError("a rewrite needs an instruction");
    if (request.instruction.length > MAX_INSTRUCTION_CHARS) {
        throw new RangeError(
            `the instruction is ${request.instruction.length.toLocaleString("en")} characters long; at most ${MAX_INSTRUCTION_CHARS.toLocaleString("en")} are accepted`
        );
    }
    if (!request.selection.trim()) throw new RangeError("select the code to rewrite first");
    const text = request.mode === "remask" ? await remask(model, request, options) : await instruct(model, request, options);
    const rewritten = keepEdges(request.selection, withLineEnding(text.text, request.eol));
    const edits = spanEdits(request.selection, rewritten).map((e) => ({ ...e, start: e.start + request.at, end: e.end + request.at }));
    return { text: rewritten, edits, denoised: text.denoised };
}

function userPrompt(r: RewriteRequest): string {
    return (
        `Rewrite this ${r.languageId} code as the instruction says. Reply with the rewritten code only, in one code block.\n\n` +
        `Instruction: ${r.instruction.trim()}\n\n\`\`\`${r.languageId}\n${r.selection}\n\`\`\``
    );
}

async function instruct(model: DiffusionModel, r: RewriteRequest, options: JobOptions): Promise<{ text: string; denoised: Denoised }> {
    const prompt = await model.formatChat([{ role: "user", content: userPrompt(r) }]);
    const budget = Math.min(MAX_REWRITE_TOKENS, Math.ceil(model.tokenize(r.selection).length * 1.5) + 32);
    const denoised = await replyTo(model, prompt, budget, options);
    return { text: codeBlock(denoised.texts[0]), denoised };
}

async function remask(model: DiffusionModel, r: RewriteRequest, options: JobOptions): Promise<{ text: string; denoised: Denoised | null }> {
    const { settings } = options;
    const info = model.info;
    const prompt = await model.formatChat([{ role: "user", content: userPrompt(r) }]);
    const head = [
        ...(info.addBos && info.bos >= 0 ? [info.bos] : []),
        ...model.tokenize(prompt, { parseSpecial: true }),
        ...model.tokenize(`\`\`\`${r.languageId}\n`)
    ];
    const tail = [...model.tokenize("\n```")];
    let body = [...model.tokenize(r.selection)];
    let denoised: Denoised | null = null;
    for (let round = 0; round < settings.rewrite.remaskRounds && body.length > 0; round++) {
        const tokens = Int32Array.from([...head, ...body, ...tail]);
        model.checkFits(tokens.length);
        const logits = await model.forwardLogits(tokens, options.signal);
        if (options.signal?.aborted) break;
        const probs = body.map((t, i) => tokenProbability(logits, info.nVocab, info.shiftLogits ? head.length + i - 1 : head.length + i, t));
        const unlikely = probs
            .map((p, i) => ({ p, i }))
            .filter((x) => x.p < settings.rewrite.remaskBelow)
            .sort((a, b) => a.p - b.p)
            .slice(0, Math.max(1, Math.floor(body.length * REMASK_SHARE)));
        if (unlikely.length === 0) break;
        const masked = new Set(unlikely.map((x) => x.i));
        const holes: SequenceLayout["holes"] = [];
        const out = [...head];
        const runs: { from: number; to: number }[] = [];
        for (let i = 0; i < body.length; ) {
            if (!masked.has(i)) {
                out.push(body[i++]);
                continue;
            }
            let j = i;
            while (j < body.length && masked.has(j)) j++;
            const length = j - i + REMASK_SLACK;
            holes.push({ start: out.length, length });
            for (let k = 0; k < length; k++) out.push(info.mask);
            runs.push({ from: i, to: j });
            i = j;
        }
        out.push(...tail);
        const layout: SequenceLayout = { tokens: Int32Array.from(out), holes };
        const onPartial = options.onPartial;
        denoised = await denoise(model, layout, {
            ...options,
            onPartial: onPartial && ((p) => onPartial({ ...p, texts: [joinRuns(model, body, runs, p.texts)] }))
        });
        const filled = denoised.result.holes.map((h) => h.textTokens);
        const next: number[] = [];
        let at = 0;
        runs.forEach((run, k) => {
            next.push(...body.slice(at, run.from), ...filled[k]); // both within the context: checkFits above
            at = run.to;
        });
        body = [...next, ...body.slice(at)];
    }
    return { text: model.detokenize(body), denoised };
}

/** The selection with its re-masked runs shown as the holes' partial texts. */
function joinRuns(model: DiffusionModel, body: number[], runs: { from: number; to: number }[], texts: string[]): string {
    let out = "";
    let at = 0;
    runs.forEach((run, k) => {
        out += model.detokenize(body.slice(at, run.from)) + (texts[k] ?? PLACEHOLDER);
        at = run.to;
    });
    return out + model.detokenize(body.slice(at));
}

/** softmax(row)[token], computed stably. */
function tokenProbability(logits: Float32Array, nVocab: number, row: number, token: number): number {
    if (row < 0) return 1;
    const base = row * nVocab;
    let max = -Infinity;
    for (let v = 0; v < nVocab; v++) max = Math.max(max, logits[base + v]);
    let sum = 0;
    for (let v = 0; v < nVocab; v++) sum += Math.exp(logits[base + v] - max);
    return Math.exp(logits[base + token] - max) / sum;
}

/** The code inside the reply's first fenced block, or the whole reply when it has none. */
export function codeBlock(reply: string): string {
    const m = /```[^\n`]*\n([\s\S]*?)(?:\n```|$)/.exec(reply);
    return m ? m[1] : reply;
}

/** The rewrite with the selection's leading indentation and trailing newline kept, which models tend to drop. */
function keepEdges(selection: string, text: string): string {
    const lead = /^\s*/.exec(selection)![0];
    const trail = /\s*$/.exec(selection)![0];
    return lead + text.trim() + trail;
}

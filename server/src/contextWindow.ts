// The text around the cursor that a request shows the model: whole lines, nearest first, within a token budget.

export interface ContextWindow {
    /** Offsets of the text kept: [start, end) always holds the core span. */
    start: number;
    end: number;
}

/** Code averages 3–4 characters a token; a line around the core longer than this many per token of the budget is cut. */
const MAX_CHARS_PER_TOKEN = 16;
/** ... but never one shorter than this. */
const MIN_CUT_CHARS = 16_384;

/**
 * Keeps the lines of the core span [from, to) (the cursor's own line when from = to), then whole lines outward:
 * `prefixShare` of the budget for the lines above, the rest below, and what the lines below leave unused goes
 * to the lines above. A core line far longer than the budget (minified code) is not kept whole: only the
 * characters nearest the core, so that a multi-megabyte line is never tokenized.
 */
export function cutWindow(text: string, from: number, to: number, budget: number, countTokens: (s: string) => number, prefixShare = 0.75): ContextWindow {
    const lineStart = lineStartBefore(text, from);
    const lineEnd = lineEndAfter(text, to);
    if (from - lineStart + lineEnd - to > Math.max(MIN_CUT_CHARS, budget * MAX_CHARS_PER_TOKEN)) {
        const left = Math.max(0, budget - countTokens(text.slice(from, to)));
        const above = Math.floor(left * prefixShare);
        const before = fitChars((n) => text.slice(from - n, from), from - lineStart, above, countTokens);
        const after = fitChars((n) => text.slice(to, to + n), lineEnd - to, left - above, countTokens);
        return { start: from - before, end: to + after };
    }
    let left = Math.max(0, budget - countTokens(text.slice(lineStart, lineEnd)));

    const above = takeLines(linesBackward(text, lineStart), lineStart, Math.floor(left * prefixShare), countTokens);
    left -= above.used;
    const below = takeLines(linesForward(text, lineEnd), lineEnd, left, countTokens);
    left -= below.used;
    // Give what the suffix left unused back to the lines above.
    const more = takeLines(linesBackward(text, above.to), above.to, left, countTokens);
    return { start: more.to, end: below.to };
}

/** The most characters (up to `available`) whose text `piece(n)` fits in `budget` tokens; shrunk in proportion until it does. */
function fitChars(piece: (chars: number) => string, available: number, budget: number, countTokens: (s: string) => number): number {
    let chars = Math.min(available, budget * MAX_CHARS_PER_TOKEN);
    for (let n = countTokens(piece(chars)); n > budget && chars > 0; n = countTokens(piece(chars))) {
        chars = Math.min(chars - 1, Math.floor((chars * budget) / n));
    }
    return chars;
}

/** Takes `lines` (nearest first) while they fit in `budget`: the farthest offset reached (`from` when none fits) and their tokens. */
function takeLines(lines: Iterable<[number, string]>, from: number, budget: number, countTokens: (s: string) => number): { to: number; used: number } {
    let to = from;
    let used = 0;
    for (const [at, piece] of lines) {
        const n = countTokens(piece);
        if (used + n > budget) break;
        used += n;
        to = at;
    }
    return { to, used };
}

/** The lines ending at `end`, nearest first, as [their start, their text]. */
function* linesBackward(text: string, end: number): Generator<[number, string]> {
    while (end > 0) {
        const s = lineStartBefore(text, end - 1);
        yield [s, text.slice(s, end)];
        end = s;
    }
}

/** The lines starting at `start`, nearest first, as [their end, their text]. */
function* linesForward(text: string, start: number): Generator<[number, string]> {
    while (start < text.length) {
        const e = lineEndAfter(text, start);
        yield [e, text.slice(start, e)];
        start = e;
    }
}

/** The start of the line holding offset `at` (0 for at <= 0). lastIndexOf treats a negative index as 0, hence the guard. */
export function lineStartBefore(text: string, at: number): number {
    return at <= 0 ? 0 : text.lastIndexOf("\n", at - 1) + 1;
}

/** The end of the line holding offset `at`, past its newline (text.length on the last line). */
export function lineEndAfter(text: string, at: number): number {
    const nl = text.indexOf("\n", at);
    return nl < 0 ? text.length : nl + 1;
}

// The smallest set of separate span edits that turns one text into another: a rewrite of a function that
// renames one variable comes back as one small edit per use, and unchanged lines and tokens are untouched.
import { diffLines, diffWordsWithSpace } from "diff";

export interface SpanEdit {
    /** Offsets in the original text: [start, end) is replaced by `text`. */
    start: number;
    end: number;
    text: string;
}

/** Edits, sorted and separated by unchanged text, such that applyEdits(original, edits) === rewritten. */
export function spanEdits(original: string, rewritten: string): SpanEdit[] {
    const edits: SpanEdit[] = [];
    let offset = 0;
    // Lines first, so that an unchanged line is never part of an edit; then words within changed runs of lines.
    const lines = diffLines(original, rewritten);
    for (let i = 0; i < lines.length; i++) {
        const part = lines[i];
        if (!part.added && !part.removed) {
            offset += part.value.length;
            continue;
        }
        let removed = "";
        let added = "";
        for (; i < lines.length && (lines[i].added || lines[i].removed); i++) {
            if (lines[i].removed) removed += lines[i].value;
            else added += lines[i].value;
        }
        i--;
        let at = offset;
        for (const w of diffWordsWithSpace(removed, added)) {
            if (w.removed) {
                push(edits, { start: at, end: at + w.value.length, text: "" });
                at += w.value.length;
            } else if (w.added) {
                push(edits, { start: at, end: at, text: w.value });
            } else {
                at += w.value.length;
            }
        }
        offset += removed.length;
    }
    return edits;
}

/** Adds an edit, joining it to the previous one when nothing unchanged lies between them. */
function push(edits: SpanEdit[], edit: SpanEdit): void {
    const last = edits[edits.length - 1];
    if (last && last.end === edit.start) {
        last.end = edit.end;
        last.text += edit.text;
    } else {
        edits.push(edit);
    }
}

/** Applies sorted, non-overlapping edits to `text`. */
export function applyEdits(text: string, edits: readonly SpanEdit[]): string {
    let out = "";
    let at = 0;
    for (const e of edits) {
        if (e.start < at || e.end < e.start || e.end > text.length) throw new RangeError("edits overlap or lie outside the text");
        out += text.slice(at, e.start) + e.text;
        at = e.end;
    }
    return out + text.slice(at);
}

/** The document's line break: CRLF when its first line ends with one, else LF. */
export function lineEnding(document: string): "\r\n" | "\n" {
    const nl = document.indexOf("\n");
    return nl > 0 && document[nl - 1] === "\r" ? "\r\n" : "\n";
}

/** Generated text with its line breaks written as `eol` (models write LF; a CRLF document must stay CRLF). */
export function withLineEnding(text: string, eol: "\r\n" | "\n"): string {
    return eol === "\r\n" ? text.replace(/\r?\n/g, "\r\n") : text;
}

// Hole markers in a document: `???` (or the configured marker), optionally sized in tokens as `???:40`.
//
// A marker is a hole wherever it stands, in code, a comment or a string: filling a docstring or a log
// message is as useful as filling code, and the server cannot know every language's string syntax.
// Two ways to keep a literal marker: write it with a backslash before it (`\???`, left as it is), or,
// for a marker made of one repeated character such as `???`, as part of a longer run (`????`).

export interface Hole {
    /** Offsets of the whole marker, size suffix included: the span the hole's text replaces. */
    start: number;
    end: number;
    /** Tokens asked for with `:N`, or undefined for the default size. */
    size?: number;
}

/** The most tokens one hole may ask for. */
export const MAX_HOLE_TOKENS = 4096;

const SIZE = /:(\d+)/y;

export class HoleParser {
    private readonly runChar: string | undefined;

    constructor(readonly marker = "???") {
        if (marker.length === 0 || /\s/.test(marker) || marker.includes("\\")) {
            throw new RangeError(`the hole marker must be non-empty, without spaces or backslashes, not ${JSON.stringify(marker)}`);
        }
        this.runChar = [...marker].every((c) => c === marker[0]) ? marker[0] : undefined;
    }

    /** Every hole in `text`, in order; with a range, only the holes lying wholly inside [from, to). */
    parse(text: string, from = 0, to = text.length): Hole[] {
        const holes: Hole[] = [];
        for (let i = text.indexOf(this.marker, from); i >= 0 && i < to; i = text.indexOf(this.marker, i + 1)) {
            let end = i + this.marker.length;
            if (text[i - 1] === "\\") continue;
            if (this.runChar !== undefined && (text[i - 1] === this.runChar || text[end] === this.runChar)) continue;
            let size: number | undefined;
            SIZE.lastIndex = end;
            const sized = SIZE.exec(text);
            if (sized) {
                size = Math.min(MAX_HOLE_TOKENS, Math.max(1, Number(sized[1])));
                end += sized[0].length;
            }
            if (end > to) break;
            holes.push({ start: i, end, size });
            i = end - 1;
        }
        return holes;
    }
}

// What a rewrite changes, in a reader's words: the lines of the document its edits touch ("lines 6–8"), rather than
// the count of span edits, which says little (a remask rewrite of three lines can be fourteen edits). No vscode
// import, so that a unit test (test/server/changed-lines.test.ts) can check the words.
import type { Range } from "vscode-languageclient/node";

/** "line 6" or "lines 6–8": the lines, numbered from 1 as the editor numbers them, that `edits` replace or insert into.
 * An edit that ends at the start of a line leaves that line as it was. */
export function changedLines(edits: readonly { range: Range }[]): string {
    const first = Math.min(...edits.map((e) => e.range.start.line));
    const last = Math.max(...edits.map(({ range: { start, end } }) => (end.character === 0 && end.line > start.line ? end.line - 1 : end.line)));
    return first === last ? `line ${first + 1}` : `lines ${first + 1}–${last + 1}`;
}

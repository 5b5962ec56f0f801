// What the rewrite preview says it changes (client/src/changedLines.ts): the lines, not the count of span edits.
import assert from "node:assert/strict";
import { test } from "node:test";
import { changedLines } from "../../client/src/changedLines";

const edit = (startLine: number, startCharacter: number, endLine: number, endCharacter: number) => ({
    range: { start: { line: startLine, character: startCharacter }, end: { line: endLine, character: endCharacter } }
});

test("a rewrite's span edits are named by the lines they change, numbered from 1", () => {
    // A remask rewrite of three lines: many small edits.
    assert.equal(changedLines([edit(5, 4, 5, 10), edit(5, 12, 5, 13), edit(6, 8, 6, 20), edit(7, 0, 7, 3)]), "lines 6–8");
    assert.equal(changedLines([edit(2, 4, 2, 9)]), "line 3");
    // An insertion changes the line it goes into.
    assert.equal(changedLines([edit(4, 0, 4, 0)]), "line 5");
});

test("an edit that ends at the start of a line leaves that line alone", () => {
    // The whole of lines 1–5, as an instruct rewrite of a selection from 0:0 to 5:0 replaces them.
    assert.equal(changedLines([edit(0, 0, 5, 0)]), "lines 1–5");
    assert.equal(changedLines([edit(3, 0, 4, 0)]), "line 4");
});

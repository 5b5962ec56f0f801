// Property tests for the span-edit computation: the edits always rebuild the rewrite, never overlap, and
// leave every unchanged line alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { applyEdits, lineEnding, spanEdits, withLineEnding } from "../../server/src/spanEdits";

// Code-like text: identifiers, operators, spaces and newlines, so that diffs have lines and tokens to keep.
const codeText = fc
    .array(
        fc.oneof(
            fc.constantFrom("x", "y", "total", "value", "(", ")", " ", "  ", "\n", "=", "+", ":", "return", "def", "\t", "é", "😀"),
            fc.string({ maxLength: 3 })
        ),
        { maxLength: 60 }
    )
    .map((parts) => parts.join(""));

test("applying the edits to the original always gives the rewritten text", () => {
    fc.assert(
        fc.property(codeText, codeText, (original, rewritten) => {
            assert.equal(applyEdits(original, spanEdits(original, rewritten)), rewritten);
        }),
        { numRuns: 500 }
    );
});

test("edits are sorted, separated by unchanged text and never empty", () => {
    fc.assert(
        fc.property(codeText, codeText, (original, rewritten) => {
            const edits = spanEdits(original, rewritten);
            for (let i = 0; i < edits.length; i++) {
                const e = edits[i];
                assert.ok(e.start <= e.end && e.end <= original.length);
                assert.ok(e.end > e.start || e.text.length > 0, "an edit changes something");
                if (i > 0) assert.ok(edits[i - 1].end < e.start, "no edit touches or overlaps the previous one");
            }
        }),
        { numRuns: 500 }
    );
});

test("a line the rewrite keeps is never inside an edit", () => {
    // Distinct lines: with two equal lines, which of them counts as "kept" is a matter of choice.
    const line = codeText.map((s) => s.replace(/\n/g, ""));
    fc.assert(
        fc.property(fc.uniqueArray(line, { minLength: 2, maxLength: 8 }), fc.nat(), line, (lines, pick, replacement) => {
            fc.pre(!lines.includes(replacement));
            const i = pick % lines.length;
            const original = `${lines.join("\n")}\n`;
            const changed = [...lines];
            changed[i] = replacement.replace(/\n/g, "");
            const rewritten = `${changed.join("\n")}\n`;
            const lineStart = lines.slice(0, i).join("\n").length + (i > 0 ? 1 : 0);
            const lineEnd = lineStart + lines[i].length;
            for (const e of spanEdits(original, rewritten)) {
                assert.ok(e.start >= lineStart && e.end <= lineEnd + 1, `edit ${JSON.stringify(e)} stays on line ${i}`);
            }
        }),
        { numRuns: 300 }
    );
});

test("a rename across a function is several small edits", () => {
    const original = "def scale(values, factor):\n    result = []\n    for v in values:\n        result.append(v * factor)\n    return result\n";
    const rewritten = original.replace(/result/g, "scaled");
    const edits = spanEdits(original, rewritten);
    assert.equal(edits.length, 3);
    for (const e of edits) assert.deepEqual([original.slice(e.start, e.end), e.text], ["result", "scaled"]);
});

test("generated text takes the document's line breaks: a CRLF document (Windows) gets CRLF, whatever the model wrote", () => {
    assert.equal(lineEnding("a = 1\r\nb = 2\n"), "\r\n", "the first line decides");
    assert.equal(lineEnding("a = 1\nb = 2\r\n"), "\n");
    assert.equal(lineEnding("one line"), "\n");
    assert.equal(withLineEnding("if x:\n    y\r\n", "\r\n"), "if x:\r\n    y\r\n");
    assert.equal(withLineEnding("if x:\n    y\n", "\n"), "if x:\n    y\n");
    const doc = "def f():\r\n    ???\r\n";
    const at = doc.indexOf("???");
    assert.equal(
        applyEdits(doc, [{ start: at, end: at + 3, text: withLineEnding("a = 1\nreturn a", lineEnding(doc)) }]),
        "def f():\r\n    a = 1\r\nreturn a\r\n"
    );
});

// The hole parser: markers are holes wherever they stand (code, comments, strings), except escaped with a
// backslash or inside a longer run of the marker's character; `:N` sizes a hole. Property and example tests.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { HoleParser, MAX_HOLE_TOKENS } from "../../server/src/holes";

const parser = new HoleParser("???");

test('examples from the hole-marker rules (docs/language-server.md, "Hole markers")', () => {
    const text = [
        "x = ???", // a hole in code
        "# TODO: ???:12", // in a comment, sized
        "msg = 'what ??? here'", // in a string: still a hole
        "keep = '\\???'", // escaped: literal
        "wow = 'really????'", // a longer run: literal
        "y = ???:0 + ???:99999" // sizes are clamped to 1..4096
    ].join("\n");
    const holes = parser.parse(text);
    assert.deepEqual(
        holes.map((h) => [text.slice(h.start, h.end), h.size]),
        [
            ["???", undefined],
            ["???:12", 12],
            ["???", undefined],
            ["???:0", 1],
            ["???:99999", MAX_HOLE_TOKENS]
        ]
    );
});

test("a range keeps only the holes lying wholly inside it", () => {
    const text = "a ??? b ???:30 c ???";
    assert.deepEqual(
        parser.parse(text, 0, 9).map((h) => h.start),
        [2]
    );
    assert.deepEqual(
        parser.parse(text, 3, text.length).map((h) => h.start),
        [8, 17]
    );
});

test("in a CRLF document (Windows) a marker ends before the line break, sized or not", () => {
    const text = "x = ???\r\ny = ???:12\r\n???\r\n";
    assert.deepEqual(
        parser.parse(text).map((h) => [text.slice(h.start, h.end), h.size]),
        [
            ["???", undefined],
            ["???:12", 12],
            ["???", undefined]
        ]
    );
});

test("another marker works the same way", () => {
    const p = new HoleParser("<fill>");
    const text = "a <fill> b <fill>:5 \\<fill>";
    assert.deepEqual(
        p.parse(text).map((h) => [h.start, h.end, h.size]),
        [
            [2, 8, undefined],
            [11, 19, 5]
        ]
    );
    assert.throws(() => new HoleParser(""), /marker/);
    assert.throws(() => new HoleParser("a b"), /marker/);
});

// Documents built from pieces whose holes we know: code, comments and strings around markers.
const piece = fc.oneof(
    fc.constantFrom("x = ", "# comment ", "'str ", '" ', "\n", "(", ")", "?", "\\", ":", "7", " "),
    fc.string({ maxLength: 4 }).map((s) => s.replace(/[?\\]/g, "_"))
);
const doc = fc.array(fc.oneof({ weight: 4, arbitrary: piece }, { weight: 1, arbitrary: fc.constantFrom("???", "???:8", "\\???", "????") }), { maxLength: 40 });

test("holes are found exactly at unescaped markers that are not part of a longer run, never overlapping", () => {
    fc.assert(
        fc.property(doc, (parts) => {
            const text = parts.join("");
            const holes = parser.parse(text);
            let last = -1;
            for (const h of holes) {
                assert.ok(h.start > last, "sorted and disjoint");
                last = h.end - 1;
                assert.equal(text.slice(h.start, h.start + 3), "???");
                assert.notEqual(text[h.start - 1], "\\");
                assert.notEqual(text[h.start - 1], "?");
                assert.notEqual(text[h.start + 3], "?");
                const rest = text.slice(h.start + 3, h.end);
                assert.ok(rest === "" || /^:\d+$/.test(rest));
                if (rest === "") assert.equal(h.size, undefined);
                else assert.ok(h.size! >= 1 && h.size! <= MAX_HOLE_TOKENS);
                if (rest === "") assert.ok(!/^:\d/.test(text.slice(h.end)), "a size right after a marker belongs to it");
            }
            // Every qualifying occurrence is found.
            const expected = [...text.matchAll(/\?\?\?/g)].filter((m) => text[m.index - 1] !== "\\" && text[m.index - 1] !== "?" && text[m.index + 3] !== "?");
            assert.equal(holes.length, expected.length);
        }),
        { numRuns: 500 }
    );
});

test("replacing every hole touches nothing else", () => {
    fc.assert(
        fc.property(doc, (parts) => {
            const text = parts.join("");
            const holes = parser.parse(text);
            let filled = "";
            let at = 0;
            for (const h of holes) {
                filled += `${text.slice(at, h.start)}<X>`;
                at = h.end;
            }
            filled += text.slice(at);
            const outside = text.split(/(?<![\\?])\?\?\?(?!\?)(?::\d+)?/);
            assert.deepEqual(filled.split("<X>"), outside);
        }),
        { numRuns: 300 }
    );
});

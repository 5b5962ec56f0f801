// Context windows: whole lines nearest the cursor within the token budget, the cursor's line always kept.
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { cutWindow } from "../../server/src/contextWindow";

const count = (s: string) => s.length; // one "token" per character keeps the arithmetic visible

test("keeps whole lines, nearest first, three quarters above", () => {
    const lines = Array.from({ length: 10 }, (_, i) => `line${i}\n`); // 6 characters each
    const text = lines.join("");
    const offset = text.indexOf("line5") + 2;
    const w = cutWindow(text, offset, offset, 6 + 24, count);
    // 24 left: 18 above (3 lines), 6 below (1 line), nothing left over.
    assert.equal(text.slice(w.start, w.end), lines.slice(2, 7).join(""));
});

test("what the lines below leave unused goes above", () => {
    const text = "a\nb\nc\nd\ncursor";
    const w = cutWindow(text, text.length, text.length, 100, count);
    assert.deepEqual(w, { start: 0, end: text.length });
});

test("the window always holds the core span, starts and ends at line boundaries, and keeps to the budget", () => {
    fc.assert(
        fc.property(
            fc.array(
                fc.string({ maxLength: 12 }).map((s) => s.replace(/\n/g, "")),
                { maxLength: 20 }
            ),
            fc.nat(),
            fc.nat(),
            fc.nat({ max: 200 }),
            (lines, a, b, budget) => {
                const text = lines.join("\n");
                const from = a % (text.length + 1);
                const to = from + (b % (text.length - from + 1));
                const w = cutWindow(text, from, to, budget, count);
                assert.ok(w.start <= from && w.end >= to);
                assert.ok(w.start === 0 || text[w.start - 1] === "\n");
                assert.ok(w.end === text.length || text[w.end - 1] === "\n");
                const coreStart = text.lastIndexOf("\n", from - 1) + 1;
                const coreEnd = text.indexOf("\n", to) < 0 ? text.length : text.indexOf("\n", to) + 1;
                const core = from === 0 ? coreEnd : coreEnd - coreStart;
                assert.ok(w.end - w.start <= Math.max(budget, core), "within the budget unless the core alone exceeds it");
            }
        ),
        { numRuns: 500 }
    );
});

test("a line of megabytes (minified code) is cut around the core, never tokenized whole", () => {
    const line = "x=1;".repeat(1_250_000); // 5 MB
    const text = `a\n${line}\nb\n`;
    const from = 2 + line.length / 2;
    let longest = 0;
    const w = cutWindow(text, from, from + 3, 1024, (s) => {
        longest = Math.max(longest, s.length);
        return Math.ceil(s.length / 4);
    });
    assert.ok(w.start <= from && w.end >= from + 3, "the core is kept");
    assert.ok(w.end - w.start <= 1024 * 16 + 3, `the window is ${w.end - w.start} characters`);
    assert.ok(longest <= 1024 * 16 + 3, `the longest text tokenized was ${longest} characters`);
});

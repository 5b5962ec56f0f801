// The dream-coder command as a user runs it: a child process on a real file with the generated model.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, cpSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { HoleParser } from "../../server/src/holes";
import { DECLARED } from "../../common/settings";
import { QUANT_TYPES, quantizedTestModel, repoRoot, standInModel, testModel } from "../tools/test-models";

const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
const EXAMPLE = join(repoRoot, "examples", "stats.py");

// Colour comes and goes with the environment (ansis turns it on when CI is set, even into a pipe), so the
// checks read the text without escape sequences.
function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    return runCli(CLI, ...args);
}

function runCli(cli: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [cli, ...args], { encoding: "utf8", env: { ...process.env, DREAM_CODER_MODEL: "" } });
    return { status: r.status, stdout: stripVTControlCharacters(r.stdout), stderr: stripVTControlCharacters(r.stderr) };
}

function scratchCopy(): string {
    const path = join(mkdtempSync(join(tmpdir(), "dream-coder-cli-")), "stats.py");
    copyFileSync(EXAMPLE, path);
    return path;
}

for (const [name, model] of [["f32", () => testModel({ arch: "dream" })], ...QUANT_TYPES.map((t) => [t, () => quantizedTestModel(t)] as const)] as const) {
    test(`fill --in-place replaces every marker and changes no other line (${name} model)`, () => {
        const file = scratchCopy();
        const before = readFileSync(file, "utf8");
        const holes = new HoleParser().parse(before);
        assert.equal(holes.length, 3);
        const r = run("fill", file, "--in-place", "--model", model(), "--threads", "1");
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /3 edits applied/);
        const after = readFileSync(file, "utf8");
        assert.equal(new HoleParser().parse(after).length, 0, "no marker is left");
        // The text between holes is unchanged, in order.
        let at = 0;
        for (let i = 0; i <= holes.length; i++) {
            const piece = before.slice(i === 0 ? 0 : holes[i - 1].end, i < holes.length ? holes[i].start : before.length);
            const found = after.indexOf(piece, at);
            assert.ok(found >= at, `unchanged text ${JSON.stringify(piece.slice(0, 30))} is still there, in order`);
            at = found + piece.length;
        }
    });
}

test("fill prints a unified diff and leaves the file alone (exact decoding, no cache)", () => {
    const file = scratchCopy();
    const before = readFileSync(file, "utf8");
    const r = run("fill", file, "-m", testModel({ arch: "dream" }), "-t", "1", "--order", "--cache", "none");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(readFileSync(file, "utf8"), before);
    assert.match(r.stdout, /^hole 1: /m);
    assert.match(r.stdout, /order: first .* last · \d+ steps/);
    const removed = r.stdout.split("\n").filter((l) => l.startsWith("-") && !l.startsWith("---"));
    assert.equal(removed.length, 3);
    for (const l of removed) assert.ok(l.includes("???"), `only lines with a marker change: ${l}`);
});

test("--gpu-layers -1 (every layer, as the setting allows) is accepted; a CPU build runs on the CPU", () => {
    const r = run("complete", EXAMPLE, "--at", "4:5", "--model", testModel({ arch: "dream" }), "--threads", "1", "--gpu-layers", "-1");
    assert.equal(r.status, 0, r.stderr);
});

test("complete prints one line for a place in the middle of a line", () => {
    const r = run("complete", EXAMPLE, "--at", "6:13", "-m", testModel({ arch: "dream" }), "-t", "1");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.split("\n").length, 2, "one line and its newline");
});

test("with no model named, the CLI uses the bundled trained model: it fills the example with printable text", () => {
    const file = scratchCopy();
    const r = run("fill", file, "--in-place", "-t", "1", "--models-dir", mkdtempSync(join(tmpdir(), "no-models-")));
    assert.equal(r.status, 0, r.stderr);
    const after = readFileSync(file, "utf8");
    assert.equal(new HoleParser().parse(after).length, 0, "every hole filled");
    // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
    assert.doesNotMatch(after, /[\u0000-\u0008\u000e-\u001f\ufffd]/, "text, not the random-weight model's control characters");
});

test("the setting flags are described by the settings' declarations in package.json", () => {
    const r = run("fill", "--help");
    assert.equal(r.status, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, " ");
    for (const key of ["threads", "steps", "algorithm", "cache", "confidenceThreshold", "contextTokens", "holes.marker"]) {
        const d = DECLARED[key];
        assert.ok(help.includes(`[dreamCoder.${key}, default ${JSON.stringify(d.default)}]`), `${key} is named with its default`);
        if (d.description) assert.ok(help.includes(d.description), `${key}'s description: ${d.description}`);
        for (const choice of d.enum ?? []) assert.ok(help.includes(`"${choice}"`), `${key} offers ${choice}`);
    }
    // The flag is the setting's name, as in a decoding configuration's terms (confidence-threshold=0.9).
    assert.ok(help.includes("--confidence-threshold <x>") && !help.includes("--threshold"), "confidenceThreshold's flag");
});

test("bad input: clear messages, exit status 1, the file untouched", () => {
    const file = scratchCopy();
    const before = readFileSync(file, "utf8");
    const noHoles = join(dirname(file), "plain.py");
    writeFileSync(noHoles, "x = 1\n");
    const cases: [string[], RegExp][] = [
        [["fill", file, "--in-place", "-m", join(tmpdir(), "missing.gguf")], /missing\.gguf: model file not found/],
        [["fill", file, "--in-place", "-m", testModel({ arch: "qwen2" })], /autoregressive/],
        [["fill", join(tmpdir(), "no-such-file.py"), "-m", "x"], /cannot read .*no such file/],
        [["fill", dirname(file), "-m", "x"], /^dream-coder: cannot read .*: it is a folder; name a file in it\n$/],
        [["fill", noHoles, "-m", testModel({ arch: "dream" })], /plain\.py has no hole marker/],
        [["complete", file, "--at", "99:1", "-m", "x"], /99:1 is outside the file/],
        [["fill", file, "-m", "x", "--steps", "-2"], /^dream-coder: dreamCoder\.steps: -2 is not valid \(a whole number from 0 to 4096\)\n$/],
        [["fill", file, "-m", "x", "--block-length", "two"], /^dream-coder: dreamCoder\.blockLength: "two" is not valid \(a whole number from 1 to 256\)\n$/],
        [
            ["fill", file, "-m", "x", "--marker", ""],
            /^dream-coder: dreamCoder\.holes\.marker: "" is not valid \(one or more characters, no spaces or backslashes\)\n$/
        ],
        [["fill", file, "-m", "x", "--threads", "100000"], /^dream-coder: dreamCoder\.threads: 100000 is not valid \(a whole number from 0 to 256\)\n$/],
        [
            ["fill", file, "-m", "x", "--algorithm", "origin", "--confidence-threshold", "0.9"],
            /dreamCoder\.confidenceThreshold: 0\.9 needs an algorithm that ranks by confidence .*not dreamCoder\.algorithm "origin"/
        ],
        [["fill", file, "-m", "x", "--gpu-layers", "-2"], /whole number of at least -1/],
        [
            ["bench", "-m", "x", "--compare", "none,dual+fast"],
            /--compare <configurations>' argument 'none,dual\+fast' is invalid\. bad configuration "dual\+fast": "fast" is not a cache mode \(none, prefix, dual\) or reuse; a configuration is/
        ],
        [["bench", "-m", "x", "--compare", "none+reuse"], /bad configuration "none\+reuse": reuse keeps the cache for the next request, and none has no cache/],
        [
            ["bench", "-m", "x", "--compare", "dual+entropy-bound=1"],
            /bad configuration "dual\+entropy-bound=1": entropy-bound is not a setting, and the language server decodes with its settings/
        ],
        // llama.cpp asserts on a model without layers: the process aborted (exit 134) before this check.
        [
            ["fill", file, "--in-place", "-m", testModel({ arch: "dream", overrides: { "dream.block_count": { type: "u32", value: 0 } } })],
            /dream\.block_count is 0/
        ],
        [["models", "pull", "gpt-5"], /not in the catalog/]
    ];
    for (const [args, message] of cases) {
        const r = run(...args);
        assert.equal(r.status, 1, `${args.join(" ")} fails`);
        assert.match(r.stderr, message, args.join(" "));
    }
    assert.equal(readFileSync(file, "utf8"), before);
});

test("--in-place keeps every byte outside the edits: a byte-order mark, CRLF line breaks, non-ASCII text", () => {
    const dir = mkdtempSync(join(tmpdir(), "dream-coder-bytes-"));
    const file = join(dir, "crlf.py");
    const head = Buffer.from("\ufeff# café ☕ naïve\r\ndef area(r):\r\n    return ", "utf8");
    const marker = Buffer.from("???:32", "utf8");
    const tail = Buffer.from("\r\n\r\nprint('π ≈', area(1))\r\n", "utf8");
    writeFileSync(file, Buffer.concat([head, marker, tail]));
    const r = run("fill", file, "--in-place", "-m", standInModel(), "-t", "1");
    assert.equal(r.status, 0, r.stderr);
    const after = readFileSync(file);
    assert.deepEqual(after.subarray(0, head.length), head, "the bytes before the hole are unchanged");
    assert.deepEqual(after.subarray(after.length - tail.length), tail, "the bytes after the hole are unchanged");
    const filled = after.subarray(head.length, after.length - tail.length).toString("utf8");
    assert.ok(!/(^|[^\r])\n/.test(filled), `the filled text breaks lines as the file does: ${JSON.stringify(filled)}`);
});

test("a file that is not UTF-8 is refused before anything is written", () => {
    const file = join(mkdtempSync(join(tmpdir(), "dream-coder-latin1-")), "l1.py");
    const bytes = Buffer.from("# caf\xe9\nx = ???:4\n", "latin1");
    writeFileSync(file, bytes);
    const r = run("fill", file, "--in-place", "-m", testModel({ arch: "dream" }), "-t", "1");
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /l1\.py is not UTF-8 text; dream-coder reads and writes UTF-8 only, so it leaves the file alone/);
    assert.deepEqual(readFileSync(file), bytes);
});

test("rewrite --in-place keeps a CRLF file's line breaks and the lines outside the range", () => {
    const file = join(mkdtempSync(join(tmpdir(), "dream-coder-crlf-")), "stats.py");
    const lines = readFileSync(EXAMPLE, "utf8")
        .replace(/\?\?\?(:\d+)?/g, "0")
        .split("\n")
        .map((l) => `${l}\r\n`);
    writeFileSync(file, lines.join(""));
    // The stand-in model's rewrite of these lines has line breaks (the smallest test model's has none).
    const r = run("rewrite", file, "--lines", "4-8", "--instruction", "use shorter names", "--in-place", "-m", standInModel(), "-t", "1");
    assert.equal(r.status, 0, r.stderr);
    const after = readFileSync(file, "utf8");
    assert.ok(!/(^|[^\r])\n/.test(after), "no bare LF");
    assert.ok(after.startsWith(lines.slice(0, 3).join("")), "the lines above the range are unchanged");
    assert.ok(after.endsWith(lines.slice(8).join("")), "the lines below the range are unchanged");
});

test("a 5 MB line (minified code): fill and complete work around the place, and the rest of the file keeps its bytes", () => {
    const file = join(mkdtempSync(join(tmpdir(), "dream-coder-long-")), "min.js");
    const half = "var a=1;".repeat(312_500); // 2.5 MB each side of the hole
    const head = Buffer.from(`// minified\n${half}x=`);
    const tail = Buffer.from(`;${half}\n`);
    writeFileSync(file, Buffer.concat([head, Buffer.from("???:4"), tail]));
    const fill = run("fill", file, "--in-place", "-m", testModel({ arch: "dream" }), "-t", "1");
    assert.equal(fill.status, 0, fill.stderr);
    const after = readFileSync(file);
    assert.deepEqual(after.subarray(0, head.length), head);
    assert.deepEqual(after.subarray(after.length - tail.length), tail);
    const complete = run("complete", file, "--at", `2:${half.length + 3}`, "-m", testModel({ arch: "dream" }), "-t", "1");
    assert.equal(complete.status, 0, complete.stderr);
});

test("models list shows the catalog", () => {
    const r = run("models", "list", "--models-dir", mkdtempSync(join(tmpdir(), "dream-coder-models-")));
    assert.equal(r.status, 0, r.stderr);
    for (const id of ["dream-coder-7b-instruct", "dream-7b-instruct", "diffucoder-7b", "llada-8b-instruct"])
        assert.match(r.stdout, new RegExp(`^${id} .*not downloaded`, "m"));
    assert.match(r.stdout, /^dream-coder-7b-instruct .*not downloaded {2}\(recommended\)$/m, "the catalog's recommended model is marked");
    assert.equal(r.stdout.match(/\(recommended\)/g)?.length, 1);
    assert.match(r.stdout, /^dream-mini-py .*bundled \S+models\/dream-mini-py-q8_0\.gguf$/m, "the bundled model is there without a download");
});

test("a package that lost its bundled model says so, and still lists the catalog and runs other models; bench asks for --file there", () => {
    // The built package without models/: out/ copied, its dependencies and the addon linked.
    const root = mkdtempSync(join(tmpdir(), "dream-coder-no-bundled-"));
    for (const dir of ["common", "server", "native"]) cpSync(join(repoRoot, "out", dir), join(root, "out", dir), { recursive: true });
    copyFileSync(join(repoRoot, "out", "package.json"), join(root, "out", "package.json"));
    for (const dir of ["node_modules", "native"]) symlinkSync(join(repoRoot, dir), join(root, dir));
    const cli = join(root, "out", "server", "src", "cli", "main.js");
    const list = runCli(cli, "models", "list", "--models-dir", mkdtempSync(join(tmpdir(), "dream-coder-models-")));
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /^dream-mini-py .*missing from this installation$/m);
    const file = scratchCopy();
    const before = readFileSync(file, "utf8");
    const fill = runCli(cli, "fill", file, "--in-place", "-t", "1");
    assert.equal(fill.status, 1, fill.stdout);
    assert.match(
        fill.stderr,
        /Dream Mini.* comes with the extension, but its file models\/dream-mini-py-q8_0\.gguf is missing from this installation: reinstall Dream-Coder, or choose another model\./
    );
    assert.equal(readFileSync(file, "utf8"), before, "the file is unchanged");
    const other = runCli(cli, "fill", file, "-m", testModel({ arch: "dream" }), "-t", "1");
    assert.equal(other.status, 0, other.stderr);
    // Outside a checkout there is no server/src/holes.ts for the typing session to default to.
    const bench = runCli(cli, "bench", "-m", testModel({ arch: "dream" }), "--bursts", "1", "--json", join(root, "bench.json"));
    assert.equal(bench.status, 1, bench.stdout);
    assert.match(bench.stderr, /this installation has no server\/src\/holes\.ts to type: name a source file with --file/);
});

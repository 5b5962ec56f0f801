// The language server end to end: a real server process over Node IPC, the generated dream model.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
    CodeActionRequest,
    DidChangeTextDocumentNotification,
    DidCloseTextDocumentNotification,
    InlineCompletionRequest,
    LSPErrorCodes,
    ResponseError
} from "vscode-languageserver-protocol/node";
import * as lsp from "../../common/protocol";
import { QUANT_TYPES, quantizedTestModel, repoRoot, testModel } from "../tools/test-models";
import { firstInsertText, startLanguageServer as startServer, type LanguageServerProcess as ServerUnderTest } from "../../server/src/cli/lspClient";
import { growingTestModel } from "../tools/variable-model";
import { applyTextEdits } from "./apply-edits";

const settings = (over: Record<string, unknown> = {}) => ({
    model: testModel({ arch: "dream" }),
    threads: 1,
    inlineCompletion: { debounceMs: 0, lineTokens: 8, blockTokens: 16 },
    ...over
});

const SOURCE = [
    "def add(a, b):",
    "    return a + b",
    "",
    "def scale(values, factor):",
    "    result = []",
    "    for v in values:",
    "        result.append(v * factor)",
    "    return result",
    ""
].join("\n");

describe("language server over IPC", () => {
    let server: ServerUnderTest;
    before(async () => {
        server = await startServer(settings());
    });
    after(async () => {
        await server?.stop();
    });

    test("initialize announces inline completion and code actions", async () => {
        const caps = server.initialized.capabilities;
        assert.equal(caps.inlineCompletionProvider, true);
        assert.deepEqual(caps.codeActionProvider, { codeActionKinds: ["refactor.rewrite"] });
        assert.equal(caps.textDocumentSync, 2);
        assert.equal(server.initialized.serverInfo?.name, "dream-coder");
    });

    test("an inline completion inserts at the cursor and leaves the rest of the document unchanged", async () => {
        const uri = "file:///work/complete.py";
        await server.open(uri, SOURCE);
        const position = { line: 1, character: "    return a + ".length };
        const result = await server.connection.sendRequest(InlineCompletionRequest.type, {
            textDocument: { uri },
            position,
            context: { triggerKind: 2 }
        });
        const items = Array.isArray(result) ? result : (result?.items ?? []);
        assert.equal(items.length, 1);
        const item = items[0];
        const text = typeof item.insertText === "string" ? item.insertText : item.insertText.value;
        assert.ok(text.length > 0);
        assert.ok(!/[\r\n]/.test(text), "a mid-line completion stays on its line");
        assert.deepEqual(item.range, { start: position, end: position });
        const applied = applyTextEdits(SOURCE, [{ range: item.range!, newText: text }]);
        const cursor = SOURCE.indexOf("a + b") + 4;
        assert.equal(applied.slice(0, cursor), SOURCE.slice(0, cursor));
        assert.equal(applied.slice(cursor + text.length), SOURCE.slice(cursor));
        // The same place again: the same suggestion (from the cache).
        const again = await server.connection.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position, context: { triggerKind: 2 } });
        const againItems = Array.isArray(again) ? again : (again?.items ?? []);
        assert.equal(againItems[0]?.insertText, text);
    });

    test("typing out a suggestion gets its rest without a new decode; any other edit decodes again", async () => {
        const uri = "file:///work/typed.py";
        await server.open(uri, SOURCE);
        const line = 6;
        const start = "        result.append(".length;
        const ask = async (character: number) => {
            const r = await server.connection.sendRequest(InlineCompletionRequest.type, {
                textDocument: { uri },
                position: { line, character },
                context: { triggerKind: 2 }
            });
            return firstInsertText(r);
        };
        let version = 1;
        const type = (character: number, text: string, at = line) =>
            server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                textDocument: { uri, version: ++version },
                contentChanges: [{ range: { start: { line: at, character }, end: { line: at, character } }, text }]
            });
        const decodes = () => server.statuses.filter((s) => s.state === "busy" && s.step === 0).length;
        const first = await ask(start);
        assert.ok(first && first.length >= 1, `a suggestion: ${JSON.stringify(first)}`);
        // Its first character typed, but another place in the text the model saw changed too: a new decode.
        let before = decodes();
        await type(0, "#", 0);
        await type(start, first[0]);
        const suggestion = await ask(start + 1);
        assert.equal(decodes(), before + 1, "a new decode after an edit elsewhere in the window");
        assert.ok(suggestion && suggestion.length >= 3, `a suggestion of 3 characters or more to type out: ${JSON.stringify(suggestion)}`);
        before = decodes();
        await type(start + 1, suggestion.slice(0, 1));
        assert.equal(await ask(start + 2), suggestion.slice(1));
        await type(start + 2, suggestion.slice(1, 2));
        assert.equal(await ask(start + 3), suggestion.slice(2));
        assert.equal(decodes(), before, "no decode while the suggestion is typed out");
        // A character the suggestion does not have next: a new decode.
        const other = suggestion[2] === "#" ? "@" : "#";
        await type(start + 3, other);
        await ask(start + 4);
        assert.equal(decodes(), before + 1, "a new decode after a character off the suggestion");
    });

    test("the model loads on first use, reporting progress, then ready on the CPU backend", () => {
        const states = server.statuses.map((s) => s.state);
        assert.equal(states[0], "idle", "nothing is loaded before the first request");
        const loading = server.statuses.filter((s) => s.state === "loading");
        assert.ok(loading.length >= 2 && loading.some((s) => (s.progress ?? 0) > 0), "load progress is reported");
        assert.ok(server.statuses.some((s) => s.state === "ready" && s.backend === "CPU" && s.model.endsWith(".gguf")));
        assert.ok(
            server.statuses.some((s) => s.state === "ready" && typeof s.lastLatencyMs === "number"),
            "a job's latency is reported"
        );
        // The log (the editor's Show Log) says which file loaded, how long it took and where it runs.
        assert.ok(
            server.logs.some((l) => /^loaded \S+\.gguf in \d+\.\d s on CPU/.test(l)),
            server.logs.join("\n")
        );
    });

    test("a newer inline request for the same document cancels the older one", async () => {
        const uri = "file:///work/typing.py";
        await server.open(uri, SOURCE);
        await server.configure(settings({ inlineCompletion: { debounceMs: 300, lineTokens: 8, blockTokens: 16 } }));
        const ask = (character: number) =>
            server.connection.sendRequest(InlineCompletionRequest.type, {
                textDocument: { uri },
                position: { line: 4, character },
                context: { triggerKind: 2 }
            });
        const first = ask(8).then(
            (r) => r,
            (e: unknown) => e
        );
        const second = await ask(10);
        const older = await first;
        // The server drops the superseded request: no suggestion for a place the user has typed past.
        if (older instanceof ResponseError) assert.equal(older.code, LSPErrorCodes.RequestCancelled);
        const olderItems = older instanceof ResponseError ? [] : Array.isArray(older) ? older : ((older as { items: unknown[] } | null)?.items ?? []);
        assert.deepEqual(olderItems, [], "the older request gets nothing");
        const items = Array.isArray(second) ? second : (second?.items ?? []);
        assert.equal(items.length, 1);
        await server.configure(settings());
    });

    test("inline completion can be turned off per language, and works on an empty document", async () => {
        await server.open("file:///work/notes.md", "# Notes\n", "markdown");
        await server.configure(settings({ inlineCompletion: { debounceMs: 0, lineTokens: 8, blockTokens: 16, enable: { "*": true, markdown: false } } }));
        const off = await server.connection.sendRequest(InlineCompletionRequest.type, {
            textDocument: { uri: "file:///work/notes.md" },
            position: { line: 1, character: 0 },
            context: { triggerKind: 2 }
        });
        assert.equal(off, null);
        await server.open("file:///work/empty.py", "");
        const empty = await server.connection.sendRequest(InlineCompletionRequest.type, {
            textDocument: { uri: "file:///work/empty.py" },
            position: { line: 0, character: 0 },
            context: { triggerKind: 1 }
        });
        const items = Array.isArray(empty) ? empty : (empty?.items ?? []);
        assert.ok(items.length <= 1, "an answer, not an error");
        await assert.rejects(
            server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri: "file:///work/empty.py", version: 1 } }),
            (e: unknown) =>
                e instanceof ResponseError &&
                /no hole marker in the document: write \?\?\? where code should go/.test(e.message) &&
                (e.data as lsp.ProblemData).problem === "no-hole"
        );
        await assert.rejects(
            server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri: "file:///work/never-opened.py", version: 1 } }),
            (e: unknown) => e instanceof ResponseError && /is not open/.test(e.message)
        );
        await server.configure(settings());
    });

    test("code actions: rewrite on a selection, fill where markers are", async () => {
        const uri = "file:///work/actions.py";
        await server.open(uri, "a = ???\nb = 2\nc = ???:5\n");
        const ask = (range: { start: { line: number; character: number }; end: { line: number; character: number } }) =>
            server.connection.sendRequest(CodeActionRequest.type, { textDocument: { uri }, range, context: { diagnostics: [] } });
        const cursor = await ask({ start: { line: 1, character: 0 }, end: { line: 1, character: 0 } });
        assert.deepEqual(
            cursor?.map((a) => a.title),
            ["Fill 2 holes with Dream-Coder"]
        );
        const selection = await ask({ start: { line: 0, character: 0 }, end: { line: 1, character: 5 } });
        assert.deepEqual(
            selection?.map((a) => a.title),
            ["Fill 1 hole with Dream-Coder", "Rewrite with Dream-Coder…"]
        );
        const rewrite = selection![1] as { kind?: string; command?: { command: string; arguments?: unknown[] } };
        assert.equal(rewrite.kind, "refactor.rewrite");
        assert.equal(rewrite.command?.command, lsp.CLIENT_COMMANDS.rewriteSelection);
    });

    test("fill holes returns one edit exactly at each marker, jointly decoded", async () => {
        const uri = "file:///work/holes.py";
        const doc = "def mean(xs):\n    total = ???\n    return total / ???:4\n\nprint('keep \\??? as it is')\n# and ???:3 here\n";
        await server.open(uri, doc);
        const partials: lsp.DenoisePartial[] = [];
        const token = "fill-1";
        const sub = server.connection.onProgress(lsp.denoisePartial, token, (p) => {
            partials.push(p);
        });
        const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 }, partialResultToken: token });
        sub.dispose();
        assert.equal(r.stale, false);
        assert.equal(r.holes, 3);
        assert.equal(r.edits.length, 3);
        const markers = [doc.indexOf("???\n"), doc.indexOf("???:4"), doc.indexOf("???:3")];
        const lengths = [3, 5, 5];
        const lines = doc.split("\n");
        r.edits.forEach((e, i) => {
            const line = doc.slice(0, markers[i]).split("\n").length - 1;
            const character = markers[i] - doc.lastIndexOf("\n", markers[i] - 1) - 1;
            assert.deepEqual(e.range, { start: { line, character }, end: { line, character: character + lengths[i] } }, `edit ${i} sits on its marker`);
            assert.ok(lines[line].length >= character + lengths[i]);
        });
        const filled = applyTextEdits(doc, r.edits);
        assert.ok(filled.includes("print('keep \\??? as it is')"), "an escaped marker is left alone");
        assert.ok(filled.startsWith("def mean(xs):\n    total = "));
        // One joint run: the trace covers every hole, revealed over one sequence of steps.
        assert.ok(r.trace);
        assert.ok(r.trace.tokens.every((t) => t.hole >= 0 && t.hole < 3));
        assert.ok(r.trace.forwardPasses > 0 && r.trace.forwardPasses <= 16 + 4 + 3);
        const { totalSteps } = r.trace;
        assert.ok(totalSteps >= 1 && r.trace.tokens.every((t) => t.step < totalSteps));
        assert.ok(partials.length > 0, "partial results stream through $/progress");
        // Progress never passes its total and ends at it, which is the trace's.
        for (const p of partials) assert.ok(p.step <= p.totalSteps, `step ${p.step} of ${p.totalSteps}`);
        assert.equal(partials.at(-1)!.step, partials.at(-1)!.totalSteps);
        assert.equal(partials.at(-1)!.totalSteps, totalSteps);
        assert.equal(partials[0].holes.length, 3);
        assert.ok(
            partials[0].holes.some((h) => h.text.includes(lsp.PLACEHOLDER)),
            "the first step still shows masked places"
        );
        // The job leaves one line in the log.
        const summary = `Filling holes (holes.py): 3 edits, ${r.trace.tokens.length} tokens in ${r.trace.forwardPasses} passes, `;
        assert.ok(
            server.logs.some((l) => l.startsWith(summary) && / \d+ ms$/.test(l)),
            `${summary}… in:\n${server.logs.join("\n")}`
        );
    });

    test("with a model that has expand and delete tokens, `???` starts small and grows, and `???:N` stays N", async () => {
        await server.configure(settings({ model: growingTestModel().path, holes: { startTokens: 2, defaultTokens: 12 } }));
        try {
            const uri = "file:///work/growing.py";
            await server.open(uri, "x = ???\ny = ???:3\n");
            const masked: number[][] = [];
            const token = "grow-1";
            const sub = server.connection.onProgress(lsp.denoisePartial, token, (p) => {
                masked.push(p.holes.map((h) => [...h.text].filter((c) => c === lsp.PLACEHOLDER).length));
            });
            const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 }, partialResultToken: token });
            sub.dispose();
            assert.equal(r.edits.length, 2);
            assert.ok(masked.length > 0, "partial results stream");
            const most = (h: number) => Math.max(...masked.map((m) => m[h]));
            // Two masks to start; the first step reveals one place, which may ask for room (one more mask).
            assert.ok(masked[0][0] <= 3, `the unsized hole starts small (${masked[0][0]} masked after the first step)`);
            assert.ok(most(0) > 3, `the unsized hole grew (at most ${most(0)} masked at once)`);
            assert.ok(most(0) <= 12, "within holes.defaultTokens");
            assert.ok(most(1) <= 3 && r.trace!.tokens.filter((t) => t.hole === 1).length <= 3, "???:3 stays 3 tokens");
            // The trace has each hole's length after each step, for the denoising view.
            const lengths = r.trace!.holeLengths!;
            assert.equal(lengths.length, r.trace!.forwardPasses, "a length per step");
            assert.ok(lengths[0][0] <= 3 && Math.max(...lengths.map((l) => l[0])) > 3, JSON.stringify(lengths));
            // A sized hole never grows; a delete shortens it, as end-of-text shortens a hole's text.
            assert.ok(
                lengths.every((l) => l[1] <= 3),
                "the sized hole never grows"
            );
        } finally {
            await server.configure(settings());
        }
    });

    test("in a CRLF document (Windows) a fill's edit sits on its marker, and the lines it writes break with CRLF", async () => {
        // The bundled model, trained on Python, writes a line break here; the generated test model writes noise.
        await server.configure(settings({ model: join(repoRoot, "models", "dream-mini-py-q8_0.gguf") }));
        try {
            const uri = "file:///work/crlf.py";
            const doc = "def mean(xs):\r\n    ???:24\r\n\r\ndef rest(self):\r\n    pass\r\n";
            await server.open(uri, doc);
            const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
            assert.deepEqual(
                r.edits.map((e) => e.range),
                [{ start: { line: 1, character: 4 }, end: { line: 1, character: 10 } }]
            );
            const text = r.edits[0].newText;
            assert.ok(text.includes("\r\n") && !/(^|[^\r])\n/.test(text), `line breaks, all CRLF: ${JSON.stringify(text)}`);
            assert.ok(applyTextEdits(doc, r.edits).endsWith("\r\n\r\ndef rest(self):\r\n    pass\r\n"));
        } finally {
            await server.configure(settings());
        }
    });

    test("with cacheReuse (the default) a fill after an edit keeps the document's cache; turned off, it does not", async () => {
        const uri = "file:///work/reuse.py";
        const body = Array.from({ length: 30 }, (_, i) => `def f${i}(x):\n    return x * ${i}\n`);
        const doc = (extra: string) => [...body.slice(0, 10), extra, ...body.slice(10, 20), "y = ???:8\n", ...body.slice(20)].join("");
        const fill = async (text: string, version: number) => {
            if (version > 1) {
                await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                    textDocument: { uri, version },
                    contentChanges: [{ text }]
                });
            }
            const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version } });
            assert.equal(r.edits.length, 1);
            return r.trace!.reusedTokens;
        };
        await server.open(uri, doc(""));
        assert.equal(await fill(doc(""), 1), 0, "the document's first request: a full pass");
        const kept = await fill(doc("# a line typed above\n"), 2);
        assert.ok(kept > 200, `after an edit the cache is kept: ${kept} positions`);
        await server.configure(settings({ cacheReuse: false }));
        assert.equal(await fill(doc("# another line\n"), 3), 0, "with cacheReuse off every request starts afresh");
        await server.configure(settings());
    });

    test("remask rewrite returns several disjoint span edits that rebuild its text", async () => {
        const uri = "file:///work/rewrite.py";
        await server.open(uri, SOURCE);
        const range = { start: { line: 3, character: 0 }, end: { line: 8, character: 0 } };
        const r = await server.connection.sendRequest(lsp.rewrite, {
            textDocument: { uri, version: 1 },
            range,
            instruction: "rename result to scaled",
            mode: "remask"
        });
        assert.equal(r.stale, false);
        assert.ok(r.edits.length >= 2, `several edits, got ${r.edits.length}`);
        const selection = `${SOURCE.split("\n").slice(3, 8).join("\n")}\n`;
        const before = SOURCE.slice(0, SOURCE.indexOf(selection));
        assert.equal(applyTextEdits(SOURCE, r.edits), before + r.text);
        for (const e of r.edits) assert.ok(e.range.start.line >= 3 && e.range.end.line <= 8, "edits stay inside the selection");
    });

    test("instruct rewrite: the edits turn the selection into the returned text", async () => {
        const uri = "file:///work/rewrite2.py";
        await server.open(uri, SOURCE);
        const range = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
        const r = await server.connection.sendRequest(lsp.rewrite, {
            textDocument: { uri, version: 1 },
            range,
            instruction: "add type hints",
            mode: "instruct"
        });
        const selection = "def add(a, b):\n    return a + b\n";
        assert.equal(applyTextEdits(SOURCE, r.edits), r.text + SOURCE.slice(selection.length));
        assert.ok(r.text.endsWith("\n"), "the selection's trailing newline is kept");
    });

    test("a cancelled request stops the decode within a step, and the server keeps serving", async () => {
        const uri = "file:///work/sketch.py";
        const doc = 'def fib(n):\n    """The n-th Fibonacci number."""\n';
        await server.configure(settings({ sketch: { tokens: 400 } }));
        await server.open(uri, doc);
        const partials: number[] = [];
        const token = "sketch-1";
        const { CancellationTokenSource } = await import("vscode-jsonrpc");
        const source = new CancellationTokenSource();
        server.connection.onProgress(lsp.denoisePartial, token, (p) => {
            partials.push(p.step);
            if (partials.length === 1) source.cancel();
        });
        await assert.rejects(
            server.connection.sendRequest(
                lsp.sketch,
                { textDocument: { uri, version: 1 }, position: { line: 2, character: 0 }, partialResultToken: token },
                source.token
            ),
            (e: unknown) => e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled
        );
        assert.ok(Math.max(...partials) < 50, `stopped early, last step ${Math.max(...partials)} of 400`);
        await server.configure(settings());
        const r = await server.connection.sendRequest(lsp.sketch, { textDocument: { uri, version: 1 }, position: { line: 2, character: 0 } });
        assert.equal(r.edits.length, 1);
        assert.deepEqual(r.edits[0].range, { start: { line: 2, character: 0 }, end: { line: 2, character: 0 } });
    });

    test("a document edited while the job runs gets no edit", async () => {
        const uri = "file:///work/stale.py";
        const doc = "x = ???:200\n";
        await server.open(uri, doc);
        const pending = server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
        await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
            textDocument: { uri, version: 2 },
            contentChanges: [{ text: "y = ???:200\n" }]
        });
        const r = await pending;
        assert.equal(r.stale, true);
        assert.deepEqual(r.edits, []);
        // A request naming an old version is stale at once.
        const old = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
        assert.equal(old.stale, true);
    });

    test("editing or closing the document stops its job at once: a stale answer, and the next request is not kept waiting", async () => {
        // Exact decoding of a 1,000-token hole: a thousand full passes, far longer than the answer may take.
        await server.configure(settings({ cache: "none" }));
        for (const [uri, change] of [
            ["file:///work/long-edit.py", "edit"],
            ["file:///work/long-close.py", "close"]
        ] as const) {
            await server.open(uri, "x = ???:1000\n");
            const token = `long-${change}`;
            let stepped = () => {};
            const firstStep = new Promise<void>((r) => (stepped = r));
            const sub = server.connection.onProgress(lsp.denoisePartial, token, () => stepped());
            const pending = server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 }, partialResultToken: token });
            await firstStep;
            const changed = performance.now();
            if (change === "edit") {
                await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                    textDocument: { uri, version: 2 },
                    contentChanges: [{ text: "y = ???:1000\n" }]
                });
            } else {
                await server.connection.sendNotification(DidCloseTextDocumentNotification.type, { textDocument: { uri } });
            }
            const r = await pending;
            const waited = performance.now() - changed;
            sub.dispose();
            assert.equal(r.stale, true);
            assert.deepEqual(r.edits, []);
            assert.ok(waited < 3000, `after the ${change} the answer came in ${Math.round(waited)} ms`);
        }
        await server.configure(settings());
    });

    test("an edit job does not wait behind a long inline completion: the completion gives way", async () => {
        // A 1,000-token exact completion (a thousand full passes), then a fill in another document.
        await server.configure(settings({ cache: "none", inlineCompletion: { debounceMs: 0, lineTokens: 8, blockTokens: 1000 } }));
        await server.open("file:///work/ghost.py", "def f():\n\n");
        await server.open("file:///work/urgent.py", "y = ???:4\n");
        let stepped = () => {};
        const busy = new Promise<void>((r) => (stepped = r));
        const watch = setInterval(() => server.statuses.at(-1)?.state === "busy" && stepped(), 10);
        const ghost = server.connection
            .sendRequest(InlineCompletionRequest.type, {
                textDocument: { uri: "file:///work/ghost.py" },
                position: { line: 1, character: 0 },
                context: { triggerKind: 2 }
            })
            .then(
                (r) => r,
                (e: unknown) => e
            );
        await busy;
        clearInterval(watch);
        const asked = performance.now();
        const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri: "file:///work/urgent.py", version: 1 } });
        const waited = performance.now() - asked;
        assert.equal(r.edits.length, 1);
        assert.ok(waited < 3000, `the fill answered in ${Math.round(waited)} ms`);
        const g = await ghost;
        const items = g instanceof ResponseError ? [] : Array.isArray(g) ? g : ((g as { items: unknown[] } | null)?.items ?? []);
        assert.deepEqual(items, [], "the completion that gave way offers nothing");
        await server.configure(settings());
    });

    test("settings beyond the model and the machine are clamped and logged, and requests still answer", async () => {
        const uri = "file:///work/hostile.py";
        // More text than the model's 4,096-token trained context around the hole.
        await server.open(uri, `${SOURCE.repeat(300)}total = ???:8\n${SOURCE.repeat(100)}`);
        await server.configure(
            settings({
                threads: 256,
                contextTokens: 131072,
                steps: 4096,
                blockLength: 4096,
                inlineCompletion: { debounceMs: 0, lineTokens: 1024, blockTokens: 4096 }
            })
        );
        const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
        assert.equal(r.edits.length, 1, "the hole is filled from as much text as the model's context holds");
        assert.ok(
            server.logs.some((l) => /dreamCoder\.threads: 256 is more than this machine's \d+ cores; using \d+/.test(l)),
            server.logs.join("\n")
        );
        assert.ok(
            server.logs.some((l) => /dreamCoder\.contextTokens: 131072 is more than the model's trained context of 4096 tokens/.test(l)),
            server.logs.join("\n")
        );
        // Work per keystroke and per step is bounded: a 1,024-token line hole in one 4,096-token block took minutes.
        for (const [setting, max] of [
            ["blockLength", 256],
            ["inlineCompletion.lineTokens", 128],
            ["inlineCompletion.blockTokens", 512]
        ] as const) {
            assert.ok(
                server.logs.some((l) => l.startsWith(`dreamCoder.${setting}: `) && l.endsWith(`; using ${max}`)),
                `${setting} lowered to ${max}:\n${server.logs.join("\n")}`
            );
        }
        const started = performance.now();
        const completion = await server.connection.sendRequest(InlineCompletionRequest.type, {
            textDocument: { uri },
            position: { line: 1, character: "    return a".length },
            context: { triggerKind: 2 }
        });
        const items = Array.isArray(completion) ? completion : (completion?.items ?? []);
        assert.equal(items.length, 1, "the inline completion answers");
        assert.ok(performance.now() - started < 60_000, `it took ${Math.round(performance.now() - started)} ms`);
        await server.configure(settings());
    });

    test("a model whose mask-token id is outside its vocabulary: an error naming the file, and the status says error", async () => {
        const uri = "file:///work/bad-mask.py";
        await server.open(uri, "a = ???\n");
        const model = testModel({ arch: "dream", overrides: { "tokenizer.ggml.mask_token_id": { type: "u32", value: 99999 } } });
        await server.configure(settings({ model }));
        await assert.rejects(
            server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } }),
            (e: unknown) => e instanceof ResponseError && e.message.startsWith(model) && /mask token id .*outside the vocabulary/.test(e.message)
        );
        assert.equal(server.statuses.at(-1)?.state, "error");
        await server.configure(settings());
    });

    test("with no model chosen a request says so, and the status stays unset rather than turning into an error", async () => {
        const uri = "file:///work/no-model.py";
        await server.open(uri, "a = ???\n");
        await server.configure(settings({ model: "" }));
        await assert.rejects(
            server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } }),
            (e: unknown) =>
                e instanceof ResponseError && (e.data as lsp.ProblemData | undefined)?.problem === "no-model" && /^No model is chosen yet/.test(e.message)
        );
        assert.equal(server.statuses.at(-1)?.state, "unset");
        await server.configure(settings());
    });

    test("a bad model setting gives a clear error while other requests still answer", async () => {
        const uri = "file:///work/bad.py";
        await server.open(uri, "a = ???\n");
        await server.configure(settings({ model: "/nowhere/model.gguf" }));
        await assert.rejects(
            server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } }),
            (e: unknown) => e instanceof ResponseError && /\/nowhere\/model\.gguf/.test(e.message) && /not found|does not exist|no such/i.test(e.message)
        );
        const actions = await server.connection.sendRequest(CodeActionRequest.type, {
            textDocument: { uri },
            range: { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } },
            context: { diagnostics: [] }
        });
        assert.ok(actions?.some((a) => a.title === "Fill 1 hole with Dream-Coder"));
        const models = await server.connection.sendRequest(lsp.listModels);
        assert.ok(models.models.length >= 4);
        assert.ok(server.statuses.some((s) => s.state === "error" && s.message?.includes("/nowhere/model.gguf")));
        await server.configure(settings());
        const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
        assert.equal(r.edits.length, 1);
        assert.ok(server.statuses.some((s) => s.state === "ready" && s.backend === "CPU"));
    });

    test("quantized models (what users download) load and answer fills and inline completions", async () => {
        const uri = "file:///work/quantized.py";
        const doc = "def mean(xs):\n    total = ???\n    return total / ???:4\n";
        await server.open(uri, doc);
        try {
            for (const type of QUANT_TYPES) {
                await server.configure(settings({ model: quantizedTestModel(type) }));
                const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
                assert.equal(r.edits.length, 2, `${type}: one edit per hole`);
                assert.deepEqual(
                    r.edits.map((e) => e.range.start),
                    [
                        { line: 1, character: 12 },
                        { line: 2, character: 19 }
                    ],
                    `${type}: edits on the markers`
                );
                const status = server.statuses.at(-1)!;
                assert.equal(status.state, "ready", `${type}: ${status.message ?? ""}`);
                assert.ok(status.model.endsWith(`-${type}.gguf`), `${type}: the status names the quantized file`);
                const completion = await server.connection.sendRequest(InlineCompletionRequest.type, {
                    textDocument: { uri },
                    position: { line: 0, character: 4 },
                    context: { triggerKind: 2 }
                });
                const items = Array.isArray(completion) ? completion : (completion?.items ?? []);
                assert.equal(items.length, 1, `${type}: an inline completion`);
            }
        } finally {
            await server.configure(settings());
        }
    });
});

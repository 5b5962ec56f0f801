// The language server against protocol input a client should not send: requests outside the lifecycle, missing
// or malformed params, places outside the document, oversized text. Each gets an LSP error or a valid answer;
// none gets an answer built on the bad input, and the server keeps serving.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
    ConfigurationRequest,
    DidOpenTextDocumentNotification,
    ErrorCodes,
    InitializeRequest,
    InlineCompletionRequest,
    LSPErrorCodes,
    ResponseError,
    WorkDoneProgressCreateRequest
} from "vscode-languageserver-protocol/node";
import { spawnLanguageServer, startLanguageServer, type LanguageServerProcess } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";
import { testModel } from "../tools/test-models";

const settings = () => ({ model: testModel({ arch: "dream" }), threads: 1, inlineCompletion: { debounceMs: 0, lineTokens: 4, blockTokens: 8 } });

const errorCode = (code: number, message?: RegExp) => (e: unknown) => {
    assert.ok(e instanceof ResponseError, `expected an LSP error, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (message) assert.match(e.message, message);
    return true;
};

describe("the lifecycle", () => {
    test("a request before initialize is refused with ServerNotInitialized, one after shutdown with InvalidRequest", async () => {
        const { child, connection } = spawnLanguageServer();
        connection.onRequest(ConfigurationRequest.type, (params) => params.items.map(() => settings()));
        connection.onRequest("client/registerCapability", () => null);
        for (const method of [lsp.status.method, "window/logMessage"]) connection.onNotification(method, () => undefined);
        connection.listen();
        try {
            await assert.rejects(connection.sendRequest(lsp.listModels), errorCode(ErrorCodes.ServerNotInitialized));
            await assert.rejects(
                connection.sendRequest(lsp.fillHoles, { textDocument: { uri: "file:///a.py", version: 1 } }),
                errorCode(ErrorCodes.ServerNotInitialized)
            );
            await connection.sendRequest(InitializeRequest.type, { processId: process.pid, rootUri: null, capabilities: {} });
            assert.ok((await connection.sendRequest(lsp.listModels)).models.length >= 4);
            await connection.sendRequest("shutdown");
            await assert.rejects(connection.sendRequest(lsp.listModels), errorCode(ErrorCodes.InvalidRequest));
            await connection.sendNotification("exit");
        } finally {
            child.kill();
            connection.dispose();
        }
    });

    test("a fill sent right after initialized waits for the settings the server pulls", async () => {
        const { child, connection } = spawnLanguageServer();
        // The editor answers the configuration request a moment later, as a busy one does.
        connection.onRequest(ConfigurationRequest.type, async (params) => {
            await new Promise((r) => setTimeout(r, 300));
            return params.items.map(() => settings());
        });
        connection.onRequest("client/registerCapability", () => null);
        connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
        for (const method of [lsp.status.method, "window/logMessage"]) connection.onNotification(method, () => undefined);
        connection.listen();
        try {
            await connection.sendRequest(InitializeRequest.type, {
                processId: process.pid,
                rootUri: null,
                capabilities: { workspace: { configuration: true } }
            });
            const uri = "file:///work/early.py";
            await connection.sendNotification("initialized", {});
            await connection.sendNotification(DidOpenTextDocumentNotification.type, {
                textDocument: { uri, languageId: "python", version: 1, text: "x = ???:3\n" }
            });
            const r = await connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
            assert.equal(r.edits.length, 1);
        } finally {
            child.kill();
            connection.dispose();
        }
    });
});

describe("malformed params and places outside the document", () => {
    let server: LanguageServerProcess;
    const uri = "file:///work/params.py";
    const text = "def f(x):\n    return x\n";
    before(async () => {
        server = await startLanguageServer(settings());
        await server.open(uri, text);
    });
    after(async () => {
        await server?.stop();
    });

    const complete = (position: unknown) =>
        server.connection.sendRequest(InlineCompletionRequest.type, { textDocument: { uri }, position, context: { triggerKind: 2 } } as never);

    test("null params are InvalidParams, not an internal error", async () => {
        // vscode-jsonrpc will not send null params, so these go over the IPC channel as they are.
        let id = 1_000_000;
        const raw = (method: string) =>
            new Promise<{ error?: { code: number; message: string } }>((resolve) => {
                const own = ++id;
                const onMessage = (m: { id?: number; error?: { code: number; message: string } }) => {
                    if (m.id !== own) return;
                    server.child.off("message", onMessage);
                    resolve(m);
                };
                server.child.on("message", onMessage);
                server.child.send({ jsonrpc: "2.0", id: own, method, params: null });
            });
        for (const method of [lsp.fillHoles.method, lsp.rewrite.method, lsp.sketch.method, InlineCompletionRequest.method]) {
            const answer = await raw(method);
            assert.equal(answer.error?.code, ErrorCodes.InvalidParams, `${method}: ${JSON.stringify(answer)}`);
            assert.match(answer.error.message, /must name a document/);
        }
    });

    test("negative, 2^31 and non-numeric positions are InvalidParams", async () => {
        for (const position of [{ line: -1, character: 0 }, { line: 0, character: 2 ** 31 }, { line: "1", character: 0 }, { line: 0.5, character: 0 }, null]) {
            await assert.rejects(complete(position), errorCode(ErrorCodes.InvalidParams, /whole numbers from 0 to 2147483647/), JSON.stringify(position));
        }
    });

    test("a place past the end of a line or of the document is answered at the nearest real place", async () => {
        for (const [position, real] of [
            [
                { line: 0, character: 500 },
                { line: 0, character: 9 }
            ],
            [
                { line: 99, character: 3 },
                { line: 2, character: 0 }
            ]
        ] as const) {
            const r = await complete(position);
            const items = Array.isArray(r) ? r : (r?.items ?? []);
            assert.ok(items.length > 0, `a suggestion at ${JSON.stringify(position)}, so that its range is checked`);
            for (const item of items) assert.deepEqual(item.range, { start: real, end: real }, `asked at ${JSON.stringify(position)}`);
        }
    });

    test("a reversed range, an unknown mode and a missing instruction are InvalidParams", async () => {
        const rewrite = (over: Record<string, unknown>) =>
            server.connection.sendRequest(lsp.rewrite, {
                textDocument: { uri, version: 1 },
                range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } },
                instruction: "rename x",
                ...over
            } as never);
        await assert.rejects(
            rewrite({ range: { start: { line: 1, character: 4 }, end: { line: 0, character: 2 } } }),
            errorCode(ErrorCodes.InvalidParams, /ends before it starts/)
        );
        await assert.rejects(rewrite({ mode: "rewrite-everything" }), errorCode(ErrorCodes.InvalidParams, /Unknown rewrite mode "rewrite-everything"/));
        await assert.rejects(rewrite({ instruction: 42 }), errorCode(ErrorCodes.InvalidParams, /needs an instruction/));
    });

    test("an inline completion in the middle of a 5 MB line answers, without tokenizing the line", async () => {
        const long = "file:///work/minified.js";
        const half = "var a=1;".repeat(312_500);
        await server.open(long, `${half}x=${half}\n`, "javascript");
        const started = performance.now();
        const r = await server.connection.sendRequest(InlineCompletionRequest.type, {
            textDocument: { uri: long },
            position: { line: 0, character: half.length + 2 },
            context: { triggerKind: 2 }
        });
        assert.ok(r !== null);
        assert.deepEqual(
            server.logs.filter((l) => l.startsWith("inline completion")),
            [],
            "no error"
        );
        assert.ok(performance.now() - started < 5000, `answered in ${Math.round(performance.now() - started)} ms`);
    });

    test("a 2 MB instruction is refused at once with its size, and the server keeps serving", async () => {
        const started = performance.now();
        await assert.rejects(
            server.connection.sendRequest(lsp.rewrite, {
                textDocument: { uri, version: 1 },
                range: { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } },
                instruction: "rename x ".repeat(2_000_000 / 9)
            }),
            errorCode(LSPErrorCodes.RequestFailed, /the instruction is 1,999,998 characters long; at most 4,096 are accepted/)
        );
        assert.ok(performance.now() - started < 5000);
        const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } }).catch((e: Error) => e);
        assert.match(String((r as Error).message), /no hole marker/);
    });
});

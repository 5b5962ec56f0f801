// Model reloads (a change of threads reloads the model) must not leak: the server's memory levels off.
// Measured here (docs/language-server.md, "Memory across reloads"): ~2.4 MB a reload was reported; what grows is glibc's
// per-thread malloc arenas, which fill up and then stay. With one arena (MALLOC_ARENA_MAX=1, set for this
// server only) that growth is gone and a leak of that size would stand out: 60 reloads would add ~144 MB.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { startLanguageServer } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";
import { testModel } from "../tools/test-models";

const rssMb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]) / 1024;

test("ninety model reloads: memory levels off after the first thirty", { timeout: 300_000 }, async () => {
    const base = { model: testModel({ arch: "dream" }), inlineCompletion: { debounceMs: 0 } };
    process.env.MALLOC_ARENA_MAX = "1";
    const server = await startLanguageServer({ ...base, threads: 1 });
    delete process.env.MALLOC_ARENA_MAX;
    try {
        const uri = "file:///work/reload.py";
        await server.open(uri, "x = ???:8\n");
        const reload = async (i: number) => {
            await server.configure({ ...base, threads: 1 + (i % 2) });
            const r = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
            assert.equal(r.edits.length, 1);
        };
        for (let i = 0; i < 30; i++) await reload(i);
        const warm = rssMb(server.child.pid!);
        for (let i = 30; i < 90; i++) await reload(i);
        const grown = rssMb(server.child.pid!) - warm;
        // V8's heap moves RSS by several MB either way; 24 MB is a sixth of the reported leak.
        assert.ok(grown < 24, `60 reloads after the first 30 added ${grown.toFixed(1)} MB (from ${warm.toFixed(1)} MB)`);
    } finally {
        await server.stop();
    }
});

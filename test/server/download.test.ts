// Model downloads through node-llama-cpp's downloader, from a local HTTP server with range support: an
// interrupted download leaves only its temporary file (never a file the loader would pick up), and the next
// run resumes it instead of starting over.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { downloadModel } from "../../server/src/catalog";

test("an interrupted download is never loadable and resumes where it stopped", async () => {
    // Large enough that the downloader writes to disk before the interruption (it buffers small amounts).
    const data = randomBytes(64 << 20);
    let run = 1;
    let requested = 0; // bytes the second run asks for by range (its first request is a probe without one)
    const server = http.createServer(async (req, res) => {
        const m = /bytes=(\d+)-(\d*)/.exec(req.headers.range ?? "");
        const start = m ? Number(m[1]) : 0;
        const end = m?.[2] ? Number(m[2]) : data.length - 1;
        const body = data.subarray(start, end + 1);
        res.writeHead(m ? 206 : 200, {
            "content-length": body.length,
            "accept-ranges": "bytes",
            "content-type": "application/octet-stream",
            ...(m ? { "content-range": `bytes ${start}-${end}/${data.length}` } : {})
        });
        if (req.method === "HEAD") return res.end();
        const own = run;
        if (own === 2 && m) requested += body.length;
        for (let i = 0; i < body.length && !res.destroyed; i += 256 << 10) {
            const chunk = body.subarray(i, i + (256 << 10));
            res.write(chunk);
            if (own === 1) await new Promise((r) => setTimeout(r, 5));
        }
        res.end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/model.gguf`;
        const dir = mkdtempSync(join(tmpdir(), "dream-coder-download-"));
        const final = join(dir, "model.gguf");
        const interrupt = new AbortController();
        await assert.rejects(
            downloadModel(url, dir, "model.gguf", {
                signal: interrupt.signal,
                onProgress: (p) => {
                    if (p.downloadedBytes > data.length * 0.6) interrupt.abort();
                }
            }),
            /cancelled; running it again resumes it/
        );
        assert.equal(existsSync(final), false, "no file under the model's name after an interruption");
        assert.deepEqual(readdirSync(dir), ["model.gguf.ipull"]);

        run = 2;
        const progress: number[] = [];
        const path = await downloadModel(url, dir, "model.gguf", { onProgress: (p) => progress.push(p.downloadedBytes) });
        assert.equal(path, final);
        assert.ok(readFileSync(final).equals(data), "the resumed file is byte for byte the served one");
        assert.ok(requested > 0 && requested < data.length * 0.7, `resumed: ${requested} of ${data.length} bytes asked for again`);
        assert.deepEqual(readdirSync(dir), ["model.gguf"]);
    } finally {
        server.close();
    }
});

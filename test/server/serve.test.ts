// `dream-coder serve` as clients use it: the compiled CLI as a child process with the bundled trained model on one
// thread, spoken to over real HTTP with the bodies llama.vscode, OpenAI's clients and curl send.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { applyEdits } from "../../server/src/spanEdits";
import { repoRoot } from "../tools/test-models";

const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
const MODEL = join(repoRoot, "models", "dream-mini-py-q8_0.gguf");

interface Running {
    url: string;
    stop(): Promise<void>;
}

/** Starts the server on a free port (--port 0) and reads its address from the line it prints. */
function startServer(...args: string[]): Promise<Running> {
    const child = spawn(process.execPath, [CLI, "serve", "--port", "0", "-m", MODEL, "-t", "1", ...args], {
        env: { ...process.env, DREAM_CODER_API_KEY: "" },
        stdio: ["ignore", "pipe", "pipe"]
    });
    let stdout = "";
    let stderr = "";
    return new Promise((resolve, reject) => {
        // The address comes first; requests wait for the model meanwhile, /health says 503 until it is loaded.
        const ready = () => {
            const m = /serving dream-mini-py-q8_0\.gguf on (http:\/\/\S+)/.exec(stdout);
            if (!m || !stderr.includes("dream-mini-py-q8_0.gguf is loaded")) return;
            resolve({
                url: m[1],
                stop: () =>
                    new Promise((done) => {
                        if (child.exitCode !== null) return done();
                        child.once("exit", () => done());
                        child.kill();
                    })
            });
        };
        child.stdout!.on("data", (d) => {
            stdout += d;
            ready();
        });
        child.stderr!.on("data", (d) => {
            stderr += d;
            ready();
        });
        child.once("exit", (code) => reject(new Error(`the server exited (${code}) before listening: ${stderr}`)));
    });
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
    const response = await fetch(url, { method: "POST", body: typeof body === "string" ? body : JSON.stringify(body), headers, signal });
    const text = await response.text();
    return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) };
}

async function get(url: string, headers: Record<string, string> = {}) {
    const response = await fetch(url, { headers });
    const text = await response.text();
    return { status: response.status, text, json: () => JSON.parse(text) };
}

/** The `data:` payloads of a server-sent event stream, in order. */
function events(text: string): string[] {
    return text
        .split("\n\n")
        .filter((e) => e.trim() !== "")
        .map((e) => {
            assert.match(e, /^data: /, `every event is a data line: ${e}`);
            return e.slice("data: ".length);
        });
}

/** An error answer: llama-server's and OpenAI's shape, with a sentence. */
function assertError(r: { status: number; json: () => { error: { code: number; message: string; type: string } } }, status: number, message: RegExp) {
    assert.equal(r.status, status);
    const { error } = r.json();
    assert.equal(error.code, status);
    assert.equal(typeof error.type, "string");
    assert.match(error.message, message);
}

const PREFIX = [
    "def median(xs):",
    '    """The middle value of xs (the mean of the two middle values for an even count)."""',
    "    ordered = sorted(xs)",
    "    n = len(ordered)",
    "    if n % 2 == 1:",
    "        return ordered[n // 2]",
    "    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2",
    "",
    "",
    "def variance(xs):",
    "    m = mean(xs)",
    ""
].join("\n");

/** The body llama.vscode sends to /infill for a completion (its createRequestPayload), with an unknown field added. */
const LLAMA_VSCODE_INFILL = {
    input_prefix: PREFIX,
    input_suffix: "\n\ndef main():\n    pass\n",
    input_extra: [{ text: "import statistics\n", time: 1700000000, filename: "util.py" }],
    prompt: "    return ",
    n_predict: 128,
    top_k: 40,
    top_p: 0.99,
    stream: false,
    samplers: ["top_k", "top_p", "infill"],
    cache_prompt: true,
    n_indent: 4,
    t_max_prompt_ms: 500,
    t_max_predict_ms: 1000,
    not_a_field_anyone_sends: { nested: true }
};

/** A request that runs for seconds on the bundled model: a 400-token hole in exact mode. */
const SLOW_FILL = { text: "import os\n\ndef walk(root):\n    for name in os.listdir(root):\n        ???:400\n", cache: "none" };

test("serve refuses an address other machines reach without an API key, with a sentence", () => {
    const r = spawnSync(process.execPath, [CLI, "serve", "--host", "0.0.0.0", "-m", MODEL], {
        encoding: "utf8",
        env: { ...process.env, DREAM_CODER_API_KEY: "" },
        timeout: 30_000
    });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^dream-coder: --host 0\.0\.0\.0 lets other machines connect: set an API key \(--api-key KEY or the DREAM_CODER_API_KEY/);
});

describe("serve without a key, on loopback", () => {
    let server: Running;
    before(async () => {
        server = await startServer("--max-body", "65536", "--max-text", "20000");
    });
    after(async () => {
        await server?.stop();
    });

    test("/health, /props and /v1/models describe the model, never the server's path", async () => {
        assert.deepEqual((await get(`${server.url}/health`)).json(), { status: "ok" });
        const props = (await get(`${server.url}/props`)).json();
        assert.equal(props.model_path, "dream-mini-py-q8_0.gguf");
        assert.equal(props.default_generation_settings.n_ctx, 512);
        assert.equal(props.default_generation_settings.params.temperature, 0);
        assert.equal(props.total_slots, 1);
        assert.match(props.chat_template, /<\|im_start\|>/);
        const models = (await get(`${server.url}/v1/models`)).json();
        assert.equal(models.object, "list");
        assert.deepEqual(
            models.data.map((m: { id: string; object: string }) => [m.id, m.object]),
            [["dream-mini-py-q8_0.gguf", "model"]]
        );
        assert.equal(models.data[0].meta.n_ctx_train, 512);
    });

    test("/infill takes llama.vscode's body and answers in llama-server's shape", async () => {
        const r = await post(`${server.url}/infill`, LLAMA_VSCODE_INFILL);
        assert.equal(r.status, 200, r.text);
        const body = r.json();
        assert.equal(typeof body.content, "string");
        assert.ok(body.content.length > 0, "the trained model writes something after `return `");
        assert.ok(!body.content.includes("\n"), "in the middle of a line the completion ends with the line");
        assert.equal(body.stop, true);
        assert.equal(body.truncated, false, "the whole text fits the window");
        assert.ok(["eos", "limit"].includes(body.stop_type));
        assert.equal(body.generation_settings.n_ctx, 512);
        assert.equal(body.generation_settings.n_predict, 128, "n_predict sets the hole (a line's, at most 128)");
        assert.equal(body.generation_settings.top_p, 0.99, "the request's top_p, not the server's");
        assert.ok(body.tokens_evaluated > 100, `the model saw the prefix, suffix and extra context (${body.tokens_evaluated} tokens)`);
        assert.equal(body.tokens_predicted, body.timings.predicted_n);
        assert.ok(body.timings.predicted_ms > 0);
        assert.equal(typeof body.tokens_cached, "number");
        // The same hole through OpenAI's endpoint: the same job, the same text.
        const prompt = `import statistics\n${PREFIX}    return `;
        // Another client's cache (its `user`), and the server's top_p: a decode of its own, not the first one's answer again.
        const openai = await post(`${server.url}/v1/completions`, {
            model: "anything",
            prompt,
            suffix: LLAMA_VSCODE_INFILL.input_suffix,
            max_tokens: 128,
            user: "another client"
        });
        assert.equal(openai.status, 200, openai.text);
        const completion = openai.json();
        assert.equal(completion.object, "text_completion");
        assert.equal(completion.model, "dream-mini-py-q8_0.gguf");
        assert.equal(completion.choices[0].text, body.content);
        assert.ok(["stop", "length"].includes(completion.choices[0].finish_reason));
        // Continue and twinny write the suffix into the prompt with Qwen's FIM markers.
        const fim = await post(`${server.url}/v1/completions`, {
            prompt: `<|fim_prefix|>${prompt}<|fim_suffix|>${LLAMA_VSCODE_INFILL.input_suffix}<|fim_middle|>`,
            max_tokens: 128
        });
        assert.equal(fim.json().choices[0].text, body.content);
    });

    test("a client's id keeps its cache for its next request; cache_prompt false keeps none", async () => {
        const ask = async (suffix: string, extra: object = {}) => {
            const r = await post(`${server.url}/infill`, {
                input_prefix: PREFIX,
                input_suffix: suffix,
                prompt: "    return ",
                n_predict: 16,
                id_slot: 5,
                ...extra
            });
            assert.equal(r.status, 200, r.text);
            return r.json();
        };
        await ask("\n\ndef main():\n    print(1)\n");
        const next = await ask("\n\ndef main():\n    print(2)\n");
        assert.ok(next.tokens_cached > 64, `the unchanged lines came from the cache (${next.tokens_cached} of ${next.tokens_evaluated} tokens)`);
        const fresh = await ask("\n\ndef main():\n    print(3)\n", { cache_prompt: false });
        assert.equal(fresh.tokens_cached, 0);
        // n_predict 0 (llama.vscode's request that only sends new context) answers at once with nothing.
        const none = await post(`${server.url}/infill`, { input_prefix: "", input_suffix: "", input_extra: [{ text: "x = 1\n" }], n_predict: 0 });
        assert.equal(none.json().content, "");
    });

    test("streamed completions (/infill's events, /v1/completions' chunks) join to the plain answer", async () => {
        // Streamed first, so that it decodes (the plain request then gets the completer's cached answer).
        const infill = { input_prefix: `${PREFIX}    total = 0\n`, input_suffix: "    return total\n", n_predict: 48, stream: true };
        const streamed = await post(`${server.url}/infill`, infill);
        assert.match(streamed.headers.get("content-type") ?? "", /^text\/event-stream/);
        const data = events(streamed.text).map((d) => JSON.parse(d));
        assert.ok(data.slice(0, -1).every((d) => d.stop === false && typeof d.content === "string"));
        const last = data.at(-1);
        assert.equal(last.stop, true);
        assert.equal(last.content, "");
        assert.ok(last.timings.predicted_ms > 0, "the last event carries the whole answer's fields");
        const plain = (await post(`${server.url}/infill`, { ...infill, stream: false })).json();
        assert.equal(data.map((d) => d.content).join(""), plain.content);

        const completion = { prompt: `${PREFIX}    for x in xs:\n`, suffix: "    return total\n", max_tokens: 48 };
        const chunks = events((await post(`${server.url}/v1/completions`, { ...completion, stream: true })).text);
        assert.equal(chunks.at(-1), "[DONE]");
        const parsed = chunks.slice(0, -1).map((c) => JSON.parse(c));
        assert.ok(parsed.every((c) => c.object === "text_completion"));
        assert.ok(["stop", "length"].includes(parsed.at(-1).choices[0].finish_reason));
        const text = (await post(`${server.url}/v1/completions`, completion)).json().choices[0].text;
        assert.equal(parsed.map((c) => c.choices[0].text).join(""), text);
    });

    test("/v1/chat/completions answers, and streamed as server-sent events gives the same text ending with [DONE]", async () => {
        const request = { model: "dream-coder", messages: [{ role: "user", content: "def add(a, b):" }], max_tokens: 48 };
        const plain = await post(`${server.url}/v1/chat/completions`, request);
        assert.equal(plain.status, 200, plain.text);
        const reply = plain.json();
        assert.equal(reply.object, "chat.completion");
        assert.equal(reply.choices[0].message.role, "assistant");
        const content: string = reply.choices[0].message.content;
        assert.ok(content.length > 0, "the trained model replies with some code");
        assert.ok(reply.usage.prompt_tokens > 0 && reply.usage.total_tokens === reply.usage.prompt_tokens + reply.usage.completion_tokens);
        const streamed = await post(`${server.url}/v1/chat/completions`, { ...request, stream: true });
        assert.equal(streamed.status, 200);
        assert.match(streamed.headers.get("content-type") ?? "", /^text\/event-stream/);
        const data = events(streamed.text);
        assert.equal(data.at(-1), "[DONE]");
        const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
        for (const c of chunks) assert.equal(c.object, "chat.completion.chunk");
        assert.equal(chunks[0].choices[0].delta.role, "assistant");
        assert.equal(chunks.map((c) => c.choices[0].delta.content ?? "").join(""), content);
        assert.ok(chunks.filter((c) => c.choices[0].delta.content).length >= 2, "the reply streams in pieces as it settles, not all at the end");
        assert.equal(chunks.at(-1).choices[0].finish_reason, reply.choices[0].finish_reason);
        assert.ok(chunks.slice(0, -1).every((c) => c.choices[0].finish_reason === null));
        // llama.vscode's chat body: llama-server's sampler fields, and max_tokens -1 for "the server's".
        const llamaVscode = await post(`${server.url}/v1/chat/completions`, {
            messages: [
                { role: "system", content: "You are an expert coder." },
                { role: "user", content: "def add(a, b):" }
            ],
            stream: false,
            cache_prompt: true,
            samplers: "edkypmxt",
            temperature: 0.8,
            top_k: 40,
            min_p: 0.05,
            dry_penalty_last_n: -1,
            max_tokens: -1
        });
        assert.equal(llamaVscode.status, 200, llamaVscode.text);
        assert.equal(typeof llamaVscode.json().choices[0].message.content, "string");
    });

    test("/dream/fill fills every hole jointly, each step streamed with the holes' text so far", async () => {
        const text = "def mean(xs):\n    total = ???:6\n    return total / ???:4\n";
        const plain = await post(`${server.url}/dream/fill`, { text, steps: 6 });
        assert.equal(plain.status, 200, plain.text);
        const filled = plain.json();
        assert.equal(filled.holes, 2);
        assert.equal(filled.edits.length, 2);
        assert.equal(filled.text, applyEdits(text, filled.edits));
        assert.ok(!filled.text.includes("???"));
        assert.ok(filled.text.startsWith("def mean(xs):\n    total = ") && filled.text.includes("\n    return total / "), "the text between holes stays");
        assert.ok(filled.trace.tokens.every((t: { step: number; hole: number }) => t.step < filled.trace.totalSteps && t.hole < 2));
        const streamed = await post(`${server.url}/dream/fill`, { text, steps: 6, stream: true });
        const data = events(streamed.text);
        assert.equal(data.at(-1), "[DONE]");
        const steps = data.slice(0, -2).map((d) => JSON.parse(d));
        assert.ok(steps.length >= 2, `${steps.length} step events`);
        for (const [i, s] of steps.entries()) {
            assert.equal(s.type, "step");
            assert.equal(s.texts.length, 2);
            if (i > 0) assert.ok(s.step > steps[i - 1].step);
        }
        assert.ok(steps[0].texts.join("").includes("░"), "the first step leaves places masked");
        const result = JSON.parse(data.at(-2)!);
        assert.equal(result.type, "result");
        assert.deepEqual(result.edits, filled.edits, "the same run as without streaming");
        const noHole = await post(`${server.url}/dream/fill`, { text: "x = 1\n" });
        assertError(noHole, 400, /^The text has no hole marker: write \?\?\? where code should go/);
    });

    test("/dream/rewrite answers with span edits inside the span, and the document they make", async () => {
        const text = "import math\n\ndef area(r):\n    return 3.14 * r * r\n\nprint(area(2))\n";
        const start = text.indexOf("def area");
        const end = text.indexOf("\nprint");
        const r = await post(`${server.url}/dream/rewrite`, { text, start, end, instruction: "use math.pi", language: "python", steps: 16 });
        assert.equal(r.status, 200, r.text);
        const body = r.json();
        assert.equal(body.document, applyEdits(text, body.edits));
        for (const e of body.edits) assert.ok(e.start >= start && e.end <= end, `edit ${JSON.stringify(e)} stays in the span`);
        assert.equal(body.document.slice(0, start), text.slice(0, start));
        assert.ok(body.document.endsWith(text.slice(end)));
        assert.equal(typeof body.text, "string");
        const outside = await post(`${server.url}/dream/rewrite`, { text, start: 10, end: 999, instruction: "x" });
        assertError(outside, 400, new RegExp(`^"end" must be a whole number from 10 to ${text.length}, not 999\\.$`));
    });

    test("/tokenize and /detokenize round-trip text, special tokens included", async () => {
        const content = "<|im_start|>user\ndef f(x):\n    return x * 2  # é\n";
        const tokens = (await post(`${server.url}/tokenize`, { content })).json().tokens;
        assert.ok(tokens.length > 5 && tokens.every(Number.isInteger));
        assert.equal((await post(`${server.url}/detokenize`, { tokens })).json().content, content);
        const pieces = (await post(`${server.url}/tokenize`, { content, with_pieces: true })).json().tokens;
        assert.deepEqual(
            pieces.map((p: { id: number }) => p.id),
            tokens
        );
        const plain = (await post(`${server.url}/tokenize`, { content, parse_special: false })).json().tokens;
        assert.ok(plain.length > tokens.length, "without parse_special the markup is plain text");
        assertError(await post(`${server.url}/detokenize`, { tokens: [1, 4096] }), 400, /^"tokens" must be token ids from 0 to 4095; item 1 is 4096\.$/);
    });

    test("wrong types and bad bodies get a 400 with a sentence, and the server serves on", async () => {
        const cases: [string, unknown, RegExp][] = [
            ["/infill", { input_prefix: "x", n_predict: "128" }, /^"n_predict" must be a whole number of at least -1, not "128"\.$/],
            ["/infill", { input_prefix: 42 }, /^"input_prefix" must be text \(a JSON string\), not 42\.$/],
            ["/infill", { input_prefix: "x", temperature: "hot" }, /^"temperature": "hot" is not valid \(a number from 0 to 10\)\.$/],
            ["/infill", { input_prefix: "x", block_length: 1000 }, /^"block_length": 1000 is more than 256/],
            ["/infill", { input_extra: [{ filename: "a.py" }] }, /^"input_extra" must be a list of \{"filename", "text"\} objects; item 0 has no text\.$/],
            ["/v1/completions", { prompt: ["a", "b"] }, /^"prompt" must be text \(or a list of one text\)/],
            ["/v1/completions", { prompt: "x", n: 2 }, /^"n" must be 1/],
            ["/v1/chat/completions", { messages: [] }, /^"messages" must be a non-empty list/],
            ["/v1/chat/completions", { messages: [{ role: "tool", content: "x" }] }, /^messages\[0\] has role "tool"/],
            ["/v1/chat/completions", { messages: [{ role: "user", content: [{ type: "image_url" }] }] }, /the model reads text only/],
            ["/infill", "{not json", /^The request body is not JSON/],
            ["/infill", "[1, 2]", /^The request body must be a JSON object/]
        ];
        for (const [path, body, message] of cases) assertError(await post(`${server.url}${path}`, body), 400, message);
        assertError(await post(`${server.url}/no/such/thing`, {}), 404, /^There is no \/no\/such\/thing endpoint: .*\/infill/);
        assertError(await post(`${server.url}/health`, {}), 405, /^\/health takes GET, not POST\.$/);
        const ok = await post(`${server.url}/infill`, { input_prefix: "x = ", input_suffix: "\n", n_predict: 4 });
        assert.equal(ok.status, 200);
    });

    test("an oversize body and an oversize text are refused with 413 and a sentence", async () => {
        const big = await post(`${server.url}/infill`, { input_prefix: "x".repeat(70_000) });
        assertError(big, 413, /^The request body is 70,\d{3} bytes; this server takes at most 65,536 bytes a request\.$/);
        const long = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: "user", content: "y".repeat(30_000) }] });
        assertError(long, 413, /^The request holds more than 20,000 characters of text, the most this server takes a request\.$/);
    });

    test("a request addressed to a name other than localhost is refused (a rebound name in a web page)", async () => {
        const { port } = new URL(server.url);
        const status = await new Promise<number>((resolve, reject) => {
            const req = httpRequest({ host: "127.0.0.1", port, path: "/v1/models", headers: { Host: "attacker.example" } }, (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
            });
            req.on("error", reject);
            req.end();
        });
        assert.equal(status, 403);
    });

    test("a client that disconnects cancels its request: the next one is served at once", async () => {
        const gone = new AbortController();
        const slow = post(`${server.url}/dream/fill`, SLOW_FILL, {}, gone.signal).catch((e: Error) => e);
        await new Promise((resolve) => setTimeout(resolve, 700));
        gone.abort();
        assert.equal(((await slow) as Error).name, "AbortError");
        const started = performance.now();
        const next = await post(`${server.url}/infill`, { input_prefix: "def f(x):\n    return ", input_suffix: "\n", n_predict: 8 });
        const ms = performance.now() - started;
        assert.equal(next.status, 200, next.text);
        // The slow request alone takes about 9 s on CI's two cores; cancelled, it stops at its next step.
        assert.ok(ms < 2500, `the next request took ${Math.round(ms)} ms`);
    });
});

describe("serve with an API key, a queue of one and a time limit", () => {
    const KEY = "correct horse battery staple";
    let server: Running;
    before(async () => {
        server = await startServer("--api-key", KEY, "--queue", "1", "--timeout", "3");
    });
    after(async () => {
        await server?.stop();
    });
    const auth = { Authorization: `Bearer ${KEY}` };

    test("without the key, or with a wrong one, requests get 401; /health stays open", async () => {
        assertError(
            await post(`${server.url}/v1/completions`, { prompt: "x" }),
            401,
            /^Invalid API key: send the server's key as the header Authorization: Bearer KEY/
        );
        const wrong = await post(`${server.url}/v1/completions`, { prompt: "x" }, { Authorization: "Bearer correct horse battery stapler" });
        assertError(wrong, 401, /^Invalid API key/);
        assert.equal(wrong.headers.get("www-authenticate"), "Bearer");
        assert.equal((await fetch(`${server.url}/v1/models`)).status, 401);
        assert.equal((await fetch(`${server.url}/health`)).status, 200);
        const ok = await fetch(`${server.url}/v1/models`, { headers: auth });
        assert.equal(ok.status, 200);
        const other = await fetch(`${server.url}/v1/models`, { headers: { "X-Api-Key": KEY } });
        assert.equal(other.status, 200);
    });

    test("past the queue's bound a request gets 503 at once; past the time limit, 504; the server serves on", async () => {
        const started = performance.now();
        const slow = post(`${server.url}/dream/fill`, SLOW_FILL, auth);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const waiting = new AbortController();
        const queued = post(`${server.url}/infill`, { input_prefix: "a = ", n_predict: 4 }, auth, waiting.signal).catch((e: Error) => e);
        await new Promise((resolve) => setTimeout(resolve, 200));
        const refusedAt = performance.now();
        const refused = await post(`${server.url}/infill`, { input_prefix: "b = ", n_predict: 4 }, auth);
        assertError(refused, 503, /^The server is busy: 1 request waits for the model, the most it queues\. Try again shortly\.$/);
        assert.equal(refused.headers.get("retry-after"), "1");
        assert.ok(performance.now() - refusedAt < 1000, "refused without waiting");
        waiting.abort();
        assert.equal(((await queued) as Error).name, "AbortError");
        const late = await slow;
        const ms = performance.now() - started;
        assertError(late, 504, /^The request took longer than this server's limit of 3 seconds and was stopped\.$/);
        assert.ok(ms > 2900 && ms < 6000, `stopped after ${Math.round(ms)} ms`);
        const next = await post(`${server.url}/infill`, { input_prefix: "c = ", n_predict: 4 }, auth);
        assert.equal(next.status, 200, next.text);
    });
});

// The HTTP layer of `dream-coder serve`, which knows nothing of the model: routes, JSON bodies within a size limit,
// the API key, errors in llama-server's and OpenAI's shape, server-sent events, and a signal per request that aborts
// when the client goes away or the server's time limit passes.
import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { isIP } from "node:net";

/** An answer other than 200: its status and a sentence a person understands. */
export class HttpError extends Error {
    constructor(
        readonly status: number,
        message: string,
        readonly headers: Record<string, string> = {}
    ) {
        super(message);
    }
}

/** The `type` of an error body, as llama-server and OpenAI name them. */
const ERROR_TYPES: Record<number, string> = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    500: "server_error",
    503: "unavailable_error",
    504: "timeout_error"
};

function errorBody(status: number, message: string): { error: { code: number; message: string; type: string } } {
    return { error: { code: status, message, type: ERROR_TYPES[status] ?? "server_error" } };
}

/** One request: its parsed JSON body (POST), and a signal that aborts when the client disconnects or time runs out. */
export class Exchange {
    readonly signal: AbortSignal;
    /** The client's address. */
    readonly client: string;
    private stream: EventStream | undefined;

    constructor(
        request: IncomingMessage,
        private readonly response: ServerResponse,
        readonly body: Record<string, unknown>,
        /** Aborted when the client closed the connection before the answer was complete. */
        gone: AbortSignal,
        /** Aborted when the server's time limit for a request passed. */
        readonly late: AbortSignal
    ) {
        this.signal = AbortSignal.any([gone, late]);
        this.client = request.socket.remoteAddress ?? "";
    }

    /** Answers with server-sent events; the first event sends the headers, so that an error before it is a plain JSON answer. */
    events(): EventStream {
        this.stream ??= new EventStream(this.response);
        return this.stream;
    }

    /** Whether server-sent events have started: an error after that is an event too. */
    get streaming(): boolean {
        return this.stream?.started ?? false;
    }
}

/** Server-sent events: one `data:` line of JSON each. */
export class EventStream {
    started = false;

    constructor(private readonly response: ServerResponse) {}

    send(data: unknown): void {
        if (!this.started) {
            this.started = true;
            this.response.writeHead(200, {
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                // nginx buffers a proxied answer unless told not to, which would hold every event until the end.
                "X-Accel-Buffering": "no"
            });
        }
        this.response.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
    }

    /** Ends the stream, with OpenAI's `data: [DONE]` where the API family sends it. */
    end(done: boolean): void {
        if (done) this.send("[DONE]");
        this.response.end();
    }
}

export interface Route {
    method: "GET" | "POST";
    path: string;
    /** Returns the JSON answer, or undefined after answering with events. */
    handle: (exchange: Exchange) => Promise<unknown>;
}

export interface HttpOptions {
    routes: Route[];
    /** SHA-256 of the API key; absent: no key is asked for (a loopback address only). */
    apiKeyDigest?: Buffer;
    /** Paths answered without the key (a health check a load balancer polls). */
    publicPaths: ReadonlySet<string>;
    maxBodyBytes: number;
    timeoutMs: number;
    /** A request's answer failed for a reason the HTTP layer cannot word (a decode's failure, a time limit). */
    describeFailure: (error: unknown, exchange: Exchange) => HttpError;
    log: (line: string) => void;
}

export function digestOf(key: string): Buffer {
    return createHash("sha256").update(key).digest();
}

/** Whether `given` is the key: hashes compared in constant time, so that the time taken says nothing of the key. */
export function keyMatches(digest: Buffer, given: string | undefined): boolean {
    return given !== undefined && timingSafeEqual(digestOf(given), digest);
}

/** The key a client sent: `Authorization: Bearer KEY` (OpenAI's clients, llama.vscode) or `X-Api-Key: KEY`. */
function sentKey(request: IncomingMessage): string | undefined {
    const bearer = /^Bearer\s+(.+)$/i.exec(request.headers.authorization ?? "");
    if (bearer) return bearer[1].trim();
    const header = request.headers["x-api-key"];
    return typeof header === "string" ? header : undefined;
}

/** Whether an address to listen on is this machine's loopback, which no other machine reaches. */
export function isLoopback(host: string): boolean {
    const bare = host.replace(/^\[(.*)\]$/, "$1");
    if (bare === "localhost" || bare === "::1") return true;
    return isIP(bare) === 4 && bare.startsWith("127.");
}

/** The host name a request was addressed to, without its port. */
function addressedTo(request: IncomingMessage): string {
    const host = request.headers.host ?? "";
    return host.startsWith("[") ? host.slice(0, host.indexOf("]") + 1) : host.replace(/:\d+$/, "");
}

export function createHttpServer(options: HttpOptions): Server {
    const routes = new Map(options.routes.map((r) => [`${r.method} ${r.path}`, r]));
    const server = createServer((request, response) => {
        void answer(request, response, routes, options);
    });
    // A client that trickles a body (or never ends it) is cut off instead of holding a connection open for good.
    server.requestTimeout = 60_000;
    return server;
}

async function answer(request: IncomingMessage, response: ServerResponse, routes: Map<string, Route>, options: HttpOptions): Promise<void> {
    const started = performance.now();
    const path = new URL(request.url ?? "/", "http://server").pathname.replace(/(.)\/+$/, "$1");
    const gone = new AbortController();
    response.on("close", () => {
        if (!response.writableFinished) gone.abort();
        const outcome = response.writableFinished ? String(response.statusCode) : "closed by the client";
        options.log(`${request.socket.remoteAddress} ${request.method} ${path} ${outcome} ${Math.round(performance.now() - started)} ms`);
    });
    response.on("error", () => gone.abort());
    const late = AbortSignal.timeout(options.timeoutMs);
    let exchange: Exchange | undefined;
    try {
        if (!options.apiKeyDigest) {
            // Without a key the server listens on loopback only; a request addressed to another name there came
            // through a web page that rebound its own name to this machine, or a proxy that exposes the server.
            if (!isLoopback(addressedTo(request))) {
                throw new HttpError(
                    403,
                    `This server has no API key, so it answers only requests addressed to localhost, not to "${addressedTo(request)}": start it with an API key to serve other names.`
                );
            }
        } else if (!options.publicPaths.has(path) && !keyMatches(options.apiKeyDigest, sentKey(request))) {
            throw new HttpError(401, "Invalid API key: send the server's key as the header Authorization: Bearer KEY (or X-Api-Key: KEY).", {
                "WWW-Authenticate": "Bearer"
            });
        }
        const route = routes.get(`${request.method} ${path}`);
        if (!route) {
            const methods = [...routes.values()].filter((r) => r.path === path).map((r) => r.method);
            if (methods.length) throw new HttpError(405, `${path} takes ${methods.join(" or ")}, not ${request.method}.`, { Allow: methods.join(", ") });
            throw new HttpError(404, `There is no ${path} endpoint: ${[...new Set([...routes.values()].map((r) => r.path))].join(", ")} are served.`);
        }
        const body = route.method === "POST" ? await readJson(request, options.maxBodyBytes) : {};
        exchange = new Exchange(request, response, body, gone.signal, late);
        const result = await route.handle(exchange);
        if (result !== undefined) sendJson(response, 200, result);
    } catch (e) {
        // The body was not read (or not all of it): read the rest, so that the client gets to read the answer.
        request.resume();
        if (gone.signal.aborted) return;
        const error = e instanceof HttpError ? e : exchange ? options.describeFailure(e, exchange) : new HttpError(500, String(e));
        if (exchange?.streaming) {
            exchange.events().send(errorBody(error.status, error.message));
            response.end();
        } else {
            sendJson(response, error.status, errorBody(error.status, error.message), error.headers);
        }
    }
}

function sendJson(response: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
    if (response.headersSent) return void response.end();
    const text = JSON.stringify(value);
    response.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(text), ...headers });
    response.end(text);
}

/** The body as a JSON object, refused with 413 past `limit` bytes (before reading it, when its declared length says so). */
async function readJson(request: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
    const tooLarge = (bytes: string) =>
        new HttpError(413, `The request body is ${bytes} bytes; this server takes at most ${limit.toLocaleString("en")} bytes a request.`);
    const declared = Number(request.headers["content-length"]);
    if (declared > limit) throw tooLarge(declared.toLocaleString("en"));
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of request as AsyncIterable<Buffer>) {
        size += chunk.length;
        if (size > limit) throw tooLarge(`more than ${limit.toLocaleString("en")}`);
        chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") throw new HttpError(400, "The request has no body: send a JSON object.");
    let value: unknown;
    try {
        value = JSON.parse(text);
    } catch (e) {
        throw new HttpError(400, `The request body is not JSON (${(e as Error).message}).`);
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new HttpError(400, `The request body must be a JSON object ({...}), not ${Array.isArray(value) ? "an array" : JSON.stringify(value)}.`);
    }
    return value as Record<string, unknown>;
}

// `dream-coder serve`: the model behind HTTP, for the editors and tools that talk to llama-server or OpenAI, and for
// the diffusion-only jobs. One model, one request at a time in a bounded queue; an API key wherever other machines
// can connect.
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import type { Settings } from "../../../common/settings";
import { ModelHost } from "../modelHost";
import { DecodeCancelledError } from "../runtime/runtime";
import { diffusionRoutes } from "./diffusion";
import { createHttpServer, digestOf, HttpError, isLoopback } from "./http";
import { llamaServerRoutes } from "./llamaServer";
import { openAiRoutes } from "./openai";
import { ModelService } from "./service";

export interface ServeOptions {
    settings: Settings;
    host: string;
    /** 0: a free port, chosen by the system. */
    port: number;
    apiKey?: string;
    /** Requests that may wait while one runs. */
    queue: number;
    timeoutSeconds: number;
    maxBodyBytes: number;
    /** Characters of text one request may ask the model to read. */
    maxTextChars: number;
    log: (line: string) => void;
}

export interface Serving {
    server: Server;
    /** http://HOST:PORT */
    url: string;
    modelId: string;
    /** Settles when the model is loaded (requests wait for it meanwhile, and /health answers 503). */
    loaded: Promise<unknown>;
    close(): Promise<void>;
}

/** Why a request failed, as the client reads it: a sentence, with the status that says whose fault it was. */
function describeFailure(error: unknown, late: boolean, timeoutSeconds: number): HttpError {
    if (late) return new HttpError(504, `The request took longer than this server's limit of ${timeoutSeconds} seconds and was stopped.`);
    if (error instanceof DecodeCancelledError) return new HttpError(503, "The request was cancelled: the server is stopping.");
    const message = String((error as Error)?.message ?? error).replace(/\.?$/, ".");
    // The jobs refuse what a request asks that cannot be done (no hole, more tokens than the model's context) with a RangeError.
    if (error instanceof RangeError) return new HttpError(400, message.charAt(0).toUpperCase() + message.slice(1));
    return new HttpError(500, `The model failed on this request: ${message}`);
}

export async function serve(options: ServeOptions): Promise<Serving> {
    if (!options.apiKey && !isLoopback(options.host)) {
        throw new Error(
            `--host ${options.host} lets other machines connect: set an API key (--api-key KEY or the DREAM_CODER_API_KEY environment variable), ` +
                "which clients send as Authorization: Bearer KEY, or serve on 127.0.0.1"
        );
    }
    const host = new ModelHost(undefined, (notice) => options.log(notice));
    host.configure(options.settings);
    const service = new ModelService(host, options.settings, options.queue, options.maxTextChars);
    const server = createHttpServer({
        routes: [...llamaServerRoutes(service), ...openAiRoutes(service), ...diffusionRoutes(service)],
        apiKeyDigest: options.apiKey ? digestOf(options.apiKey) : undefined,
        publicPaths: new Set(["/health", "/v1/health"]),
        maxBodyBytes: options.maxBodyBytes,
        timeoutMs: options.timeoutSeconds * 1000,
        describeFailure: (error, exchange) => {
            const failure = describeFailure(error, exchange.late.aborted, options.timeoutSeconds);
            // The client reads a sentence; whoever runs the server needs where it failed.
            if (failure.status === 500) options.log(String((error as Error)?.stack ?? error));
            return failure;
        },
        log: options.log
    });
    await new Promise<void>((resolve, reject) => {
        server.once("error", (e: NodeJS.ErrnoException) =>
            reject(e.code === "EADDRINUSE" ? new Error(`${options.host}:${options.port} is in use by another program: choose another --port`) : e)
        );
        server.listen(options.port, options.host, resolve);
    });
    const { port } = server.address() as AddressInfo;
    const url = `http://${options.host.includes(":") ? `[${options.host}]` : options.host}:${port}`;
    return {
        server,
        url,
        modelId: service.modelId,
        loaded: service.model(),
        async close() {
            server.closeAllConnections();
            await new Promise((resolve) => server.close(resolve));
            await host.dispose();
        }
    };
}

// The extension's state: the language client (started over IPC, restarted with a backoff after a crash, stopped
// on deactivate), the output channel, the status bar and the last denoising trace.
import * as vscode from "vscode";
import { CloseAction, ErrorAction, LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import * as lsp from "../../server/src/protocol";
import { config } from "./config";
import { StatusBar } from "./statusBar";

/** Restart delays after crashes in a row: 1 s, 2 s, 4 s … at most 30 s; a minute up and running resets it. */
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000];
const HEALTHY_AFTER_MS = 60_000;

export class Ctx implements vscode.Disposable {
    readonly output = vscode.window.createOutputChannel("Dream-Coder", { log: true });
    readonly statusBar = new StatusBar();
    private _client: LanguageClient | undefined;
    private _status: lsp.ServerStatus = { state: "unset", model: "", backend: "CPU" };
    private _lastTrace: lsp.DenoiseTrace | undefined;
    private readonly traceChanged = new vscode.EventEmitter<lsp.DenoiseTrace>();
    readonly onTrace = this.traceChanged.event;
    private crashes = 0;
    private startedAt = 0;
    private stopping = false;
    private restartTimer: NodeJS.Timeout | undefined;
    /** The editing job in progress, for "Dream-Coder: Cancel" (Escape). */
    runningJob: vscode.CancellationTokenSource | undefined;

    constructor(readonly extension: vscode.ExtensionContext) {}

    get client(): LanguageClient {
        if (!this._client) throw new Error("The Dream-Coder language server is not running: run \"Dream-Coder: Restart Server\".");
        return this._client;
    }

    get status(): lsp.ServerStatus {
        return this._status;
    }

    get lastTrace(): lsp.DenoiseTrace | undefined {
        return this._lastTrace;
    }

    setTrace(trace: lsp.DenoiseTrace | null | undefined): void {
        if (!trace) return;
        this._lastTrace = trace;
        this.traceChanged.fire(trace);
    }

    async start(): Promise<void> {
        this.stopping = false;
        this.statusBar.show("starting");
        const module = this.extension.asAbsolutePath("dist/server.js");
        const serverOptions: ServerOptions = {
            run: { module, transport: TransportKind.ipc },
            debug: { module, transport: TransportKind.ipc, options: { execArgv: ["--enable-source-maps"] } }
        };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
            outputChannel: this.output,
            initializationOptions: { settings: config.all() },
            errorHandler: {
                error: () => ({ action: ErrorAction.Continue }),
                closed: () => {
                    if (!this.stopping) this.scheduleRestart();
                    return { action: CloseAction.DoNotRestart, handled: true };
                }
            }
        };
        const client = new LanguageClient("dreamCoder", "Dream-Coder", serverOptions, clientOptions);
        this._client = client;
        client.onNotification(lsp.status, (s) => {
            this._status = s;
            this.statusBar.show(s);
        });
        await client.start();
        this.startedAt = Date.now();
    }

    async stop(): Promise<void> {
        this.stopping = true;
        clearTimeout(this.restartTimer);
        const client = this._client;
        this._client = undefined;
        this.statusBar.show("stopped");
        if (client?.isRunning()) await client.stop(5000).catch(() => undefined);
    }

    async restart(): Promise<void> {
        await this.stop();
        this.crashes = 0;
        await this.start();
    }

    private scheduleRestart(): void {
        if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.crashes = 0;
        const delay = BACKOFF_MS[Math.min(this.crashes, BACKOFF_MS.length - 1)];
        this.crashes++;
        const old = this._client;
        this._client = undefined;
        this.statusBar.show("stopped");
        this.output.error(`the language server stopped; restarting in ${delay / 1000} s (crash ${this.crashes} in a row)`);
        void vscode.window
            .showWarningMessage(`Dream-Coder's language server stopped unexpectedly. Restarting in ${delay / 1000} s.`, "Show Log")
            .then((pick) => pick && this.output.show());
        this.restartTimer = setTimeout(() => {
            void old?.dispose().catch(() => undefined);
            this.start().catch((e: Error) => this.output.error(`restart failed: ${e.message}`));
        }, delay);
    }

    dispose(): void {
        clearTimeout(this.restartTimer);
        this.statusBar.dispose();
        this.traceChanged.dispose();
        this.output.dispose();
    }
}

// The extension's state: the language client (started over IPC, restarted with a backoff after a crash, not
// restarted with a model that keeps crashing it, stopped on deactivate), the output channel, the status bar and
// the last denoising trace.
import * as vscode from "vscode";
import { CloseAction, ErrorAction, LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from "vscode-languageclient/node";
import * as lsp from "../../common/protocol";
import { config } from "./config";
import { LOG_LINK, offerActions } from "./failures";
import { MODEL_CRASHED } from "./notificationActions";
import { StatusBar } from "./statusBar";

/** Restart delays after crashes in a row: 1 s, 2 s, 4 s … at most 30 s; a minute up and running resets it. */
const BACKOFF_MS = [1000, 2000, 4000, 8000, 16000, 30000];
const HEALTHY_AFTER_MS = 60_000;
/** Crashes while one model was loading or running a job, with no job finished in between, before the client stops
 * restarting the server with it: a model that crashes llama.cpp would otherwise crash every restart. */
const CRASHES_PER_MODEL = 2;
/** Settings whose change makes a model that crashed worth trying again. */
const RETRY_SETTINGS = ["dreamCoder.model", "dreamCoder.gpuLayers", "dreamCoder.device", "dreamCoder.threads"];

export class Ctx implements vscode.Disposable {
    readonly output = vscode.window.createOutputChannel("Dream-Coder", { log: true });
    readonly statusBar = new StatusBar();
    private _client: LanguageClient | undefined;
    private _status: lsp.ServerStatus = { state: "unset", model: "", backend: "CPU" };
    private _lastTrace: lsp.DenoiseTrace | undefined;
    private readonly traceChanged = new vscode.EventEmitter<lsp.DenoiseTrace>();
    readonly onTrace = this.traceChanged.event;
    private readonly statusChanged = new vscode.EventEmitter<lsp.ServerStatus>();
    /** Every status the server reports. */
    readonly onStatus = this.statusChanged.event;
    private crashes = 0;
    private startedAt = 0;
    private stopping = false;
    private restartTimer: NodeJS.Timeout | undefined;
    /** Crashes of the server while it loaded or ran each model (the setting's value), since a job with it last finished. */
    private readonly modelCrashes = new Map<string, number>();
    /** The model the server is refusing to be restarted with, after it crashed it CRASHES_PER_MODEL times. */
    private _haltedFor: string | undefined;
    private readonly settingsWatch = vscode.workspace.onDidChangeConfiguration((e) => {
        // The server picks its runtime (GPU or CPU, which Vulkan device) once, when it loads the addon.
        if (e.affectsConfiguration("dreamCoder.device") && this._client) {
            this.output.info("dreamCoder.device changed: restarting the language server");
            void this.restart();
        }
        if (!RETRY_SETTINGS.some((s) => e.affectsConfiguration(s))) return;
        this.modelCrashes.clear();
        if (this._haltedFor !== undefined) {
            this.output.info("the model settings changed: starting the language server again");
            this._haltedFor = undefined;
            this.start().catch((err: Error) => this.output.error(`restart failed: ${err.message}`));
        }
    });
    /** The editing job in progress, for "Dream-Coder: Cancel" (Escape). */
    runningJob: vscode.CancellationTokenSource | undefined;

    constructor(readonly extension: vscode.ExtensionContext) {}

    get client(): LanguageClient {
        if (!this._client) {
            if (this._haltedFor !== undefined) throw new Error(this._status.message);
            throw new Error('The Dream-Coder language server is not running: run "Dream-Coder: Restart Server".');
        }
        return this._client;
    }

    get status(): lsp.ServerStatus {
        return this._status;
    }

    /** The model setting the client will not restart the server with (it crashed it twice), if any. */
    get haltedFor(): string | undefined {
        return this._haltedFor;
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
            // busy → ready: a job finished, so the model works here after all.
            if (this._status.state === "busy" && s.state === "ready") this.modelCrashes.delete(config.model);
            this._status = s;
            this.statusBar.show(s);
            this.statusChanged.fire(s);
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
        this.modelCrashes.clear();
        this._haltedFor = undefined;
        await this.start();
    }

    private scheduleRestart(): void {
        const model = config.model;
        // The status the server sent last says whether the model was in use when the process died.
        if (model && (this._status.state === "loading" || this._status.state === "busy")) {
            const crashes = (this.modelCrashes.get(model) ?? 0) + 1;
            this.modelCrashes.set(model, crashes);
            if (crashes >= CRASHES_PER_MODEL) {
                this.halt(model, crashes);
                return;
            }
        }
        if (Date.now() - this.startedAt > HEALTHY_AFTER_MS) this.crashes = 0;
        const delay = BACKOFF_MS[Math.min(this.crashes, BACKOFF_MS.length - 1)];
        this.crashes++;
        const old = this._client;
        this._client = undefined;
        this.statusBar.show("stopped");
        this.output.error(`the language server stopped; restarting in ${delay / 1000} s (crash ${this.crashes} in a row)`);
        void vscode.window.showWarningMessage(`Dream-Coder's language server stopped unexpectedly. Restarting in ${delay / 1000} s. ${LOG_LINK}`);
        this.restartTimer = setTimeout(() => {
            void old?.dispose().catch(() => undefined);
            this.start().catch((e: Error) => this.output.error(`restart failed: ${e.message}`));
        }, delay);
    }

    /** Leaves the server stopped: the same model would crash it again. A change of model, GPU layers or threads,
     * or "Restart Server", starts it again. */
    private halt(model: string, crashes: number): void {
        const old = this._client;
        this._client = undefined;
        void old?.dispose().catch(() => undefined);
        this._haltedFor = model;
        const what = `Dream-Coder's language server crashed ${crashes} times while ${this._status.state === "loading" ? "loading" : "running"} the model ${model}`;
        const advice = "Try another quantization of the model (Q8_0 or Q4_K_M), or set dreamCoder.gpuLayers to 0 if it runs on a GPU.";
        this._status = { ...this._status, state: "error", message: `${what}. It is not restarted with this model. ${advice}` };
        this.statusBar.show(this._status);
        this.output.error(`${what}; the server is not restarted with it until the model, gpuLayers or threads setting changes, or "Restart Server".`);
        void offerActions("error", `${what}, so it is not restarted with it. ${advice} ${LOG_LINK}`, MODEL_CRASHED);
    }

    dispose(): void {
        this.settingsWatch.dispose();
        clearTimeout(this.restartTimer);
        this.statusBar.dispose();
        this.traceChanged.dispose();
        this.statusChanged.dispose();
        this.output.dispose();
    }
}

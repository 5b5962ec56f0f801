// The one model the server runs: loaded lazily from the settings, reloaded when they change, its state
// reported to whoever listens (the client's status bar, the CLI's progress bar).
import { availableParallelism } from "node:os";
import { statSync } from "node:fs";
import { basename } from "node:path";
import { resolveModelPath } from "./modelPaths";
import type { ServerStatus } from "../../common/protocol";
import { checkModelFileStart } from "./runtime/modelFile";
import { loadRuntime, preferDevice } from "./runtime/native";
import { DiffusionModel } from "./runtime/runtime";
import { DEFAULT_SETTINGS, type Settings } from "../../common/settings";

export class ModelHost {
    private settings: Settings | undefined;
    private loaded: { key: string; model: Promise<DiffusionModel> } | undefined;
    private current: ServerStatus = { state: "unset", model: "", backend: "CPU" };

    constructor(
        private readonly onStatus: (status: ServerStatus) => void = () => undefined,
        /** Where a setting the model or the machine cannot honour is reported, with what is used instead. */
        private readonly onNotice: (message: string) => void = () => undefined,
        /** Where a model load is recorded when it finishes: the file, the time it took and where it runs. */
        private readonly onLoaded: (message: string) => void = () => undefined
    ) {}

    get status(): ServerStatus {
        return this.current;
    }

    /** Takes new settings; the model is reloaded on next use if its file, threads or GPU layers changed. */
    configure(settings: Settings): void {
        this.settings = settings;
        // The runtime is chosen once a process (ggml reads the Vulkan device list when the addon loads).
        if (!preferDevice(settings.device)) this.onNotice(`dreamCoder.device: ${settings.device} takes effect when the language server restarts`);
        let key: string | undefined;
        let path: string | undefined;
        let problem: string | undefined;
        try {
            if (settings.model) {
                path = resolveModelPath(settings);
                key = this.key(settings, path);
            }
        } catch (e) {
            problem = (e as Error).message;
        }
        if (this.loaded && this.loaded.key === key) return;
        this.release();
        const state = problem ? "error" : settings.model ? "idle" : "unset";
        // The last latency belongs to the model that answered it.
        this.report({ state, model: settings.model, message: problem, progress: undefined, lastLatencyMs: undefined });
        if (path) void this.checkFile(settings, path);
    }

    /** Says at once that the file is missing, a folder or not GGUF, rather than at the first request. */
    private async checkFile(settings: Settings, path: string): Promise<void> {
        try {
            await checkModelFileStart(path);
        } catch (e) {
            // Unless newer settings came meanwhile, or a load started (it reports for itself).
            if (this.settings === settings && !this.loaded) this.report({ state: "error", message: (e as Error).message });
        }
    }

    /** The loaded model, loading it first. A failed load is kept until the settings or the file change. */
    model(): Promise<DiffusionModel> {
        const settings = this.settings;
        if (!settings) return Promise.reject(new Error("the server has no settings yet"));
        let key: string;
        let path: string;
        try {
            path = resolveModelPath(settings);
            key = this.key(settings, path);
        } catch (e) {
            // No model chosen is a state of its own ("unset"), which a request does not turn into an error.
            if (settings.model) this.report({ state: "error", message: (e as Error).message });
            return Promise.reject(e);
        }
        if (this.loaded?.key === key) return this.loaded.model;
        this.release();
        this.report({ state: "loading", model: settings.model, progress: 0, message: undefined });
        // More threads than cores only makes every step slower (64 took 3x, 256 10x the time of 2 here).
        const cores = availableParallelism();
        if (settings.threads > cores) this.onNotice(`dreamCoder.threads: ${settings.threads} is more than this machine's ${cores} cores; using ${cores}`);
        const fallback = this.runtimeFallback();
        if (fallback) this.onNotice(fallback);
        const started = performance.now();
        const model = DiffusionModel.load(path, {
            // The default: every core (at most 8) while the machine is idle, fewer while other programs keep cores
            // busy (cpuLoad.ts); a count the user chose is kept.
            threads: settings.threads ? Math.min(settings.threads, cores) : Math.min(8, cores),
            adaptiveThreads: !settings.threads,
            gpuLayers: settings.gpuLayers,
            // "auto" fits the layers with room for what the requests these settings make need: the cached modes'
            // context for the window (a reuse slot per document), a block's output rows.
            fitContext: { tokens: settings.contextTokens, outputs: settings.blockLength, sequences: settings.cacheReuse ? this.reuseSlots() : 1 },
            onProgress: (p) => this.report({ state: "loading", progress: p }),
            onFallback: (sentence) => this.onNotice(sentence)
        });
        model.then(
            (m) => {
                // Only a value the user chose: the default suits the 7B models, and a smaller context is the model's own.
                if (settings.contextTokens > m.info.nCtxTrain && settings.contextTokens !== DEFAULT_SETTINGS.contextTokens) {
                    this.onNotice(
                        `dreamCoder.contextTokens: ${settings.contextTokens} is more than the model's trained context of ${m.info.nCtxTrain} tokens; ` +
                            `each request shows it at most ${m.info.nCtxTrain} tokens, its holes included`
                    );
                }
                const { backend, gpu } = m.runsOn;
                this.onLoaded(`loaded ${basename(path)} in ${((performance.now() - started) / 1000).toFixed(1)} s on ${backend}`);
                this.report({ state: "ready", backend, gpu, progress: undefined });
            },
            (e: Error) => this.report({ state: "error", message: e.message, progress: undefined })
        );
        this.loaded = { key, model };
        return model;
    }

    /** Runs a job on the model, reporting busy/ready and the job's latency. */
    async run<T>(job: (model: DiffusionModel) => Promise<T>): Promise<T> {
        const model = await this.model();
        const started = performance.now();
        this.report({ state: "busy", step: 0, totalSteps: undefined });
        try {
            return await job(model);
        } finally {
            this.report({ state: "ready", step: undefined, totalSteps: undefined, lastLatencyMs: Math.round(performance.now() - started) });
        }
    }

    /** A running job's progress, for the status. */
    step(step: number, totalSteps: number): void {
        this.report({ state: "busy", step, totalSteps });
    }

    async dispose(): Promise<void> {
        const loaded = this.loaded;
        this.loaded = undefined;
        await loaded?.model.then(
            (m) => m.dispose(),
            () => undefined
        );
    }

    /** The file (with its modification time, so a file fixed in place is tried again), threads and GPU layers. */
    private key(settings: Settings, path: string): string {
        let mtime = 0;
        try {
            mtime = statSync(path).mtimeMs;
        } catch {
            // A missing file is reported by the load itself.
        }
        // With "auto", the fit depends on the context the requests need.
        const fit = settings.gpuLayers === "auto" ? [settings.contextTokens, settings.blockLength, settings.cacheReuse] : [];
        return JSON.stringify([path, mtime, settings.threads, settings.gpuLayers, ...fit]);
    }

    /** Once a process: why the GPU runtime is not the one running, where one was looked for. */
    private runtimeFallback(): string | undefined {
        if (this.fallbackSaid) return undefined;
        this.fallbackSaid = true;
        try {
            return loadRuntime().fallback;
        } catch {
            return undefined; // no runtime at all: the load says so
        }
    }
    private fallbackSaid = false;

    /** The documents whose caches the runtime keeps with dreamCoder.cacheReuse (each a sequence of the context). */
    private reuseSlots(): number {
        try {
            return loadRuntime().addon.reuseSlots;
        } catch {
            return 1; // no runtime at all: the load says so
        }
    }

    private release(): void {
        const old = this.loaded;
        this.loaded = undefined;
        void old?.model.then(
            (m) => m.dispose(),
            () => undefined
        );
    }

    private report(change: Partial<ServerStatus>): void {
        this.current = { ...this.current, ...change };
        if (this.current.model) this.current.model = basename(this.current.model);
        this.onStatus(this.current);
    }
}

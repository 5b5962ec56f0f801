// The language server: one model host, the four jobs over LSP, settings pulled from the editor.
// Run it with --node-ipc (VS Code), --stdio, or --socket=N (see vscode-languageserver's createConnection).
import { basename, join } from "node:path";
import { TextDocument } from "vscode-languageserver-textdocument";
import {
    CodeActionKind,
    createConnection,
    DidChangeConfigurationNotification,
    ErrorCodes,
    InlineCompletionRequest,
    LSPErrorCodes,
    ProposedFeatures,
    ResponseError,
    TextDocuments,
    TextDocumentSyncKind,
    type CancellationToken,
    type CodeAction,
    type InitializeResult,
    type PartialResultParams,
    type Position,
    type Range,
    type VersionedTextDocumentIdentifier,
    type WorkDoneProgressParams,
    type WorkDoneProgressReporter
} from "vscode-languageserver/node";
import { buildRuntime, RuntimeBuildError } from "./builder/build";
import { builtRuntime } from "./builder/built";
import { checkPrerequisites, TARGET_NAMES } from "./builder/prerequisites";
import { catalogEntry, DEFAULT_MODEL_ID } from "../../common/catalog";
import { listCatalog, ModelSetupError, modelsDirectory } from "./modelPaths";
import { HubError } from "./hub/hub";
import { convertedModelPath, convertFolder, DEFAULT_QUANTIZATION, type PullProgress, pullModel } from "./pull";
import { HoleParser } from "./holes";
import { InlineCompleter } from "./jobs/completion";
import type { Denoised } from "./jobs/denoise";
import { fillHoles } from "./jobs/fill";
import { rewriteSelection } from "./jobs/rewrite";
import { sketchBody } from "./jobs/sketch";
import { ModelHost } from "./modelHost";
import * as lsp from "../../common/protocol";
import { ModelFileError } from "./runtime/modelFile";
import { NoRuntimeError, runtimeMissing } from "./runtime/native";
import manifest from "../../package.json";
import { DecodeCancelledError } from "./runtime/runtime";
import { inlineEnabled, readSettings, type Settings } from "../../common/settings";
import { lineEnding, type SpanEdit } from "./spanEdits";

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const host = new ModelHost(
    (s) => void connection.sendNotification(lsp.status, s),
    (message) => connection.console.warn(message),
    (message) => connection.console.info(message)
);
const completer = new InlineCompleter();
let settings: Settings = readSettings(undefined).settings;
let pullsConfiguration = false;
/** Resolves once the first settings are in: requests wait for it, so that one sent right after `initialized` sees the model. */
let settingsReady: Promise<void> = Promise.resolve();
let firstSettingsPulled = () => {};
/** LSP's lifecycle: requests before `initialize` and after `shutdown` are refused. */
let lifecycle: "starting" | "running" | "shut down" = "starting";

connection.onInitialize((params): InitializeResult => {
    lifecycle = "running";
    pullsConfiguration = params.capabilities?.workspace?.configuration === true;
    if (pullsConfiguration) settingsReady = new Promise((resolve) => (firstSettingsPulled = resolve));
    applySettings((params.initializationOptions as { settings?: unknown } | undefined)?.settings);
    return {
        capabilities: {
            textDocumentSync: TextDocumentSyncKind.Incremental,
            inlineCompletionProvider: true,
            codeActionProvider: { codeActionKinds: [CodeActionKind.RefactorRewrite] }
        },
        serverInfo: { name: "dream-coder", version: manifest.version },
        // The process id, so that a client (and the crash-recovery test) can tell one server process from the next.
        dreamCoder: { pid: process.pid }
    } as InitializeResult;
});

connection.onInitialized(async () => {
    if (pullsConfiguration) {
        void connection.client.register(DidChangeConfigurationNotification.type, { section: "dreamCoder" });
        try {
            await pullSettings();
        } finally {
            firstSettingsPulled();
        }
    }
});

connection.onDidChangeConfiguration(async (change) => {
    if (pullsConfiguration) await pullSettings();
    else applySettings((change.settings as { dreamCoder?: unknown } | undefined)?.dreamCoder);
});

async function pullSettings(): Promise<void> {
    applySettings(await connection.workspace.getConfiguration({ section: "dreamCoder" }));
}

function applySettings(raw: unknown): void {
    const read = readSettings(raw);
    for (const p of read.problems) connection.console.warn(`${p.message}; using ${JSON.stringify(p.fallback)}`);
    settings = read.settings;
    host.configure(settings);
}

// Registered as a plain request: languages.inlineCompletion.on reads params.workDoneToken before the handler runs,
// so null params failed there with an internal error instead of InvalidParams.
connection.onRequest(
    InlineCompletionRequest.type,
    live(async (params, token) => {
        const uri = documentUri(params);
        const position = checkPosition(params.position, "position");
        await settingsReady;
        const doc = documents.get(uri);
        if (!doc || !inlineEnabled(settings.inlineCompletion.enable, doc.languageId) || !settings.model) return null;
        const version = doc.version;
        const offset = doc.offsetAt(position);
        // A place past the end of its line or of the document is answered at the nearest real place.
        const at = doc.positionAt(offset);
        try {
            const completion = await completer.complete(host, doc.uri, doc.getText(), offset, {
                settings,
                signal: abortSignal(token)
            });
            if (doc.version !== version || !completion.text) return { items: [] };
            return { items: [{ insertText: completion.text, range: { start: at, end: at } }] };
        } catch (e) {
            // A completion is offered on every keystroke: failures go to the log and the status, never a pop-up.
            if (!(e instanceof DecodeCancelledError)) logOnce(`inline completion: ${(e as Error).message}`);
            if (token.isCancellationRequested) throw new ResponseError(LSPErrorCodes.RequestCancelled, "cancelled");
            return { items: [] };
        }
    })
);

connection.onRequest(
    lsp.fillHoles,
    live((params, token) =>
        editJob(params, token, "Filling holes", { holes: 0 }, async (doc, options) => {
            const text = doc.getText();
            const range = params.range ? offsetsOf(doc, params.range) : [0, text.length];
            const holes = new HoleParser(settings.holes.marker).parse(text, range[0], range[1]);
            if (holes.length === 0) {
                const marker = settings.holes.marker;
                throw requestFailed(
                    `There is no hole marker ${params.range ? "in the selection" : "in the document"}: write ${marker} where code should go ` +
                        `(${marker}:40 asks for about 40 tokens), then run Fill Holes again.`,
                    "no-hole"
                );
            }
            const ranges = holes.map((h) => ({ start: doc.positionAt(h.start), end: doc.positionAt(h.end) }));
            const { edits, denoised } = await host.run((m) => fillHoles(m, text, holes, options(ranges)));
            return { edits, denoised, extra: { holes: holes.length } };
        })
    )
);

connection.onRequest(
    lsp.rewrite,
    live((params, token) =>
        editJob(params, token, "Rewriting", { text: "" }, async (doc, options) => {
            const [start, end] = offsetsOf(doc, params.range);
            if (typeof params.instruction !== "string") throw new ResponseError(ErrorCodes.InvalidParams, "A rewrite needs an instruction (a string).");
            const mode = params.mode ?? settings.rewrite.mode;
            if (mode !== "instruct" && mode !== "remask")
                throw new ResponseError(ErrorCodes.InvalidParams, `Unknown rewrite mode ${JSON.stringify(mode)}: use "instruct" or "remask".`);
            const r = await host.run((m) =>
                rewriteSelection(
                    m,
                    {
                        selection: doc.getText().slice(start, end),
                        at: start,
                        eol: lineEnding(doc.getText()),
                        instruction: params.instruction,
                        languageId: doc.languageId,
                        mode
                    },
                    options([{ start: doc.positionAt(start), end: doc.positionAt(end) }])
                )
            );
            return { edits: r.edits, denoised: r.denoised, extra: { text: r.text } };
        })
    )
);

connection.onRequest(
    lsp.sketch,
    live((params, token) =>
        editJob(params, token, "Sketching", {}, async (doc, options) => {
            const offset = doc.offsetAt(checkPosition(params.position, "position"));
            const at = doc.positionAt(offset);
            const { edit, denoised } = await host.run((m) => sketchBody(m, doc.getText(), offset, options([{ start: at, end: at }])));
            return { edits: [edit], denoised, extra: {} };
        })
    )
);

type JobParams = WorkDoneProgressParams & PartialResultParams & { textDocument: VersionedTextDocumentIdentifier };
type JobOptionsFor = (ranges: Range[]) => {
    settings: Settings;
    signal: AbortSignal;
    document: string;
    onPartial: (p: { step: number; totalSteps: number; texts: string[] }) => void;
};

/**
 * What the editing jobs share: the document at the version the client saw, work-done progress with
 * cancellation, partial texts through $/progress, no edit if the document changed meanwhile, and errors a
 * person can read.
 */
async function editJob<X extends object>(
    params: JobParams,
    token: CancellationToken,
    title: string,
    /** The job's own fields in a stale answer. */
    empty: X,
    job: (doc: TextDocument, options: JobOptionsFor) => Promise<{ edits: SpanEdit[]; denoised: Denoised | null; extra: X }>
): Promise<lsp.EditResult & X> {
    const uri = documentUri(params);
    if (!Number.isInteger(params.textDocument.version))
        throw new ResponseError(ErrorCodes.InvalidParams, "textDocument.version must be the document's version (a whole number).");
    await settingsReady;
    const doc = documents.get(uri);
    if (!doc) throw new ResponseError(LSPErrorCodes.RequestFailed, `${uri} is not open in the editor`);
    const version = doc.version;
    // Each job leaves one line in the log (the client's Show Log): what came of it.
    const log = (outcome: string) => connection.console.info(`${title} (${basename(uri)}): ${outcome}`);
    const stale = (): lsp.EditResult & X => {
        log("the document changed meanwhile, so nothing was returned");
        return { edits: [], stale: true, trace: null, ...empty };
    };
    if (params.textDocument.version !== version) return stale();
    completer.cancelAll();
    const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
    progress.begin(`Dream-Coder: ${title}`, 0, undefined, true);
    // The job stops as soon as its answer is known to be stale: the document changed or closed.
    const outdated = new AbortController();
    const watchers = staleWatchers.get(uri) ?? new Set<AbortController>();
    staleWatchers.set(uri, watchers.add(outdated));
    const signal = AbortSignal.any([abortSignal(token), outdated.signal]);
    const options: JobOptionsFor = (ranges) => ({
        settings,
        signal,
        document: uri,
        onPartial: (p) => {
            host.step(p.step, p.totalSteps);
            progress.report(Math.round((100 * p.step) / Math.max(1, p.totalSteps)), `step ${p.step}/${p.totalSteps}`);
            if (params.partialResultToken !== undefined) {
                connection.sendProgress(lsp.denoisePartial, params.partialResultToken, {
                    step: p.step,
                    totalSteps: p.totalSteps,
                    holes: ranges.map((range, i) => ({ range, text: p.texts[i] ?? "" }))
                });
            }
        }
    });
    try {
        const r = await job(doc, options);
        if (doc.version !== version || documents.get(doc.uri) !== doc) return stale();
        log(jobSummary(r.edits.length, r.denoised?.trace));
        return {
            edits: r.edits.map((e) => ({ range: { start: doc.positionAt(e.start), end: doc.positionAt(e.end) }, newText: e.text })),
            stale: false,
            trace: r.denoised?.trace ?? null,
            ...r.extra
        };
    } catch (e) {
        if (e instanceof ResponseError) throw e;
        if (outdated.signal.aborted) return stale();
        if (e instanceof DecodeCancelledError || signal.aborted) {
            log("cancelled");
            throw new ResponseError(LSPErrorCodes.RequestCancelled, "The request was cancelled.");
        }
        connection.console.error(`${title}: ${(e as Error).message}`);
        const problem =
            e instanceof ModelSetupError ? e.problem : e instanceof ModelFileError ? "model-file" : e instanceof NoRuntimeError ? "no-runtime" : undefined;
        throw requestFailed((e as Error).message, problem);
    } finally {
        watchers.delete(outdated);
        if (watchers.size === 0 && staleWatchers.get(uri) === watchers) staleWatchers.delete(uri);
        progress.done();
    }
}

/** A finished job in the log's words: the edits, the tokens the model generated in how many passes, the time. */
function jobSummary(edits: number, trace: lsp.DenoiseTrace | undefined): string {
    const generated = trace ? `, ${trace.tokens.length} tokens in ${trace.forwardPasses} passes, ${Math.round(trace.totalMs)} ms` : "";
    return `${edits} edit${edits === 1 ? "" : "s"}${generated}`;
}

/** The running edit jobs of each document, to stop when it changes or closes. */
const staleWatchers = new Map<string, Set<AbortController>>();

function stopStaleJobs(uri: string): void {
    for (const job of staleWatchers.get(uri) ?? []) job.abort();
    completer.cancel(uri);
}

/** Wraps a request handler with LSP's lifecycle rules: nothing before `initialize`, nothing after `shutdown`. */
function live<A extends unknown[], R>(handler: (...args: A) => R): (...args: A) => R {
    return (...args) => {
        if (lifecycle === "starting") throw new ResponseError(ErrorCodes.ServerNotInitialized, "The server has not been initialized yet.");
        if (lifecycle === "shut down") throw new ResponseError(ErrorCodes.InvalidRequest, "The server is shutting down.");
        return handler(...args);
    };
}

const MAX_UINTEGER = 2 ** 31 - 1;

/** The request's document URI, or InvalidParams for params that do not name one (null params included). */
function documentUri(params: unknown): string {
    const uri = (params as { textDocument?: { uri?: unknown } } | null)?.textDocument?.uri;
    if (typeof uri !== "string") throw new ResponseError(ErrorCodes.InvalidParams, "The request must name a document (textDocument.uri).");
    return uri;
}

/** A protocol position: whole numbers from 0 to 2^31 - 1 (LSP's uinteger); InvalidParams for anything else. */
function checkPosition(p: unknown, name: string): Position {
    const { line, character } = (p ?? {}) as Partial<Record<string, unknown>>;
    const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 0 && (n as number) <= MAX_UINTEGER;
    if (!ok(line) || !ok(character)) {
        throw new ResponseError(ErrorCodes.InvalidParams, `${name} must be { line, character } with whole numbers from 0 to ${MAX_UINTEGER}.`);
    }
    return { line: line as number, character: character as number };
}

/** A range's offsets in the document (places past a line's end clamped to it); InvalidParams when it ends before it starts. */
function offsetsOf(doc: TextDocument, range: unknown): [number, number] {
    const r = (range ?? {}) as Partial<Range>;
    const start = doc.offsetAt(checkPosition(r.start, "range.start"));
    const end = doc.offsetAt(checkPosition(r.end, "range.end"));
    if (end < start) throw new ResponseError(ErrorCodes.InvalidParams, "The range ends before it starts.");
    return [start, end];
}

connection.onCodeAction(
    live((params): CodeAction[] => {
        const doc = documents.get(documentUri(params));
        if (!doc) return [];
        const actions: CodeAction[] = [];
        const [start, end] = offsetsOf(doc, params.range);
        const selected = start !== end;
        const parser = new HoleParser(settings.holes.marker);
        const inRange = selected ? parser.parse(doc.getText(), start, end).length : 0;
        const all = inRange || parser.parse(doc.getText()).length;
        if (all > 0) {
            const n = inRange || all;
            actions.push({
                title: `Fill ${n} hole${n === 1 ? "" : "s"} with Dream-Coder`,
                kind: CodeActionKind.RefactorRewrite,
                command: { title: "Fill holes", command: lsp.CLIENT_COMMANDS.fillHoles, arguments: [doc.uri, inRange ? params.range : null] }
            });
        }
        if (selected) {
            actions.push({
                title: "Rewrite with Dream-Coder…",
                kind: CodeActionKind.RefactorRewrite,
                command: { title: "Rewrite selection", command: lsp.CLIENT_COMMANDS.rewriteSelection, arguments: [doc.uri, params.range] }
            });
        }
        return actions;
    })
);

connection.onRequest(
    lsp.listModels,
    live(() => ({ models: listCatalog(settings), selected: settings.model || DEFAULT_MODEL_ID }))
);

/** Work-done progress for a model pipeline: one bar over its stages, the stage and its detail as the message. */
function reportPull(progress: WorkDoneProgressReporter): (p: PullProgress) => void {
    return (p) => progress.report(Math.floor((100 * (Math.max(0, p.stage - 1) + p.fraction)) / p.stages), `${p.title} (${p.stage}/${p.stages}) · ${p.detail}`);
}

/** A failed download or conversion as the client shows it: gated repositories get the token action. */
function pullFailed(what: string, e: unknown): ResponseError<lsp.ProblemData | undefined> {
    const detail = (e as Error).message;
    connection.console.error(`${what} failed: ${(e as Error).stack ?? detail}`);
    if (e instanceof HubError && e.reason === "cancelled") return requestFailed(detail, undefined);
    const problem = e instanceof HubError && e.reason === "unauthorized" ? "hub-login" : "download";
    return requestFailed(`${what} failed: ${detail.replace(/\.?$/, ".")}`, problem);
}

connection.onRequest(
    lsp.downloadModel,
    live(async (params, token) => {
        const entry = catalogEntry(params?.id);
        if (!entry) throw new ResponseError(LSPErrorCodes.RequestFailed, `"${params.id}" is not in the model catalog`);
        const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
        progress.begin(`Downloading ${entry.name}`, 0, undefined, true);
        try {
            const path = await pullModel(entry, settings, {
                quantization: params.quantization,
                keepCheckpoint: params.keepCheckpoint,
                token: params.token,
                threads: settings.threads || undefined,
                signal: abortSignal(token),
                onProgress: reportPull(progress)
            });
            return { path };
        } catch (e) {
            throw pullFailed(`Downloading ${entry.name}`, e);
        } finally {
            progress.done();
        }
    })
);

connection.onRequest(
    lsp.convertCheckpoint,
    live(async (params, token) => {
        if (typeof params?.folder !== "string" || !params.folder) {
            throw new ResponseError(ErrorCodes.InvalidParams, "The request must name a checkpoint folder (folder).");
        }
        const quantization = params.quantization ?? DEFAULT_QUANTIZATION;
        const name = basename(params.folder);
        const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
        progress.begin(`Converting ${name}`, 0, undefined, true);
        try {
            const target = convertedModelPath(params.folder, quantization, settings);
            const staging = join(modelsDirectory(settings), ".partial", basename(target, ".gguf"));
            const path = await convertFolder(params.folder, target, staging, {
                quantization,
                threads: settings.threads || undefined,
                signal: abortSignal(token),
                onProgress: reportPull(progress)
            });
            return { path };
        } catch (e) {
            throw pullFailed(`Converting ${name}`, e);
        } finally {
            progress.done();
        }
    })
);

connection.onRequest(
    lsp.runtimeTargets,
    live(async () => ({
        targets: await Promise.all(
            lsp.RUNTIME_TARGETS.map(async (gpu) => ({ gpu, name: TARGET_NAMES[gpu], problems: (await checkPrerequisites(gpu)).problems }))
        ),
        built: builtRuntime() ?? null,
        missing: runtimeMissing()
    }))
);

connection.onRequest(
    lsp.buildRuntime,
    live(async (params, token) => {
        if (!lsp.RUNTIME_TARGETS.includes(params?.gpu)) {
            throw new ResponseError(ErrorCodes.InvalidParams, `gpu must be one of ${lsp.RUNTIME_TARGETS.join(", ")}.`);
        }
        if (params.jobs !== undefined && !(Number.isInteger(params.jobs) && params.jobs >= 1)) {
            throw new ResponseError(ErrorCodes.InvalidParams, "jobs must be a whole number of at least 1.");
        }
        const name = TARGET_NAMES[params.gpu];
        const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
        progress.begin(`Building the ${name} runtime`, 0, undefined, true);
        try {
            const built = await buildRuntime({ gpu: params.gpu, jobs: params.jobs, signal: abortSignal(token), onProgress: reportPull(progress) });
            connection.console.info(`built the ${name} runtime in ${built.seconds} s: ${built.file}`);
            return built;
        } catch (e) {
            if (e instanceof RuntimeBuildError && e.reason === "cancelled") throw new ResponseError(LSPErrorCodes.RequestCancelled, e.message);
            connection.console.error(`Building the ${name} runtime failed: ${(e as Error).stack ?? (e as Error).message}`);
            throw requestFailed((e as Error).message, undefined);
        } finally {
            progress.done();
        }
    })
);

/** A failed request; `problem` (in the error's data) lets the client offer the action that fixes it. */
function requestFailed(message: string, problem: lsp.Problem | undefined): ResponseError<lsp.ProblemData | undefined> {
    return new ResponseError(LSPErrorCodes.RequestFailed, message, problem && { problem });
}

connection.onShutdown(() => {
    lifecycle = "shut down";
    return host.dispose();
});

documents.onDidChangeContent((e) => stopStaleJobs(e.document.uri));
documents.onDidClose((e) => {
    stopStaleJobs(e.document.uri);
    completer.forget(e.document.uri);
});

let lastLogged = "";
/** Logs an error unless it repeats the previous one: a broken model setting fails every keystroke alike. */
function logOnce(message: string): void {
    if (message !== lastLogged) connection.console.error(message);
    lastLogged = message;
}

/** An AbortSignal that fires when the client cancels the request. */
function abortSignal(token: CancellationToken): AbortSignal {
    const controller = new AbortController();
    if (token.isCancellationRequested) controller.abort();
    token.onCancellationRequested(() => controller.abort());
    return controller.signal;
}

documents.listen(connection);
connection.listen();

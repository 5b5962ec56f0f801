// The language server: one model host, the four jobs over LSP, settings pulled from the editor.
// Run it with --node-ipc (VS Code), --stdio, or --socket=N (see vscode-languageserver's createConnection).
import { basename } from "node:path";
import { TextDocument } from "vscode-languageserver-textdocument";
import {
    CodeActionKind,
    createConnection,
    DidChangeConfigurationNotification,
    LSPErrorCodes,
    ProposedFeatures,
    ResponseError,
    TextDocuments,
    TextDocumentSyncKind,
    type CancellationToken,
    type CodeAction,
    type InitializeResult,
    type PartialResultParams,
    type Range,
    type VersionedTextDocumentIdentifier,
    type WorkDoneProgressParams
} from "vscode-languageserver/node";
import { catalogEntry, catalogPath, DEFAULT_MODEL_ID, downloadModel as download, listCatalog, modelsDirectory } from "./catalog";
import { HoleParser } from "./holes";
import { InlineCompleter } from "./jobs/completion";
import type { Denoised } from "./jobs/denoise";
import { fillHoles } from "./jobs/fill";
import { rewriteSelection } from "./jobs/rewrite";
import { sketchBody } from "./jobs/sketch";
import { ModelHost } from "./modelHost";
import * as lsp from "./protocol";
import { DecodeCancelledError } from "./runtime/runtime";
import { inlineEnabled, readSettings, type Settings } from "./settings";
import { lineEnding, type SpanEdit } from "./spanEdits";

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const host = new ModelHost((s) => void connection.sendNotification(lsp.status, s), (message) => connection.console.warn(message));
const completer = new InlineCompleter();
let settings: Settings = readSettings(undefined).settings;
let pullsConfiguration = false;

connection.onInitialize((params): InitializeResult => {
    pullsConfiguration = params.capabilities.workspace?.configuration === true;
    applySettings((params.initializationOptions as { settings?: unknown } | undefined)?.settings);
    return {
        capabilities: {
            textDocumentSync: TextDocumentSyncKind.Incremental,
            inlineCompletionProvider: true,
            codeActionProvider: { codeActionKinds: [CodeActionKind.RefactorRewrite] }
        },
        serverInfo: { name: "dream-coder", version: "0.1.0" },
        // The process id, so that a client (and the crash-recovery test) can tell one server process from the next.
        dreamCoder: { pid: process.pid }
    } as InitializeResult;
});

connection.onInitialized(async () => {
    if (pullsConfiguration) {
        void connection.client.register(DidChangeConfigurationNotification.type, { section: "dreamCoder" });
        await pullSettings();
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

connection.languages.inlineCompletion.on(async (params, token) => {
    const doc = documents.get(params.textDocument.uri);
    if (!doc || !inlineEnabled(settings, doc.languageId) || !settings.model) return null;
    const version = doc.version;
    const offset = doc.offsetAt(params.position);
    try {
        const completion = await completer.complete(host, doc.uri, doc.getText(), offset, {
            settings,
            signal: abortSignal(token)
        });
        if (doc.version !== version || !completion.text) return { items: [] };
        return { items: [{ insertText: completion.text, range: { start: params.position, end: params.position } }] };
    } catch (e) {
        // A completion is offered on every keystroke: failures go to the log and the status, never a pop-up.
        if (!(e instanceof DecodeCancelledError)) logOnce(`inline completion: ${(e as Error).message}`);
        if (token.isCancellationRequested) throw new ResponseError(LSPErrorCodes.RequestCancelled, "cancelled");
        return { items: [] };
    }
});

connection.onRequest(lsp.fillHoles, (params, token) =>
    editJob(params, token, "Filling holes", { holes: 0 }, async (doc, options) => {
        const text = doc.getText();
        const range = params.range ? [doc.offsetAt(params.range.start), doc.offsetAt(params.range.end)] : [0, text.length];
        const holes = new HoleParser(settings.holes.marker).parse(text, range[0], range[1]);
        if (holes.length === 0) {
            throw new ResponseError(LSPErrorCodes.RequestFailed, `No hole marker (${settings.holes.marker}) found ${params.range ? "in the selection" : "in the document"}.`);
        }
        const ranges = holes.map((h) => ({ start: doc.positionAt(h.start), end: doc.positionAt(h.end) }));
        const { edits, denoised } = await host.run((m) => fillHoles(m, text, holes, options(ranges)));
        return { edits, denoised, extra: { holes: holes.length } };
    })
);

connection.onRequest(lsp.rewrite, (params, token) =>
    editJob(params, token, "Rewriting", { text: "" }, async (doc, options) => {
        const selection = doc.getText(params.range);
        const r = await host.run((m) =>
            rewriteSelection(m, { selection, at: doc.offsetAt(params.range.start), eol: lineEnding(doc.getText()), instruction: params.instruction, languageId: doc.languageId, mode: params.mode ?? settings.rewrite.mode }, options([params.range]))
        );
        return { edits: r.edits, denoised: r.denoised, extra: { text: r.text } };
    })
);

connection.onRequest(lsp.sketch, (params, token) =>
    editJob(params, token, "Sketching", {}, async (doc, options) => {
        const offset = doc.offsetAt(params.position);
        const { edit, denoised } = await host.run((m) => sketchBody(m, doc.getText(), offset, options([{ start: params.position, end: params.position }])));
        return { edits: [edit], denoised, extra: {} };
    })
);

type JobParams = WorkDoneProgressParams & PartialResultParams & { textDocument: VersionedTextDocumentIdentifier };
type JobOptionsFor = (ranges: Range[]) => { settings: Settings; signal: AbortSignal; onPartial: (p: { step: number; steps: number; texts: string[] }) => void };

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
    const doc = documents.get(params.textDocument.uri);
    if (!doc) throw new ResponseError(LSPErrorCodes.RequestFailed, `${params.textDocument.uri} is not open in the editor`);
    const version = doc.version;
    const stale = (): lsp.EditResult & X => ({ edits: [], stale: true, trace: null, ...empty });
    if (params.textDocument.version !== version) return stale();
    const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
    progress.begin(`Dream-Coder: ${title}`, 0, undefined, true);
    const signal = abortSignal(token);
    const options: JobOptionsFor = (ranges) => ({
        settings,
        signal,
        onPartial: (p) => {
            host.step(p.step, p.steps);
            progress.report(Math.round((100 * p.step) / Math.max(1, p.steps)), `step ${p.step}/${p.steps}`);
            if (params.partialResultToken !== undefined) {
                connection.sendProgress(lsp.denoisePartial, params.partialResultToken, {
                    step: p.step,
                    steps: p.steps,
                    holes: ranges.map((range, i) => ({ range, text: p.texts[i] ?? "" }))
                });
            }
        }
    });
    try {
        const r = await job(doc, options);
        if (doc.version !== version || documents.get(doc.uri) !== doc) return stale();
        return {
            edits: r.edits.map((e) => ({ range: { start: doc.positionAt(e.start), end: doc.positionAt(e.end) }, newText: e.text })),
            stale: false,
            trace: r.denoised?.trace ?? null,
            ...r.extra
        };
    } catch (e) {
        if (e instanceof ResponseError) throw e;
        if (e instanceof DecodeCancelledError || signal.aborted) throw new ResponseError(LSPErrorCodes.RequestCancelled, "The request was cancelled.");
        connection.console.error(`${title}: ${(e as Error).message}`);
        throw new ResponseError(LSPErrorCodes.RequestFailed, (e as Error).message);
    } finally {
        progress.done();
    }
}

connection.onCodeAction((params): CodeAction[] => {
    const doc = documents.get(params.textDocument.uri);
    if (!doc) return [];
    const actions: CodeAction[] = [];
    const { start, end } = params.range;
    const selected = start.line !== end.line || start.character !== end.character;
    const parser = new HoleParser(settings.holes.marker);
    const inRange = selected ? parser.parse(doc.getText(), doc.offsetAt(start), doc.offsetAt(end)).length : 0;
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
});

connection.onRequest(lsp.listModels, () => ({ models: listCatalog(settings), selected: settings.model || DEFAULT_MODEL_ID }));

connection.onRequest(lsp.downloadModel, async (params, token) => {
    const entry = catalogEntry(params.id);
    if (!entry) throw new ResponseError(LSPErrorCodes.RequestFailed, `"${params.id}" is not in the model catalog`);
    const progress = connection.window.attachWorkDoneProgress(params.workDoneToken);
    progress.begin(`Downloading ${entry.name}`, 0, undefined, true);
    try {
        const path = await download(entry.uri, modelsDirectory(settings), basename(catalogPath(entry, settings)), {
            signal: abortSignal(token),
            onProgress: (p) => progress.report(p.totalBytes ? Math.floor((100 * p.downloadedBytes) / p.totalBytes) : 0, `${mb(p.downloadedBytes)} / ${mb(p.totalBytes)} MB`)
        });
        return { path };
    } catch (e) {
        throw new ResponseError(LSPErrorCodes.RequestFailed, `Downloading ${entry.name} failed: ${(e as Error).message}`);
    } finally {
        progress.done();
    }
});

connection.onShutdown(() => host.dispose());

documents.onDidClose((e) => completer.cancel(e.document.uri));

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

function mb(bytes: number): string {
    return (bytes / 1e6).toFixed(0);
}

documents.listen(connection);
connection.listen();

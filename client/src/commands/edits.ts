// The editing commands: fill holes, rewrite selection (with a diff preview), sketch function. Each shows the
// result forming (LiveDenoise), reports steps in a cancellable notification, cancels when the user types in
// the affected range, and applies the final result as one edit (one undo step).
import * as vscode from "vscode";
import { ResponseError, LSPErrorCodes, type Range, type TextEdit } from "vscode-languageclient/node";
import * as lsp from "../../../common/protocol";
import type { Ctx } from "../ctx";
import { LiveDenoise } from "../liveDenoise";
import { toLspRange, toRange } from "../ranges";
import type { RewritePreview } from "../rewritePreview";
import { showFailure } from "../failures";

const RECENT_INSTRUCTIONS = "dreamCoder.recentInstructions";

interface JobRequest {
    /** The command that started the job, for Retry. */
    command: string;
    /** The spans the job will change: typing inside them cancels it. */
    ranges: vscode.Range[];
    send(params: { textDocument: { uri: string; version: number }; partialResultToken: string }, token: vscode.CancellationToken): Promise<lsp.EditResult>;
}

let jobCounter = 0;

/** Runs an editing job on `editor`; resolves with its result, or undefined when cancelled, stale or failed. */
async function runJob(ctx: Ctx, editor: vscode.TextEditor, title: string, job: JobRequest): Promise<lsp.EditResult | undefined> {
    const document = editor.document;
    const version = document.version;
    const live = new LiveDenoise(editor);
    const cancel = new vscode.CancellationTokenSource();
    const partialResultToken = `dreamCoder-job-${++jobCounter}`;
    const client = ctx.client;
    const touches = vscode.workspace.onDidChangeTextDocument((e) => {
        if (e.document !== document) return;
        const hit = e.contentChanges.some((c) => job.ranges.some((r) => c.range.intersection(r) !== undefined || c.range.contains(r) || r.contains(c.range)));
        if (hit) cancel.cancel();
    });
    await vscode.commands.executeCommand("setContext", "dreamCoder.jobRunning", true);
    ctx.runningJob = cancel;
    try {
        return await vscode.window.withProgress(
            { location: vscode.ProgressLocation.Notification, title: `Dream-Coder: ${title}`, cancellable: true },
            async (progress, token) => {
                token.onCancellationRequested(() => cancel.cancel());
                let reported = 0;
                const partials = client.onProgress(lsp.denoisePartial, partialResultToken, (p) => {
                    live.show(p);
                    // The bar only moves forward: a hole that grows adds steps to the plan.
                    const percent = Math.max(reported, (100 * p.step) / Math.max(1, p.totalSteps));
                    progress.report({ message: `step ${p.step} of ${p.totalSteps}`, increment: percent - reported });
                    reported = percent;
                });
                try {
                    const result = await job.send({ textDocument: { uri: document.uri.toString(), version }, partialResultToken }, cancel.token);
                    ctx.setTrace(result.trace);
                    if (result.stale || document.version !== version) {
                        void vscode.window.showWarningMessage("The document changed while Dream-Coder worked on it; nothing was applied.");
                        return undefined;
                    }
                    return result;
                } finally {
                    partials.dispose();
                }
            }
        );
    } catch (e) {
        if (cancel.token.isCancellationRequested || (e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled)) {
            vscode.window.setStatusBarMessage("Dream-Coder: cancelled", 3000);
            return undefined;
        }
        void showFailure(ctx, title, e, () => vscode.commands.executeCommand(job.command));
        return undefined;
    } finally {
        touches.dispose();
        live.dispose();
        cancel.dispose();
        ctx.runningJob = undefined;
        await vscode.commands.executeCommand("setContext", "dreamCoder.jobRunning", false);
    }
}

/** Applies a result's edits as one edit: one undo step. */
async function applyAll(editor: vscode.TextEditor, edits: TextEdit[]): Promise<boolean> {
    return editor.edit((b) => {
        for (const e of edits) b.replace(toRange(e.range), e.newText);
    });
}

/** The editor showing `uri` (opening it if needed), or the active one. */
async function editorFor(uri?: string | vscode.Uri): Promise<vscode.TextEditor | undefined> {
    if (uri) {
        const target = typeof uri === "string" ? vscode.Uri.parse(uri) : uri;
        return vscode.window.showTextDocument(await vscode.workspace.openTextDocument(target), { preserveFocus: false });
    }
    const editor = vscode.window.activeTextEditor;
    if (!editor) void vscode.window.showInformationMessage("Dream-Coder: open a file first.");
    return editor;
}

/** Fill holes: in the selection if there is one (or the code action's range), else the whole document. Returns the edits applied. */
export async function fillHoles(ctx: Ctx, uri?: string, range?: Range | null): Promise<number> {
    const editor = await editorFor(uri);
    if (!editor) return 0;
    const r = range ? toRange(range) : editor.selection.isEmpty ? undefined : editor.selection;
    const whole = new vscode.Range(editor.document.positionAt(0), editor.document.positionAt(editor.document.getText().length));
    const result = await runJob(ctx, editor, "filling holes", {
        command: lsp.CLIENT_COMMANDS.fillHoles,
        ranges: [r ?? whole],
        send: (params, token) => ctx.client.sendRequest(lsp.fillHoles, { ...params, range: r && toLspRange(r) }, token)
    });
    if (!result) return 0;
    return (await applyAll(editor, result.edits)) ? result.edits.length : 0;
}

/** Asks for an instruction, offering the recent ones. Once something is typed, the typed text is the first item
 * and the one selected, so Enter runs what was typed; a recent instruction runs only when picked. (Left to itself
 * the quick pick keeps a recent entry that fuzzy-matches the typed text selected, and Enter runs it.) */
async function askInstruction(ctx: Ctx): Promise<string | undefined> {
    const recent = ctx.extension.globalState.get<string[]>(RECENT_INSTRUCTIONS, []);
    const recentItems: vscode.QuickPickItem[] = recent.map((label) => ({ label, description: "recent" }));
    const pick = vscode.window.createQuickPick();
    pick.title = "Rewrite with Dream-Coder";
    pick.placeholder = 'What should change? (e.g. "use a list comprehension")';
    pick.items = recentItems;
    // Its label is the value exactly, so the quick pick's sort (exact match first) keeps it on top.
    let typedItem: vscode.QuickPickItem | undefined;
    pick.onDidChangeValue((value) => {
        typedItem = value.trim() ? { label: value, description: "rewrite with this instruction", alwaysShow: true } : undefined;
        pick.items = typedItem ? [typedItem, ...recentItems.filter((r) => r.label !== value.trim())] : recentItems;
        if (typedItem) pick.activeItems = [typedItem];
    });
    const chosen = await new Promise<string | undefined>((resolve) => {
        pick.onDidAccept(() => {
            const active = pick.activeItems[0];
            // The items follow the typed text one round trip to the extension host late: an Enter before they
            // caught up (the typed item's label is not the value yet) means the typed text.
            const caughtUp = !pick.value.trim() || typedItem?.label === pick.value;
            resolve(active && active !== typedItem && caughtUp ? active.label : pick.value);
        });
        pick.onDidHide(() => resolve(undefined));
        pick.show();
    });
    pick.dispose();
    const instruction = chosen?.trim();
    if (!instruction) return undefined;
    await ctx.extension.globalState.update(RECENT_INSTRUCTIONS, [instruction, ...recent.filter((r) => r !== instruction)].slice(0, 10));
    return instruction;
}

/** Rewrite the selection: the span edits open in a diff preview to accept or discard. Returns the number of edits proposed. */
export async function rewriteSelection(ctx: Ctx, preview: RewritePreview, uri?: string, range?: Range, instruction?: string): Promise<number> {
    const editor = await editorFor(uri);
    if (!editor) return 0;
    const r = range ? toRange(range) : editor.selection;
    if (r.isEmpty) {
        void vscode.window.showInformationMessage("Dream-Coder: select the code to rewrite first.");
        return 0;
    }
    const what = instruction ?? (await askInstruction(ctx));
    if (!what) return 0;
    const result = await runJob(ctx, editor, "rewriting", {
        command: lsp.CLIENT_COMMANDS.rewriteSelection,
        ranges: [r],
        send: (params, token) => ctx.client.sendRequest(lsp.rewrite, { ...params, range: toLspRange(r), instruction: what }, token)
    });
    if (!result) return 0;
    if (result.edits.length === 0) {
        void vscode.window.showInformationMessage("Dream-Coder: the rewrite changes nothing.");
        return 0;
    }
    await preview.open(editor.document, result.edits);
    return result.edits.length;
}

/** Sketch a function body at the cursor. Returns whether something was inserted. */
export async function sketchFunction(ctx: Ctx, uri?: string, position?: vscode.Position): Promise<boolean> {
    const editor = await editorFor(uri);
    if (!editor) return false;
    const at = position ? new vscode.Position(position.line, position.character) : editor.selection.active;
    const result = await runJob(ctx, editor, "sketching", {
        command: "dreamCoder.sketchFunction",
        ranges: [new vscode.Range(at, at)],
        send: (params, token) => ctx.client.sendRequest(lsp.sketch, { ...params, position: { line: at.line, character: at.character } }, token)
    });
    if (!result || result.edits.every((e) => e.newText === "")) return false;
    return applyAll(editor, result.edits);
}

// A rewrite is shown as a diff (the document against the document with the span edits applied) to accept or
// discard; accepting applies all span edits as one edit (one undo step), unless the document changed meanwhile.
// The preview itself is where it is accepted or discarded: the diff's title buttons and its keys, which the status
// bar names while it is open. Not a notification: that cannot be closed with the preview, and its buttons would
// outlive it.
import * as vscode from "vscode";
import type { TextEdit } from "vscode-languageclient/node";
import { changedLines } from "./changedLines";
import { toRange } from "./ranges";

const SCHEME = "dream-coder-preview";

interface Pending {
    document: vscode.TextDocument;
    version: number;
    edits: TextEdit[];
    preview: vscode.Uri;
}

export class RewritePreview implements vscode.Disposable, vscode.TextDocumentContentProvider {
    private readonly texts = new Map<string, string>();
    private pending: Pending | undefined;
    /** The status bar's reminder of the keys while a preview is open. */
    private keysHint: vscode.Disposable | undefined;
    private readonly registration = vscode.workspace.registerTextDocumentContentProvider(SCHEME, this);
    /** A preview closed another way (its tab's close button, Close All) is discarded: nothing is pending any more. */
    private readonly tabWatch = vscode.window.tabGroups.onDidChangeTabs((e) => {
        const p = this.pending;
        if (p && e.closed.some((tab) => isPreviewOf(tab, p))) void this.discard();
    });
    private counter = 0;

    provideTextDocumentContent(uri: vscode.Uri): string {
        return this.texts.get(uri.toString()) ?? "";
    }

    /** Opens the diff; resolves once it is on screen. */
    async open(document: vscode.TextDocument, edits: TextEdit[]): Promise<void> {
        await this.discard();
        const proposed = applyTextEdits(document, edits);
        const preview = vscode.Uri.from({ scheme: SCHEME, path: document.uri.path, query: String(++this.counter) });
        this.texts.set(preview.toString(), proposed);
        this.pending = { document, version: document.version, edits, preview };
        await vscode.commands.executeCommand("setContext", "dreamCoder.rewritePreview", true);
        const name = document.uri.path.split("/").pop();
        const lines = changedLines(edits);
        await vscode.commands.executeCommand("vscode.diff", document.uri, preview, `Dream-Coder rewrite: ${name}, ${lines}`);
        // The keys are package.json's keybindings for dreamCoder.acceptRewrite and .discardRewrite.
        const accept = process.platform === "darwin" ? "Cmd+Enter" : "Ctrl+Enter";
        this.keysHint = vscode.window.setStatusBarMessage(`$(diff) Dream-Coder's rewrite changes ${lines}: ${accept} accepts, Escape discards`);
    }

    /** Applies the pending edits; false when there is nothing to apply or the document changed. */
    async accept(): Promise<boolean> {
        const p = this.pending;
        if (!p) return false;
        await this.close();
        if (p.document.version !== p.version) {
            void vscode.window.showWarningMessage("The document changed after the rewrite was proposed; nothing was applied.");
            return false;
        }
        const edit = new vscode.WorkspaceEdit();
        for (const e of p.edits) edit.replace(p.document.uri, toRange(e.range), e.newText);
        return vscode.workspace.applyEdit(edit);
    }

    async discard(): Promise<void> {
        if (this.pending) await this.close();
    }

    private async close(): Promise<void> {
        const p = this.pending;
        this.pending = undefined;
        this.keysHint?.dispose();
        this.keysHint = undefined;
        await vscode.commands.executeCommand("setContext", "dreamCoder.rewritePreview", false);
        if (!p) return;
        for (const group of vscode.window.tabGroups.all) {
            for (const tab of group.tabs) {
                if (isPreviewOf(tab, p)) await vscode.window.tabGroups.close(tab);
            }
        }
        this.texts.delete(p.preview.toString());
    }

    dispose(): void {
        this.tabWatch.dispose();
        this.registration.dispose();
    }
}

function isPreviewOf(tab: vscode.Tab, p: Pending): boolean {
    return tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === p.preview.toString();
}

function applyTextEdits(document: vscode.TextDocument, edits: TextEdit[]): string {
    const text = document.getText();
    const sorted = [...edits].sort((a, b) => document.offsetAt(toRange(a.range).start) - document.offsetAt(toRange(b.range).start));
    let out = "";
    let at = 0;
    for (const e of sorted) {
        const r = toRange(e.range);
        out += text.slice(at, document.offsetAt(r.start)) + e.newText;
        at = document.offsetAt(r.end);
    }
    return out + text.slice(at);
}

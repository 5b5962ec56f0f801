// Shows a running fill, sketch or rewrite forming in the editor: each hole's text so far, with ░ where tokens
// are still masked, drawn as decorations (never edits) after the span it will replace, the span itself dimmed.
import * as vscode from "vscode";
import type { DenoisePartial } from "../../server/src/protocol";
import { toRange } from "./ranges";

const MAX_SHOWN = 160;

export class LiveDenoise implements vscode.Disposable {
    private readonly dimmed = vscode.window.createTextEditorDecorationType({ opacity: "0.4" });
    private readonly forming = vscode.window.createTextEditorDecorationType({
        after: { color: new vscode.ThemeColor("editorGhostText.foreground"), fontStyle: "italic" }
    });

    constructor(private readonly editor: vscode.TextEditor) {}

    show(partial: DenoisePartial): void {
        const spans: vscode.DecorationOptions[] = [];
        const texts: vscode.DecorationOptions[] = [];
        for (const h of partial.holes) {
            const range = toRange(h.range);
            if (!range.isEmpty) spans.push({ range });
            // Decorations hold one line: show line breaks as ↵ and keep long texts short.
            let text = h.text.replace(/\r?\n/g, "↵");
            if (text.length > MAX_SHOWN) text = text.slice(0, MAX_SHOWN) + "…";
            texts.push({
                range: new vscode.Range(range.end, range.end),
                renderOptions: { after: { contentText: ` ${text}` } },
                hoverMessage: `Dream-Coder: step ${partial.step} of ${partial.steps}`
            });
        }
        this.editor.setDecorations(this.dimmed, spans);
        this.editor.setDecorations(this.forming, texts);
    }

    dispose(): void {
        this.dimmed.dispose();
        this.forming.dispose();
    }
}

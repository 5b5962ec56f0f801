// Shows a running fill, sketch or rewrite forming in the editor: each hole's text so far, with ░ where tokens
// are still masked, drawn as decorations (never edits) after the span it will replace, the span itself dimmed.
import * as vscode from "vscode";
import type { DenoisePartial } from "../../common/protocol";
import { toRange } from "./ranges";

/** Characters of a hole's text shown at most, and how many past the first still-masked place. */
const MAX_SHOWN = 160;
const SHOWN_PAST_FRONTIER = 40;

/** The text as one readable line: line breaks as ↵, tabs as →, other control characters as their Unicode control
 * pictures (␀…␟, ␡) and C1 controls as �. A partial decode is full of them, and drawn raw they are invisible. */
function readableLine(text: string): string {
    return (
        text
            .replace(/\r?\n/g, "↵")
            .replace(/\t/g, "→")
            // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
            .replace(/[\u0000-\u001f\u007f\u0080-\u009f]/g, (c) => {
                const code = c.charCodeAt(0);
                return code < 0x20 ? String.fromCharCode(0x2400 + code) : code === 0x7f ? "␡" : "\ufffd";
            })
    );
}

/** Where a long text is forming: the MAX_SHOWN characters that end a little past its first still-masked place
 * (a long fill decodes block after block, so its start is done long before its end). */
function formingPart(text: string): string {
    if (text.length <= MAX_SHOWN) return text;
    const masked = text.indexOf("░");
    const end = masked < 0 ? text.length : Math.min(text.length, Math.max(MAX_SHOWN, masked + SHOWN_PAST_FRONTIER));
    const start = end - MAX_SHOWN;
    return (start > 0 ? "…" : "") + text.slice(start, end) + (end < text.length ? "…" : "");
}

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
            // Decorations hold one line of text.
            const text = formingPart(readableLine(h.text));
            texts.push({
                range: new vscode.Range(range.end, range.end),
                renderOptions: { after: { contentText: ` ${text}` } },
                hoverMessage: `Dream-Coder: step ${partial.step} of ${partial.totalSteps}`
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

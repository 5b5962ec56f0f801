// The denoising view: the last result's text with every token coloured by the step that revealed it, a slider
// to replay the steps, and the counts. A webview with a strict content security policy (a nonce for its one
// script, its own stylesheet, nothing remote); its colours come from the theme.
import { randomBytes } from "node:crypto";
import * as vscode from "vscode";
import type { DenoiseTrace } from "../../common/protocol";

export class DenoiseView implements vscode.Disposable {
    private panel: vscode.WebviewPanel | undefined;

    constructor(private readonly extensionUri: vscode.Uri) {}

    show(trace: DenoiseTrace | undefined): void {
        if (!this.panel) {
            const media = vscode.Uri.joinPath(this.extensionUri, "media");
            this.panel = vscode.window.createWebviewPanel("dreamCoder.denoising", "Dream-Coder: Denoising", vscode.ViewColumn.Beside, {
                enableScripts: true,
                localResourceRoots: [media]
            });
            this.panel.iconPath = vscode.Uri.joinPath(media, "icon.svg");
            this.panel.webview.html = this.html(this.panel.webview, media);
            this.panel.onDidDispose(() => (this.panel = undefined));
        } else {
            this.panel.reveal(undefined, true);
        }
        this.update(trace);
    }

    /** Shows a new trace if the view is open. */
    update(trace: DenoiseTrace | undefined): void {
        void this.panel?.webview.postMessage({ type: "trace", trace: trace ?? null });
    }

    private html(webview: vscode.Webview, media: vscode.Uri): string {
        const nonce = randomBytes(16).toString("base64");
        const script = webview.asWebviewUri(vscode.Uri.joinPath(media, "denoise.js"));
        const style = webview.asWebviewUri(vscode.Uri.joinPath(media, "denoise.css"));
        return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${webview.cspSource}; style-src ${webview.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${style}">
<title>Denoising</title>
</head>
<body>
<header>
  <label for="step">Step <output id="stepLabel">–</output></label>
  <input id="step" type="range" min="0" max="0" value="0" aria-label="Replay the denoising steps">
  <dl id="counts"></dl>
  <p id="legend" aria-label="Legend">Colour = the step that revealed a token:
    <span class="token swatch first">revealed first</span><span class="token swatch middle">…</span><span class="token swatch last">revealed last</span>
    · <span class="token masked">░</span> not revealed yet at this step
    · <span class="token latest">outlined</span> revealed at this step.
    Drag the slider to replay the steps.</p>
</header>
<p id="empty">No result yet: fill holes, sketch or rewrite, then the generation order shows here.</p>
<pre id="text" aria-live="polite"></pre>
<script nonce="${nonce}" src="${script}"></script>
</body>
</html>`;
    }

    dispose(): void {
        this.panel?.dispose();
    }
}

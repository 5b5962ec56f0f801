// The status bar item: model, backend, state (loading n%, ready, step i/N, error) and the last latency.
import * as vscode from "vscode";
import type { ServerStatus } from "../../server/src/protocol";

export class StatusBar implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem("dreamCoder.status", vscode.StatusBarAlignment.Right, 100);

    constructor() {
        this.item.name = "Dream-Coder";
        this.item.command = "dreamCoder.modelActions";
        this.show({ state: "unset", model: "", backend: "CPU" });
        this.item.show();
    }

    show(s: ServerStatus | "starting" | "stopped"): void {
        this.item.backgroundColor = undefined;
        if (s === "starting" || s === "stopped") {
            this.item.text = s === "starting" ? "$(sync~spin) Dream-Coder" : "$(debug-disconnect) Dream-Coder";
            this.item.tooltip = s === "starting" ? "Starting the language server" : "The language server is not running";
            return;
        }
        const model = s.model || "no model";
        const latency = s.lastLatencyMs !== undefined ? ` · ${s.lastLatencyMs} ms` : "";
        switch (s.state) {
            case "unset":
                this.item.text = "$(circle-slash) Dream-Coder: no model";
                break;
            case "idle":
                this.item.text = `$(sparkle) ${model}`;
                break;
            case "loading":
                this.item.text = `$(sync~spin) ${model}: loading ${Math.round(100 * (s.progress ?? 0))}%`;
                break;
            case "ready":
                this.item.text = `$(sparkle) ${model} · ${s.backend}${latency}`;
                break;
            case "busy":
                this.item.text = `$(sync~spin) ${model}: ${s.steps ? `step ${s.step}/${s.steps}` : "working"}`;
                break;
            case "error":
                this.item.text = `$(error) Dream-Coder`;
                this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
                break;
        }
        this.item.tooltip = new vscode.MarkdownString(
            [`**Dream-Coder** — ${s.state}`, `Model: ${model}`, `Backend: ${s.backend}`, s.message ? `\n${s.message}` : "", latency ? `Last request: ${s.lastLatencyMs} ms` : "", "\nClick for model actions."]
                .filter(Boolean)
                .join("  \n")
        );
    }

    dispose(): void {
        this.item.dispose();
    }
}

// The status bar item, in words: "Dream-Coder · model · ready · 140 ms" (loading n %, step i/N, error); a click opens
// its menu, whose title carries an error's message.
import * as vscode from "vscode";
import type { ServerState, ServerStatus } from "../../common/protocol";

/** The server's states as a user reads them. */
const STATE_WORDS: Record<ServerState, string> = {
    unset: "no model chosen",
    idle: "loads the model on first use",
    loading: "loading the model",
    ready: "ready",
    busy: "working",
    error: "error"
};

/** One line for the status: the state in words, with its progress and the last latency. */
export function describeStatus(s: ServerStatus): string {
    switch (s.state) {
        case "loading":
            return `loading ${Math.round(100 * (s.progress ?? 0))}%`;
        case "busy":
            return s.totalSteps ? `step ${s.step}/${s.totalSteps}` : STATE_WORDS.busy;
        case "ready":
            return s.lastLatencyMs !== undefined ? `ready · ${s.lastLatencyMs} ms` : STATE_WORDS.ready;
        default:
            return STATE_WORDS[s.state];
    }
}

/** One line: the item sits right below the notifications, and a focused item shows its tooltip over them. */
const TOOLTIP = "Dream-Coder: click for the model and completion settings";

export class StatusBar implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem("dreamCoder.status", vscode.StatusBarAlignment.Right, 100);

    constructor() {
        this.item.name = "Dream-Coder";
        this.item.command = "dreamCoder.modelActions";
        this.item.tooltip = TOOLTIP;
        this.show({ state: "unset", model: "", backend: "CPU" });
        this.item.show();
    }

    show(s: ServerStatus | "starting" | "stopped"): void {
        this.item.backgroundColor = undefined;
        if (s === "starting" || s === "stopped") {
            this.item.text = s === "starting" ? "$(sync~spin) Dream-Coder · starting" : "$(debug-disconnect) Dream-Coder · stopped";
            return;
        }
        const icon = { unset: "$(circle-slash)", idle: "$(sparkle)", loading: "$(sync~spin)", ready: "$(sparkle)", busy: "$(sync~spin)", error: "$(error)" }[
            s.state
        ];
        // The GPU's name where layers run on one ("· Vulkan0"): the log's line for the model's load says which card and
        // how many layers.
        const model = (s.model ? ` · ${s.model}` : "") + (s.gpu && s.state !== "error" ? ` · ${s.gpu}` : "");
        this.item.text = s.state === "error" ? `${icon} Dream-Coder${model} · error` : `${icon} Dream-Coder${model} · ${describeStatus(s)}`;
        if (s.state === "error") this.item.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
    }

    /** What the item shows (the in-host suite reads it). */
    get text(): string {
        return this.item.text;
    }

    /** What the item says on hover and focus (the in-host suite reads it). */
    get tooltip(): vscode.StatusBarItem["tooltip"] {
        return this.item.tooltip;
    }

    dispose(): void {
        this.item.dispose();
    }
}

// How a failed request is shown: the full detail goes to the log, and the user gets the message with the actions
// that fix its cause (the server names the cause in the error's data: ProblemData in protocol.ts). A missing hole
// marker is not an error but a hint, shown as information.
import * as vscode from "vscode";
import { ResponseError } from "vscode-languageclient/node";
import type { Problem, ProblemData } from "../../common/protocol";
import type { Ctx } from "./ctx";

type Fix = "Select Model…" | "Download Model…" | "Choose GGUF File…" | "Open Setting" | "Set Hugging Face Token…" | "Build Runtime…" | "Retry";

/** The actions that fix each cause, in the order offered. */
const FIXES: Record<Problem, Fix[]> = {
    "no-model": ["Select Model…", "Download Model…", "Choose GGUF File…"],
    "not-downloaded": ["Download Model…", "Select Model…", "Choose GGUF File…"],
    "model-file": ["Choose GGUF File…", "Select Model…", "Open Setting"],
    download: ["Retry", "Choose GGUF File…"],
    "hub-login": ["Set Hugging Face Token…", "Retry"],
    "no-runtime": ["Build Runtime…"],
    "no-hole": []
};

/** Shows `e`; `retry` runs the failed action again (offered where no cause is known, or for a download). */
export async function showFailure(ctx: Ctx, what: string, e: unknown, retry: () => unknown): Promise<void> {
    const message = (e as Error).message;
    const problem = e instanceof ResponseError ? (e.data as ProblemData | undefined)?.problem : undefined;
    ctx.output.error(`${what} failed: ${message}${problem ? ` (${problem})` : ""}`);
    if (problem === "no-hole") {
        void vscode.window.showInformationMessage(`Dream-Coder: ${message}`);
        return;
    }
    await showProblem(ctx, message, problem, retry);
}

/** Shows `message` as an error with the actions that fix `problem` (Retry when it is not known), and Show Log. */
export async function showProblem(ctx: Ctx, message: string, problem: Problem | undefined, retry: () => unknown): Promise<void> {
    const fixes: Fix[] = problem ? FIXES[problem] : ["Retry"];
    const pick = await vscode.window.showErrorMessage(`Dream-Coder: ${message}`, ...fixes, "Show Log");
    switch (pick) {
        case "Select Model…":
            return void vscode.commands.executeCommand("dreamCoder.selectModel");
        case "Download Model…":
            return void vscode.commands.executeCommand("dreamCoder.downloadModel");
        // Through the commands, not commands/models.ts, which shows its own failures here.
        case "Choose GGUF File…":
            return void vscode.commands.executeCommand("dreamCoder.chooseModelFile");
        case "Open Setting":
            return void vscode.commands.executeCommand("workbench.action.openSettings", "dreamCoder.model");
        case "Set Hugging Face Token…":
            if (await vscode.commands.executeCommand<boolean>("dreamCoder.setHuggingFaceToken")) void retry();
            return;
        case "Build Runtime…":
            return void vscode.commands.executeCommand("dreamCoder.buildRuntime");
        case "Retry":
            return void retry();
        case "Show Log":
            return ctx.output.show();
    }
}

// How a failed request is shown: the full detail goes to the log, and the user gets the message with the actions
// that fix its cause (the server names the cause in the error's data: ProblemData in protocol.ts). A missing hole
// marker, and no model chosen yet, are not errors: they are shown as information.
import * as vscode from "vscode";
import { ResponseError } from "vscode-languageclient/node";
import { catalogEntry } from "../../common/catalog";
import type { Problem, ProblemData } from "../../common/protocol";
import { config } from "./config";
import type { Ctx } from "./ctx";
import { bundledModel, recommendedModel } from "./modelItems";
import { type Action, FIXES } from "./notificationActions";

/** Ends every error message: the log has the full detail, one click away without taking a button's place. */
export const LOG_LINK = "[Show Log](command:dreamCoder.showLog)";

/** What each action does; `retry` runs the failed action again. Through the commands, not commands/models.ts, which
 * shows its own failures here. */
const RUN: Record<Action, (retry: () => unknown) => unknown> = {
    // The model the message is about: the chosen catalog model that is not downloaded yet, else the recommended one.
    "Download…": () => vscode.commands.executeCommand("dreamCoder.selectModel", catalogEntry(config.model)?.id ?? recommendedModel().id),
    "Choose File…": () => vscode.commands.executeCommand("dreamCoder.chooseModelFile"),
    "Try the Bundled Model": () => vscode.commands.executeCommand("dreamCoder.selectModel", bundledModel().id),
    "Select Model…": () => vscode.commands.executeCommand("dreamCoder.selectModel"),
    "Open Setting": () => vscode.commands.executeCommand("workbench.action.openSettings", "dreamCoder.model"),
    "Open GPU Setting": () => vscode.commands.executeCommand("workbench.action.openSettings", "dreamCoder.gpuLayers"),
    "Restart Anyway": () => vscode.commands.executeCommand("dreamCoder.restartServer"),
    "Set Hugging Face Token…": async (retry) => {
        if (await vscode.commands.executeCommand<boolean>("dreamCoder.setHuggingFaceToken")) await retry();
    },
    "Build Runtime…": () => vscode.commands.executeCommand("dreamCoder.buildRuntime"),
    Retry: (retry) => retry()
};

/** Shows `message` with `actions` and runs the one picked; resolves to it, or to undefined once the notification is
 * closed unanswered. */
export async function offerActions(
    severity: "info" | "error",
    message: string,
    actions: readonly Action[],
    retry: () => unknown = () => undefined
): Promise<Action | undefined> {
    const pick =
        severity === "info" ? await vscode.window.showInformationMessage(message, ...actions) : await vscode.window.showErrorMessage(message, ...actions);
    if (pick) await RUN[pick](retry);
    return pick;
}

/** Shows `e`; `retry` runs the failed action again (offered where no cause is known, or for a download). */
export async function showFailure(ctx: Ctx, what: string, e: unknown, retry: () => unknown): Promise<void> {
    const message = (e as Error).message;
    const problem = e instanceof ResponseError ? (e.data as ProblemData | undefined)?.problem : undefined;
    ctx.output.error(`${what} failed: ${message}${problem ? ` (${problem})` : ""}`);
    await showProblem(message, problem, retry);
}

/** Shows `message` with the actions that fix `problem` (Retry when it is not known): as an error linking to the
 * log, or as information for what is a next step rather than a failure. */
export async function showProblem(message: string, problem: Problem | undefined, retry: () => unknown): Promise<void> {
    if (problem === "no-hole" || problem === "no-model") {
        await offerActions("info", `Dream-Coder: ${message}`, FIXES[problem]);
        return;
    }
    await offerActions("error", `Dream-Coder: ${message} ${LOG_LINK}`, problem ? FIXES[problem] : ["Retry"], retry);
}

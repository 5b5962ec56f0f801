// A typed view of the settings the client itself reads (contributes.configuration in package.json declares them
// all; the server reads the rest through workspace/configuration).
import * as vscode from "vscode";

export const SECTION = "dreamCoder";

export const config = {
    get model(): string {
        return vscode.workspace.getConfiguration(SECTION).get<string>("model", "").trim();
    },
    /** Sets the model for the user (never in workspace settings: a workspace must not pick files to load). */
    async setModel(value: string): Promise<void> {
        await vscode.workspace.getConfiguration(SECTION).update("model", value, vscode.ConfigurationTarget.Global);
    },
    /** The per-language switch for inline completions (`*` for the rest). */
    get inlineCompletionEnable(): Record<string, boolean> {
        return vscode.workspace.getConfiguration(SECTION).get<Record<string, boolean>>("inlineCompletion.enable", {});
    },
    /** Turns inline completions on or off for a language, or for all (`*`), in the user's settings. */
    async setInlineCompletion(languageId: string, on: boolean): Promise<void> {
        const enable = { ...config.inlineCompletionEnable, [languageId]: on };
        await vscode.workspace.getConfiguration(SECTION).update("inlineCompletion.enable", enable, vscode.ConfigurationTarget.Global);
    },
    /** Every dreamCoder.* value, for the server's initializationOptions. */
    all(): Record<string, unknown> {
        return JSON.parse(JSON.stringify(vscode.workspace.getConfiguration(SECTION))) as Record<string, unknown>;
    }
};

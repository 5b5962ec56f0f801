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
    /** Every dreamCoder.* value, for the server's initializationOptions. */
    all(): Record<string, unknown> {
        return JSON.parse(JSON.stringify(vscode.workspace.getConfiguration(SECTION))) as Record<string, unknown>;
    }
};

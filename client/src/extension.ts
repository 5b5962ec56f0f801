// Activation: start the language server, register the commands (one file per group under commands/), the
// status bar, the denoising view and the rewrite preview; offer a model on first run.
import * as vscode from "vscode";
import { CLIENT_COMMANDS, type QuantType, type RuntimeTarget } from "../../common/protocol";
import { fillHoles, rewriteSelection, sketchFunction } from "./commands/edits";
import { chooseModelFile, convertCheckpoint, downloadModel, modelActions, offerFirstModel, selectModel, setHuggingFaceToken } from "./commands/models";
import { buildRuntime, offerRuntimeBuild } from "./commands/runtime";
import { Ctx } from "./ctx";
import { DenoiseView } from "./denoiseView";
import { RewritePreview } from "./rewritePreview";

let ctx: Ctx | undefined;

export async function activate(extension: vscode.ExtensionContext): Promise<Ctx> {
    ctx = new Ctx(extension);
    const c = ctx;
    const preview = new RewritePreview();
    const view = new DenoiseView(extension.extensionUri);
    extension.subscriptions.push(
        c,
        preview,
        view,
        c.onTrace((t) => view.update(t)),
        vscode.commands.registerCommand(CLIENT_COMMANDS.fillHoles, (uri?: string, range?: vscode.Range | null) => fillHoles(c, uri, range)),
        vscode.commands.registerCommand(CLIENT_COMMANDS.rewriteSelection, (uri?: string, range?: vscode.Range, instruction?: string) =>
            rewriteSelection(c, preview, uri, range, instruction)
        ),
        vscode.commands.registerCommand("dreamCoder.acceptRewrite", () => preview.accept()),
        vscode.commands.registerCommand("dreamCoder.discardRewrite", () => preview.discard()),
        vscode.commands.registerCommand("dreamCoder.sketchFunction", (uri?: string, position?: vscode.Position) => sketchFunction(c, uri, position)),
        vscode.commands.registerCommand("dreamCoder.cancel", () => c.runningJob?.cancel()),
        vscode.commands.registerCommand("dreamCoder.showDenoising", () => view.show(c.lastTrace)),
        vscode.commands.registerCommand("dreamCoder.selectModel", (id?: string) => selectModel(c, id)),
        vscode.commands.registerCommand("dreamCoder.downloadModel", (id?: string) => downloadModel(c, id)),
        vscode.commands.registerCommand("dreamCoder.convertCheckpoint", (folder?: string, type?: QuantType) => convertCheckpoint(c, folder, type)),
        vscode.commands.registerCommand("dreamCoder.setHuggingFaceToken", () => setHuggingFaceToken(c)),
        // Not in the palette (Select Model… offers it): the notifications' "Choose File…" runs it.
        vscode.commands.registerCommand("dreamCoder.chooseModelFile", () => chooseModelFile(c)),
        vscode.commands.registerCommand("dreamCoder.buildRuntime", (gpu?: RuntimeTarget) => buildRuntime(c, gpu)),
        vscode.commands.registerCommand("dreamCoder.modelActions", () => modelActions(c)),
        vscode.commands.registerCommand("dreamCoder.restartServer", () => c.restart()),
        vscode.commands.registerCommand("dreamCoder.showLog", () => c.output.show())
    );
    await c.start();
    void offerRuntimeBuild(c);
    void offerFirstModel(c);
    return c;
}

export async function deactivate(): Promise<void> {
    await ctx?.stop();
}

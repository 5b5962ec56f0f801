// Model setup: pick a catalog model or a local GGUF file, download a catalog model with cancellable progress,
// the first-run prompt, and the status bar's menu.
import { basename } from "node:path";
import * as vscode from "vscode";
import { WorkDoneProgress, type WorkDoneProgressReport } from "vscode-languageclient/node";
import * as lsp from "../../../common/protocol";
import { config } from "../config";
import type { Ctx } from "../ctx";
import { inlineEnabled } from "../../../common/settings";
import { describeStatus } from "../statusBar";
import { offerActions, showFailure, showProblem } from "../failures";
import { downloadItems, firstModelOffer, selectItems } from "../modelItems";
import { GET_A_MODEL } from "../notificationActions";

/** Set once the first-run offer is closed unanswered: no model prompt at start any more (the status item's "no model
 * chosen", its menu, the walkthrough, and the commands' own offer remain). */
const NO_FIRST_MODEL_OFFER = "dreamCoder.noFirstModelOffer";

/** The model file the user chose last: the file dialog opens in its folder (models are rarely in the workspace). A
 * folder as defaultUri would open its parent in VS Code's own (simple) file dialog. */
const LAST_MODEL_FILE = "dreamCoder.lastModelFile";

/** Asks for a GGUF file and makes it the model. */
export async function chooseModelFile(ctx: Ctx): Promise<void> {
    const last = ctx.extension.globalState.get<string>(LAST_MODEL_FILE);
    const files = await vscode.window.showOpenDialog({
        title: "Choose a diffusion model (GGUF)",
        canSelectMany: false,
        filters: { "GGUF models": ["gguf"] },
        defaultUri: last ? vscode.Uri.file(last) : undefined
    });
    const path = files?.[0]?.fsPath;
    if (!path) return;
    await ctx.extension.globalState.update(LAST_MODEL_FILE, path);
    await useModel(ctx, path);
}

/** How long the server's status may take to say what it found in a newly chosen model file. */
const STATUS_WAIT_MS = 10_000;
/** The server first reports the new model, then the result of its file check a few milliseconds later. */
const CHECK_SETTLE_MS = 500;

/** Makes `model` (a path or a catalog id) the model and confirms it once the server has looked at it: the model in
 * use, or what is wrong with it and the actions that fix it. */
async function useModel(ctx: Ctx, model: string): Promise<void> {
    const name = basename(model);
    const reported = new Promise<void>((resolve) => {
        const timeout = setTimeout(done, STATUS_WAIT_MS);
        const sub = ctx.onStatus((s) => s.model === name && done());
        function done(): void {
            clearTimeout(timeout);
            sub.dispose();
            setTimeout(resolve, CHECK_SETTLE_MS);
        }
    });
    await config.setModel(model);
    await reported;
    const s = ctx.status;
    if (s.state === "error") {
        await showProblem(s.message ?? `${name} cannot be used`, "model-file", () => undefined);
        return;
    }
    void vscode.window.showInformationMessage(`Dream-Coder will use ${name}. Type in a file for ghost text, or write ??? and run Fill Holes.`);
}

/** Makes the catalog model `id` the model, downloading it first if it is not there yet; with no `id`, asks which in a
 * quick pick over the catalog and "Choose a GGUF file…". */
export async function selectModel(ctx: Ctx, id?: string): Promise<void> {
    const { models, selected } = await ctx.client.sendRequest(lsp.listModels);
    let entry = models.find((m) => m.id === id);
    if (!entry) {
        type Item = vscode.QuickPickItem & { id?: string; file?: boolean };
        const items: Item[] = selectItems(models, config.model, selected);
        items.push({ label: "$(folder-opened) Choose a GGUF file…", file: true });
        const pick = await vscode.window.showQuickPick(items, { title: "Dream-Coder: Select Model", matchOnDetail: true });
        if (!pick) return;
        if (pick.file) return chooseModelFile(ctx);
        entry = models.find((m) => m.id === pick.id)!;
    }
    if (!entry.path && !(await downloadModel(ctx, entry.id))) return;
    await useModel(ctx, entry.id);
}

/** Where the Hugging Face access token is kept: VS Code's secret storage, never a settings file. */
const HF_TOKEN_SECRET = "dreamCoder.huggingFaceToken";

/** Asks for a Hugging Face access token (for gated repositories) and keeps it in the secret storage; true when set. */
export async function setHuggingFaceToken(ctx: Ctx): Promise<boolean> {
    const token = await vscode.window.showInputBox({
        title: "Dream-Coder: Hugging Face Token",
        prompt: "An access token (huggingface.co/settings/tokens, read access) for gated models; accept the model's terms on its page first. Empty removes it.",
        password: true,
        ignoreFocusOut: true,
        validateInput: (v) => (v === "" || /^hf_\w{20,}$/.test(v.trim()) ? undefined : "A Hugging Face token starts with hf_")
    });
    if (token === undefined) return false;
    if (token.trim()) await ctx.extension.secrets.store(HF_TOKEN_SECRET, token.trim());
    else await ctx.extension.secrets.delete(HF_TOKEN_SECRET);
    return token.trim() !== "";
}

/** Runs a pipeline request (a model's download or conversion, a runtime build) in one cancellable notification over
 * all its stages. */
export function withPipelineProgress<T>(ctx: Ctx, title: string, send: (workDoneToken: string, cancel: vscode.CancellationToken) => Promise<T>): Thenable<T> {
    const workDoneToken = `dreamCoder-pipeline-${Date.now()}`;
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, cancel) => {
        let last = 0;
        const sub = ctx.client.onProgress(WorkDoneProgress.type, workDoneToken, (p) => {
            if (p.kind !== "report") return;
            const r = p as WorkDoneProgressReport;
            progress.report({ message: r.message, increment: r.percentage !== undefined ? r.percentage - last : undefined });
            if (r.percentage !== undefined) last = r.percentage;
        });
        return send(workDoneToken, cancel).finally(() => sub.dispose());
    });
}

/** Downloads a catalog model (asking which when not given) with VS Code progress; true when it is there. A model
 * with no GGUF is downloaded as its checkpoint and converted on this machine, in the same notification. */
export async function downloadModel(ctx: Ctx, id?: string): Promise<boolean> {
    const { models } = await ctx.client.sendRequest(lsp.listModels);
    let entry = models.find((m) => m.id === id);
    if (!entry) {
        const pick = await vscode.window.showQuickPick(downloadItems(models), { title: "Dream-Coder: Download Model", matchOnDescription: true });
        entry = models.find((m) => m.id === pick?.id);
        if (!entry) return false;
    }
    const target = entry;
    try {
        const token = await ctx.extension.secrets.get(HF_TOKEN_SECRET);
        const { path } = await withPipelineProgress(
            ctx,
            `${target.gguf ? "Downloading" : "Downloading and converting"} ${target.name}`,
            (workDoneToken, cancel) => ctx.client.sendRequest(lsp.downloadModel, { id: target.id, token, workDoneToken }, cancel)
        );
        void vscode.window.showInformationMessage(`${target.name} is ready: ${path}`);
        return true;
    } catch (e) {
        void showFailure(ctx, `Downloading ${target.name}`, e, () => downloadModel(ctx, target.id));
        return false;
    }
}

/** Converts a Hugging Face checkpoint folder on this machine to a GGUF model and offers to use it; resolves to the
 * model file (undefined when nothing was converted). The folder and the type are asked for unless given. */
export async function convertCheckpoint(ctx: Ctx, folder?: string, type?: lsp.QuantType): Promise<string | undefined> {
    if (!folder) {
        const picked = await vscode.window.showOpenDialog({
            title: "Choose a checkpoint folder (config.json, tokenizer files, .safetensors)",
            canSelectFiles: false,
            canSelectFolders: true,
            canSelectMany: false
        });
        folder = picked?.[0]?.fsPath;
        if (!folder) return;
    }
    const quantization =
        type ??
        (
            await vscode.window.showQuickPick(
                lsp.QUANT_TYPES.map((t) => ({ label: t, description: [QUANT_NOTES[t], sevenB(t)].filter(Boolean).join(" · ") })),
                { title: "Dream-Coder: Model File Type" }
            )
        )?.label;
    if (!quantization) return;
    const source = folder;
    try {
        const { path } = await withPipelineProgress(ctx, `Converting ${basename(source)}`, (workDoneToken, cancel) =>
            ctx.client.sendRequest(lsp.convertCheckpoint, { folder: source, quantization: quantization as lsp.QuantType, workDoneToken }, cancel)
        );
        void vscode.window.showInformationMessage(`Converted ${basename(source)}: ${path}`, "Use This Model").then((use) => use && useModel(ctx, path));
        return path;
    } catch (e) {
        void showFailure(ctx, `Converting ${basename(source)}`, e, () => convertCheckpoint(ctx, source, type));
        return undefined;
    }
}

/** What the model file types mean to a user choosing one, with what a 7B model (7.6 billion weights) comes to. */
const QUANT_NOTES: Record<lsp.QuantType, string> = {
    Q4_K_M: "recommended",
    Q5_K_M: "",
    Q6_K: "",
    Q8_0: "closest to the original of the quantized types",
    Q4_0: "simpler and less exact than Q4_K_M",
    F16: "not quantized",
    BF16: "not quantized: the checkpoint's own numbers"
};
const sevenB = (t: lsp.QuantType) => `a 7B model: ${((7.6e9 * lsp.BITS_PER_WEIGHT[t]) / 8e9).toFixed(1)} GB`;

/** On start with no model set, offers the recommended model's download, a local file or the bundled model; until the
 * offer is once closed unanswered. */
export async function offerFirstModel(ctx: Ctx): Promise<void> {
    if (config.model || ctx.extension.globalState.get<boolean>(NO_FIRST_MODEL_OFFER)) return;
    const pick = await offerActions("info", firstModelOffer(), GET_A_MODEL);
    if (!pick) await ctx.extension.globalState.update(NO_FIRST_MODEL_OFFER, true);
}

/** A language's name as VS Code shows it ("Python" for python): the first alias that an extension declares for it. */
function languageName(id: string): string {
    for (const extension of vscode.extensions.all) {
        const languages = extension.packageJSON?.contributes?.languages as { id: string; aliases?: string[] }[] | undefined;
        const name = languages?.find((l) => l.id === id)?.aliases?.[0];
        if (name) return name;
    }
    return id;
}

/** The status bar's menu: the model actions, completions on or off (everywhere, and for the active editor's
 * language), the settings. */
export async function modelActions(ctx: Ctx): Promise<void> {
    const s = ctx.status;
    const enable = config.inlineCompletionEnable;
    const everywhere = inlineEnabled(enable, "*");
    const language = vscode.window.activeTextEditor?.document.languageId;
    type Action = vscode.QuickPickItem & { run(): unknown };
    const command =
        (id: string, ...args: unknown[]) =>
        () =>
            vscode.commands.executeCommand(id, ...args);
    const actions: Action[] = [
        { label: "$(symbol-misc) Select Model…", description: s.model || "none", run: command("dreamCoder.selectModel") },
        { label: "$(cloud-download) Download Model…", run: command("dreamCoder.downloadModel") },
        { label: "", kind: vscode.QuickPickItemKind.Separator, run: () => undefined },
        {
            label: everywhere ? "$(circle-slash) Turn Off Completions" : "$(check) Turn On Completions",
            description: "ghost text in every language",
            run: () => config.setInlineCompletion("*", !everywhere)
        }
    ];
    if (language) {
        const here = inlineEnabled(enable, language);
        actions.push({
            label: `${here ? "$(circle-slash) Turn Off" : "$(check) Turn On"} Completions for ${languageName(language)}`,
            run: () => config.setInlineCompletion(language, !here)
        });
    }
    actions.push(
        { label: "", kind: vscode.QuickPickItemKind.Separator, run: () => undefined },
        { label: "$(graph) Show Denoising", run: command("dreamCoder.showDenoising") },
        { label: "$(settings-gear) Open Settings", run: command("workbench.action.openSettings", `@ext:${ctx.extension.extension.id}`) },
        { label: "$(debug-restart) Restart Server", run: command("dreamCoder.restartServer") },
        { label: "$(output) Show Log", run: command("dreamCoder.showLog") }
    );
    const pick = await vscode.window.showQuickPick(actions, {
        title: `Dream-Coder: ${describeStatus(s)}${s.message ? ` — ${s.message}` : ""}`
    });
    if (!pick) return;
    // The closed menu hands the focus back to the status item, whose tooltip would then cover the notification that
    // the action may show (it sits right above it).
    await vscode.commands.executeCommand("workbench.action.focusActiveEditorGroup");
    await pick.run();
}

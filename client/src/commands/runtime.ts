// "Build the Runtime for This Machine…": a quick pick of the runtime targets (each with what this machine lacks to
// build it), the build in a cancellable notification, then the language server restarts to load the new runtime.
import * as vscode from "vscode";
import { LSPErrorCodes, ResponseError } from "vscode-languageclient/node";
import * as lsp from "../../../common/protocol";
import type { Ctx } from "../ctx";
import { showFailure, showProblem } from "../failures";
import { withPipelineProgress } from "./models";

/** What each target is for, in the quick pick. */
const ABOUT: Record<lsp.RuntimeTarget, string> = {
    cpu: "No GPU: llama.cpp's CPU code compiled for this processor",
    vulkan: "AMD, Intel and NVIDIA GPUs through Vulkan (needs the Vulkan SDK: headers, loader, glslc)",
    cuda: "NVIDIA GPUs (needs the CUDA toolkit)",
    metal: "Apple GPUs (macOS; llama.cpp's default there)"
};

/** Builds a runtime for this machine (asking which when `gpu` is not given); resolves to the addon file, or undefined. */
export async function buildRuntime(ctx: Ctx, gpu?: lsp.RuntimeTarget): Promise<string | undefined> {
    const { targets, built } = await ctx.client.sendRequest(lsp.runtimeTargets);
    let target = targets.find((t) => t.gpu === gpu);
    if (!target) {
        type Item = vscode.QuickPickItem & { target: lsp.RuntimeTargetInfo };
        // What this machine can build first; on macOS Metal before the CPU.
        const order = (t: lsp.RuntimeTargetInfo) => (t.problems.length ? 2 : t.gpu === "metal" ? 0 : 1);
        const items: Item[] = [...targets]
            .sort((a, b) => order(a) - order(b))
            .map((t) => ({
                label: t.name,
                description: [built?.gpu === t.gpu && "built", t.problems.length ? "$(warning) missing prerequisites" : "ready to build"]
                    .filter(Boolean)
                    .join(" · "),
                detail: t.problems.length ? t.problems.join(" ") : ABOUT[t.gpu],
                target: t
            }));
        const pick = await vscode.window.showQuickPick(items, {
            title: "Dream-Coder: Build the Runtime for This Machine",
            placeHolder: "Compiles llama.cpp here (several minutes) and uses it instead of the packaged runtime",
            matchOnDetail: true
        });
        if (!pick) return undefined;
        target = pick.target;
    }
    const chosen = target?.gpu ?? gpu!;
    const name = target?.name ?? chosen;
    if (target?.problems.length) {
        await showProblem(target.problems.join(" "), undefined, () => buildRuntime(ctx, chosen));
        return undefined;
    }
    try {
        const result = await withPipelineProgress(ctx, `Building the ${name} runtime`, (workDoneToken, cancel) =>
            ctx.client.sendRequest(lsp.buildRuntime, { gpu: chosen, workDoneToken }, cancel)
        );
        ctx.output.info(`built the ${name} runtime in ${result.seconds} s: ${result.file}`);
        void vscode.window.showInformationMessage(
            `Dream-Coder: the ${name} runtime is built (${Math.max(1, Math.round(result.seconds / 60))} min); the language server restarts to load it.`
        );
        await ctx.restart();
        return result.file;
    } catch (e) {
        if (e instanceof ResponseError && e.code === LSPErrorCodes.RequestCancelled) {
            void vscode.window.showInformationMessage(`Dream-Coder: ${e.message}`);
            return undefined;
        }
        void showFailure(ctx, `Building the ${name} runtime`, e, () => buildRuntime(ctx, chosen));
        return undefined;
    }
}

/** At start: where the package carries no runtime for this system (macOS) and none is built, offers to build one. */
export async function offerRuntimeBuild(ctx: Ctx): Promise<void> {
    const { missing } = await ctx.client.sendRequest(lsp.runtimeTargets);
    if (!missing) return;
    const how = process.platform === "darwin" ? "Metal, for Apple GPUs: needs Xcode's command line tools and CMake" : "needs CMake and a C/C++ compiler";
    const pick = await vscode.window.showInformationMessage(
        `Dream-Coder runs models with llama.cpp compiled on this machine, which its package for ${process.platform} does not carry. Build it now? (a few minutes; ${how})`,
        "Build Runtime…",
        "Later"
    );
    if (pick === "Build Runtime…") await buildRuntime(ctx);
}

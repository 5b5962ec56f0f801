// The extension's in-host suite (test/e2e/suite/) and the test profile it expects: the generated dream model,
// one thread, no debounce, short holes, and a local Hugging Face Hub (test/tools/hub-stand-in.ts) that serves a
// Dream-Coder-shaped checkpoint as Dream-org/Dream-Coder-v0-Instruct-7B, with an empty models directory, for the
// Download Model… test, and a model that grows holes (DREAM_CODER_TEST_GROWING_MODEL). The code-server runners
// (checkout and .vsix) and the electron runner all start it from here.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { catalogEntry } from "../../common/catalog";
import { dreamCoderCheckpoint } from "../tools/checkpoints";
import { startHubStandIn } from "../tools/hub-stand-in";
import { testModel } from "../tools/test-models";
import { growingTestModel } from "../tools/variable-model";
import { runInHostSuite, type InHostSuiteResult } from "./harness/in-host";
import { repoRoot } from "./harness/tools";

export const SUITE_INDEX = join(repoRoot, "out", "test", "e2e", "suite", "index.js");

export function suiteSettings(modelsDirectory: string): Record<string, unknown> {
    return {
        "dreamCoder.model": testModel({ arch: "dream" }),
        "dreamCoder.modelsDirectory": modelsDirectory,
        "dreamCoder.threads": 1,
        "dreamCoder.inlineCompletion.debounceMs": 0,
        "dreamCoder.inlineCompletion.lineTokens": 8,
        "dreamCoder.sketch.tokens": 48
    };
}

/** Runs `body` with the suite's local Hub serving the recommended model's checkpoint, and a fresh models directory. */
export async function withSuiteHub<T>(body: (hub: { env: Record<string, string>; settings: Record<string, unknown> }) => Promise<T>): Promise<T> {
    const scratch = mkdtempSync(join(tmpdir(), "dream-coder-suite-hub-"));
    const repo = catalogEntry("dream-coder-7b-instruct")!.checkpoint!.repo;
    const checkpoint = dreamCoderCheckpoint(scratch);
    const hub = await startHubStandIn({ repos: { [repo]: { dir: checkpoint } } });
    try {
        const models = mkdtempSync(join(scratch, "models-"));
        // The checkpoint's folder, for the Convert a Checkpoint Folder… test.
        const env = {
            HF_ENDPOINT: hub.endpoint,
            HF_TOKEN: "",
            HF_TOKEN_PATH: join(scratch, "no-token"),
            DREAM_CODER_TEST_CHECKPOINT: checkpoint,
            // A model with expand and delete tokens, for the variable-length holes test.
            DREAM_CODER_TEST_GROWING_MODEL: growingTestModel().path
        };
        return await body({ env, settings: suiteSettings(models) });
    } finally {
        await hub.close();
        rmSync(scratch, { recursive: true, force: true });
    }
}

/** Runs the suite in code-server against this checkout, or against `vsix` installed into it, with `settings` over the
 *  test profile's and `env` added (DREAM_CODER_TEST_GPU: the GPU the status must name, e.g. "Vulkan0"). */
export function runExtensionSuite(options: {
    name: string;
    vsix?: string;
    settings?: Record<string, unknown>;
    env?: Record<string, string>;
}): Promise<InHostSuiteResult> {
    return withSuiteHub(({ env, settings }) =>
        runInHostSuite({
            extensionPath: repoRoot,
            vsix: options.vsix,
            testsPath: SUITE_INDEX,
            name: options.name,
            timeoutMs: 480_000,
            echo: options.vsix === undefined,
            settings: { ...settings, ...options.settings },
            env: { ...env, ...options.env }
        })
    );
}

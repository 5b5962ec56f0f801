// The extension's in-host suite (test/e2e/suite/) and the test profile it expects: the generated dream model,
// one thread, no debounce, short holes. The code-server runners (checkout and .vsix) and the electron runner
// all start it from here.
import { join } from "node:path";
import { runInHostSuite, type InHostSuiteResult } from "./harness/in-host";
import { repoRoot } from "./harness/tools";
import { testModel } from "../tools/test-models";

export const SUITE_INDEX = join(repoRoot, "out", "test", "e2e", "suite", "index.js");

export function suiteSettings(): Record<string, unknown> {
    return {
        "dreamCoder.model": testModel({ arch: "dream" }),
        "dreamCoder.threads": 1,
        "dreamCoder.inlineCompletion.debounceMs": 0,
        "dreamCoder.inlineCompletion.lineTokens": 8,
        "dreamCoder.sketch.tokens": 48
    };
}

/** Runs the suite in code-server against this checkout, or against `vsix` installed into it. */
export function runExtensionSuite(options: { name: string; vsix?: string }): Promise<InHostSuiteResult> {
    return runInHostSuite({
        extensionPath: repoRoot,
        vsix: options.vsix,
        testsPath: SUITE_INDEX,
        name: options.name,
        timeoutMs: 480_000,
        echo: options.vsix === undefined,
        settings: suiteSettings()
    });
}

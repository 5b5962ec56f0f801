// Runs the in-host suite (test/e2e/suite/) in a real VS Code: code-server on Node 24, headless Debian
// Chromium, the extension from this checkout's development path (dist/ bundles, the built addon), the
// generated dream model in the test profile's settings.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { runInHostSuite } from "./harness/in-host";
import { repoRoot } from "./harness/tools";
import { testModel } from "../tools/test-models";

test("the extension's in-host suite passes in code-server", { timeout: 600_000 }, async () => {
    const result = await runInHostSuite({
        extensionPath: repoRoot,
        testsPath: join(repoRoot, "out", "test", "e2e", "suite", "index.js"),
        name: "extension",
        timeoutMs: 480_000,
        settings: {
            "dreamCoder.model": testModel({ arch: "dream" }),
            "dreamCoder.threads": 1,
            "dreamCoder.inlineCompletion.debounceMs": 0,
            "dreamCoder.inlineCompletion.lineTokens": 8,
            "dreamCoder.sketch.tokens": 48
        }
    });
    assert.equal(result.timedOut, false, `timed out; artifacts in ${result.artifactsDir}`);
    assert.equal(result.exitCode, 0, `in-host tests failed; artifacts in ${result.artifactsDir}\n${result.log.slice(-40).join("\n")}`);
    assert.ok(result.log.some((l) => /passing/.test(l)), "mocha reported its tests");
    assert.ok(result.log.some((l) => l.includes(`extension path: ${repoRoot}`)), "the extension ran from this checkout");
});

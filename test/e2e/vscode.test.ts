// Runs the in-host suite (test/e2e/suite/) in a real VS Code: code-server on Node 24, headless Debian
// Chromium, the extension from this checkout's development path (dist/ bundles, the built addon), the
// generated dream model in the test profile's settings.
import assert from "node:assert/strict";
import { test } from "node:test";
import { runExtensionSuite } from "./extension-suite";
import { repoRoot } from "./harness/tools";

test("the extension's in-host suite passes in code-server", { timeout: 600_000 }, async () => {
    const result = await runExtensionSuite({ name: "extension" });
    assert.equal(result.timedOut, false, `timed out; artifacts in ${result.artifactsDir}`);
    assert.equal(result.exitCode, 0, `in-host tests failed; artifacts in ${result.artifactsDir}\n${result.log.slice(-40).join("\n")}`);
    assert.ok(
        result.log.some((l) => /passing/.test(l)),
        "mocha reported its tests"
    );
    assert.ok(
        result.log.some((l) => l.includes(`extension path: ${repoRoot}`)),
        "the extension ran from this checkout"
    );
});

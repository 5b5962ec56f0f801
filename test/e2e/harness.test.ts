// Self-test of the E2E harness (test/e2e/harness/) with its fixture extension, in code-server + chromium:
// a passing in-host suite exits 0; a failing one (fixture installed from a .vsix) exits 1 and keeps artifacts;
// a run past its time limit is stopped and cleaned up; the UI helpers drive ghost text, Tab, palette, save.
// Needs the tools from scripts/e2e-tools.sh; DREAM_CODER_SKIP_E2E=1 reports these tests as skipped;
// DREAM_CODER_E2E_KEEP_ARTIFACTS=1 keeps the screenshots and logs in test-results/e2e/.
import * as assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { processesMentioning, repoRoot, runInHostSuite, withWorkbench, type InHostSuiteResult } from "./harness";

const skip = process.env.DREAM_CODER_SKIP_E2E === "1" ? "DREAM_CODER_SKIP_E2E=1" : false;
const fixtureExtension = path.join(repoRoot, "test", "e2e", "harness", "fixture-extension");
const fixtureSuite = path.join(__dirname, "harness", "fixture-suite");

function assertCleanedUp(runDir: string | undefined): void {
    assert.ok(runDir, "code-server was started");
    assert.deepEqual(processesMentioning(runDir), [], `no code-server or chromium process left for ${runDir}`);
    assert.equal(fs.existsSync(runDir), false, `${runDir} removed`);
}

function hostLog(result: InHostSuiteResult): string {
    return result.log.join("\n");
}

describe("E2E harness (code-server + chromium)", { skip, timeout: 300_000 }, () => {
    const remove: string[] = [];
    after(() => {
        if (process.env.DREAM_CODER_E2E_KEEP_ARTIFACTS === "1") return;
        for (const dir of remove) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("runs a passing in-host mocha suite against the development extension: exit code 0", async () => {
        const result = await runInHostSuite({
            extensionPath: fixtureExtension,
            testsPath: path.join(fixtureSuite, "index.js"),
            name: "harness-pass",
            timeoutMs: 90_000
        });
        assert.equal(result.timedOut, false, "suite finished in time");
        assert.equal(result.exitCode, 0, `exit code 0; log:\n${hostLog(result)}`);
        assert.match(hostLog(result), /in-host mocha: 3 passing, 0 failing/);
        assert.equal(result.artifactsDir, undefined, "no failure artifacts for a pass");
        assertCleanedUp(result.runDir);
    });

    it("reports a failing in-host test as exit code 1 (extension from a .vsix) and keeps a screenshot and logs", async () => {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dream-coder-e2e-vsix-"));
        remove.push(tmp);
        const vsix = path.join(tmp, "fixture.vsix");
        execFileSync(
            process.execPath,
            [
                path.join(repoRoot, "node_modules", "@vscode", "vsce", "vsce"),
                "package",
                "--no-dependencies",
                "--skip-license",
                "--allow-missing-repository",
                "--out",
                vsix
            ],
            { cwd: fixtureExtension, stdio: "pipe", timeout: 60_000 }
        );
        const result = await runInHostSuite({
            extensionPath: fixtureExtension,
            vsix,
            testsPath: path.join(fixtureSuite, "failing.js"),
            name: "harness-expected-failure",
            timeoutMs: 90_000,
            echo: false
        });
        assert.equal(result.timedOut, false, "suite finished in time");
        assert.equal(result.exitCode, 1, `exit code 1; log:\n${hostLog(result)}`);
        assert.match(hostLog(result), /in-host mocha: 1 passing, 1 failing/);
        assert.match(hostLog(result), /FAIL E2E harness failure detection fails on purpose/);
        assert.match(hostLog(result), /fixture extension at \S*\/extensions\/dream-coder-tests\.dream-coder-e2e-fixture-0\.0\.1/, "loaded from the .vsix");
        assert.ok(result.artifactsDir, "artifacts were kept");
        remove.push(result.artifactsDir);
        for (const file of ["screenshot.png", "code-server.log", "automation.log", "browser-console.log"]) {
            assert.ok(fs.existsSync(path.join(result.artifactsDir, file)), file);
        }
        const logs = path.join(result.artifactsDir, "logs");
        assert.ok(fs.existsSync(logs) && fs.readdirSync(logs, { recursive: true }).some((f) => /exthost1/.test(String(f))), "exthost1 logs");
        assertCleanedUp(result.runDir);
    });

    it("stops a run that exceeds its time limit and leaves nothing running", async () => {
        const result = await runInHostSuite({
            extensionPath: fixtureExtension,
            testsPath: path.join(fixtureSuite, "index.js"),
            name: "harness-timeout",
            timeoutMs: 2_500,
            echo: false
        });
        assert.equal(result.timedOut, true);
        assert.equal(result.exitCode, null);
        assert.ok(result.artifactsDir && fs.existsSync(path.join(result.artifactsDir, "error.txt")), "error.txt kept");
        remove.push(result.artifactsDir);
        assertCleanedUp(result.runDir);
    });

    it("drives the browser UI: quick open, type, ghost text, Tab, palette command, save, webview, screenshot", async () => {
        let runDir: string | undefined;
        const shot = await withWorkbench(
            {
                name: "harness-ui",
                extensionPath: fixtureExtension,
                files: { "notes.fixture.txt": "first line\n" },
                timeoutMs: 240_000
            },
            async (wb) => {
                runDir = wb.server.runDir;
                await wb.openFile("notes.fixture.txt");
                await wb.cursorToEnd();
                await wb.type("say ghost");
                const ghost = await wb.waitForGhostText();
                assert.equal(ghost.trim(), "text accepted");
                await wb.acceptGhostText();
                await wb.runCommand("Dream-Coder Fixture: Insert Stamp");
                await wb.save();
                const onDisk = fs.readFileSync(wb.workspaceFile("notes.fixture.txt"), "utf8");
                assert.equal(onDisk, "first line\nsay ghost text accepted // stamped");
                assert.equal(await wb.editorText(), "first line\nsay ghost text accepted // stamped");
                await wb.runCommand("Dream-Coder Fixture: Open Webview");
                const view = await wb.webview("#fixture-webview");
                assert.match((await view.locator("#fixture-webview").textContent()) ?? "", /^Fixture webview \d+\.\d+/);
                return wb.screenshot("harness-ui");
            }
        );
        remove.push(path.dirname(shot));
        assert.ok(fs.statSync(shot).size > 1000, "screenshot written");
        assertCleanedUp(runDir);
    });
});

// Self-test of the E2E harness (test/e2e/harness/) with its fixture extension, in code-server + chromium:
// a passing in-host suite exits 0, a failing one exits 1 with artifacts, and the UI helpers drive ghost text.
// Needs the tools from scripts/e2e-tools.sh; DREAM_CODER_SKIP_E2E=1 reports these tests as skipped.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, describe, it } from 'node:test';
import { repoRoot, runInHostSuite, withWorkbench } from './harness';

const skip = process.env.DREAM_CODER_SKIP_E2E === '1' ? 'DREAM_CODER_SKIP_E2E=1' : false;
const fixtureExtension = path.join(repoRoot, 'test', 'e2e', 'harness', 'fixture-extension');
const fixtureSuite = path.join(__dirname, 'harness', 'fixture-suite');

describe('E2E harness (code-server + chromium)', { skip, timeout: 240_000 }, () => {
    const stale: string[] = [];
    after(() => {
        for (const dir of stale) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('runs a passing in-host mocha suite against the development extension: exit code 0', async () => {
        const result = await runInHostSuite({
            extensionPath: fixtureExtension,
            testsPath: path.join(fixtureSuite, 'index.js'),
            name: 'harness-pass',
            timeoutMs: 90_000,
        });
        assert.equal(result.timedOut, false, 'suite finished in time');
        assert.equal(result.exitCode, 0, `exit code 0; log:\n${result.log.join('\n')}`);
        assert.equal(result.artifactsDir, undefined, 'no failure artifacts for a pass');
    });

    it('reports a failing in-host test as exit code 1 and keeps a screenshot and the logs', async () => {
        const result = await runInHostSuite({
            extensionPath: fixtureExtension,
            testsPath: path.join(fixtureSuite, 'failing.js'),
            name: 'harness-expected-failure',
            timeoutMs: 90_000,
            echo: false,
        });
        assert.equal(result.timedOut, false, 'suite finished in time');
        assert.equal(result.exitCode, 1, `exit code 1; log:\n${result.log.join('\n')}`);
        assert.ok(result.artifactsDir, 'artifacts were kept');
        stale.push(result.artifactsDir);
        assert.ok(fs.existsSync(path.join(result.artifactsDir, 'screenshot.png')), 'screenshot.png');
        assert.ok(fs.existsSync(path.join(result.artifactsDir, 'code-server.log')), 'code-server.log');
    });

    it('drives the browser UI: quick open, type, ghost text, Tab, palette command, save, screenshot', async () => {
        const shot = await withWorkbench(
            {
                name: 'harness-ui',
                extensionPath: fixtureExtension,
                files: { 'notes.fixture.txt': 'first line\n' },
                timeoutMs: 120_000,
            },
            async (wb) => {
                await wb.openFile('notes.fixture.txt');
                await wb.cursorToEnd();
                await wb.type('say ghost');
                const ghost = await wb.waitForGhostText({ timeoutMs: 30_000 });
                assert.equal(ghost.trim(), 'text accepted');
                await wb.acceptGhostText();
                await wb.runCommand('Dream-Coder Fixture: Insert Stamp');
                await wb.save();
                const onDisk = fs.readFileSync(wb.workspaceFile('notes.fixture.txt'), 'utf8');
                assert.equal(onDisk, 'first line\nsay ghost text accepted // stamped');
                return wb.screenshot('harness-ui');
            },
        );
        assert.ok(fs.statSync(shot).size > 1000, 'screenshot written');
        stale.push(path.dirname(shot));
    });
});

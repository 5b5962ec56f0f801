/// <reference types="mocha" />
// Deliberately failing in-host spec (see failing.ts): one pass, one failure.
import * as assert from 'node:assert/strict';
import * as vscode from 'vscode';

describe('E2E harness failure detection', () => {
    it('passes a trivial check', () => {
        assert.ok(vscode.version.length > 0);
    });

    it('fails on purpose', async () => {
        const result = await vscode.commands.executeCommand<string>('dreamCoderFixture.hello', 'e2e');
        assert.equal(result, 'this is not what the command returns');
    });
});

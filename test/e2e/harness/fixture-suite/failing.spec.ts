/// <reference types="mocha" />
// Deliberately failing in-host spec (see failing.ts): one pass, one failure.
import * as assert from "node:assert/strict";
import * as vscode from "vscode";

describe("E2E harness failure detection", () => {
    it("finds the fixture extension", () => {
        const ext = vscode.extensions.getExtension("dream-coder-tests.dream-coder-e2e-fixture");
        assert.ok(ext, "fixture extension is loaded");
        console.log(`fixture extension at ${ext.extensionPath}`);
    });

    it("fails on purpose", async () => {
        const result = await vscode.commands.executeCommand<string>("dreamCoderFixture.hello", "e2e");
        assert.equal(result, "this is not what the command returns");
    });
});

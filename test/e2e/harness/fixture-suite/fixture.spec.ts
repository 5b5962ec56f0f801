/// <reference types="mocha" />
// Runs inside code-server's extension host against the fixture extension, through the real `vscode` API.
import * as assert from "node:assert/strict";
import * as vscode from "vscode";

const EXTENSION_ID = "dream-coder-tests.dream-coder-e2e-fixture";

describe("E2E harness fixture (in the real extension host)", () => {
    it("sees the development extension and activates it", async () => {
        const ext = vscode.extensions.getExtension(EXTENSION_ID);
        assert.ok(ext, `extension ${EXTENSION_ID} is loaded`);
        const api = (await ext.activate()) as { fixture?: boolean };
        assert.equal(api.fixture, true);
        assert.equal(ext.isActive, true);
    });

    it("runs the fixture command through vscode.commands", async () => {
        const commands = await vscode.commands.getCommands(true);
        assert.ok(commands.includes("dreamCoderFixture.hello"), "command is registered");
        const result = await vscode.commands.executeCommand<string>("dreamCoderFixture.hello", "e2e");
        assert.equal(result, `hello e2e from ${vscode.version}`);
    });

    it("edits a document in the opened workspace folder", async () => {
        const folder = vscode.workspace.workspaceFolders?.[0];
        assert.ok(folder, "a workspace folder is open");
        const uri = vscode.Uri.joinPath(folder.uri, "stamp.fixture.txt");
        await vscode.workspace.fs.writeFile(uri, new TextEncoder().encode("line one"));
        const doc = await vscode.workspace.openTextDocument(uri);
        const editor = await vscode.window.showTextDocument(doc);
        editor.selection = new vscode.Selection(0, 8, 0, 8);
        assert.equal(await vscode.commands.executeCommand("dreamCoderFixture.insertStamp"), true);
        assert.equal(doc.getText(), "line one // stamped");
        await doc.save();
        const onDisk = new TextDecoder().decode(await vscode.workspace.fs.readFile(uri));
        assert.equal(onDisk, "line one // stamped");
    });
});

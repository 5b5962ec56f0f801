// Fixture for the E2E harness self-test: a command with a result, a command that edits,
// a webview, and an inline completion provider so the browser smoke test can see ghost text.
'use strict';
const vscode = require('vscode');

function activate(context) {
    context.subscriptions.push(
        vscode.commands.registerCommand('dreamCoderFixture.hello', (name) => `hello ${name ?? 'world'} from ${vscode.version}`),
        vscode.commands.registerCommand('dreamCoderFixture.insertStamp', async () => {
            const editor = vscode.window.activeTextEditor;
            if (!editor) return false;
            return editor.edit((b) => b.insert(editor.selection.active, ' // stamped'));
        }),
        vscode.commands.registerCommand('dreamCoderFixture.openWebview', () => {
            const panel = vscode.window.createWebviewPanel('dreamCoderFixture', 'Fixture Webview', vscode.ViewColumn.Beside, {});
            panel.webview.html = `<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'none';"></head>
<body><h1 id="fixture-webview">Fixture webview ${vscode.version}</h1></body></html>`;
            return true;
        }),
        vscode.languages.registerInlineCompletionItemProvider({ pattern: '**/*.fixture.txt' }, {
            provideInlineCompletionItems(document, position) {
                const line = document.lineAt(position.line).text.slice(0, position.character);
                if (!line.endsWith('ghost')) return [];
                return [new vscode.InlineCompletionItem(' text accepted', new vscode.Range(position, position))];
            },
        }),
    );
    return { fixture: true };
}

function deactivate() {}

module.exports = { activate, deactivate };

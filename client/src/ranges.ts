// Ranges between the protocol's plain { line, character } objects and VS Code's classes, both ways.
import * as vscode from "vscode";
import type { Range } from "vscode-languageclient/node";

export function toRange(r: Range): vscode.Range {
    return new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
}

export function toLspRange(r: vscode.Range): Range {
    return { start: { line: r.start.line, character: r.start.character }, end: { line: r.end.line, character: r.end.character } };
}

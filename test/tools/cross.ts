// The other systems' Node.js and emulators that scripts/cross-tools.sh installs (npm test runs it first).
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { InlineCompletionRequest } from "vscode-languageserver-protocol/node";
import { firstInsertText, type LanguageServerProcess } from "../../server/src/cli/lspClient";
import * as lsp from "../../common/protocol";

export interface CrossTools {
    /** The official Windows x64 node.exe of this Node's version, run by `wine` with WINEPREFIX=winePrefix. */
    nodeWin: string;
    winePrefix: string;
    /** The official Linux arm64 node of this Node's version, run by qemu-aarch64 (qemuArm64 below). */
    nodeArm64: string;
}

export function crossTools(): CrossTools {
    const file = join(process.env.DREAM_CODER_CROSS_CACHE || join(homedir(), ".cache", "dream-coder-cross"), "env.json");
    if (!existsSync(file)) throw new Error(`${file} is missing: run scripts/cross-tools.sh (npm test does)`);
    return JSON.parse(readFileSync(file, "utf8")) as CrossTools;
}

/** The command that runs arm64 Linux's Node on an emulated CPU (`cpu`: a qemu -cpu name), with Debian's arm64
 *  libraries (g++-aarch64-linux-gnu's) as the system's. */
export function qemuArm64(cpu: string): { execPath: string; execArgv: string[] } {
    return { execPath: "qemu-aarch64", execArgv: ["-L", "/usr/aarch64-linux-gnu", "-cpu", cpu, crossTools().nodeArm64] };
}

/** What the emulated systems' language servers are asked: an inline completion and a fill, in a document of two
 *  functions with `eol` line breaks (a hole in the first, the cursor after the second's `return `). */
export async function completeAndFill(server: LanguageServerProcess, uri: string, eol: string) {
    const text = ["def add(a, b):", "    return ???", "", "def twice(x):", "    return ", ""].join(eol);
    await server.open(uri, text);
    const completion = await server.connection.sendRequest(InlineCompletionRequest.type, {
        textDocument: { uri },
        position: { line: 4, character: "    return ".length },
        context: { triggerKind: 2 }
    });
    const fill = await server.connection.sendRequest(lsp.fillHoles, { textDocument: { uri, version: 1 } });
    return { text, suggestion: firstInsertText(completion), fill };
}

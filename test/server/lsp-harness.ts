// The language server as a real child process on its real transport (Node IPC, as VS Code starts it),
// driven by vscode-languageserver-protocol's client side. Settings are answered through workspace/configuration.
import { fork, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import {
    ConfigurationRequest,
    createProtocolConnection,
    DidChangeConfigurationNotification,
    DidOpenTextDocumentNotification,
    InitializeRequest,
    IPCMessageReader,
    IPCMessageWriter,
    WorkDoneProgressCreateRequest,
    type InitializeResult,
    type ProtocolConnection
} from "vscode-languageserver-protocol/node";
import * as lsp from "../../server/src/protocol";
import { repoRoot } from "../tools/test-models";

export const SERVER = join(repoRoot, "out", "server", "src", "server.js");

export interface ServerUnderTest {
    connection: ProtocolConnection;
    child: ChildProcess;
    statuses: lsp.ServerStatus[];
    initialized: InitializeResult;
    /** The settings the next workspace/configuration request answers with. */
    settings: Record<string, unknown>;
    /** Replaces the settings and tells the server they changed. */
    configure(settings: Record<string, unknown>): Promise<void>;
    open(uri: string, text: string, languageId?: string): Promise<void>;
    stop(): Promise<void>;
}

export async function startServer(settings: Record<string, unknown>): Promise<ServerUnderTest> {
    const child = fork(SERVER, ["--node-ipc"], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    const connection = createProtocolConnection(new IPCMessageReader(child), new IPCMessageWriter(child));
    const sut: ServerUnderTest = {
        connection,
        child,
        statuses: [],
        initialized: { capabilities: {} },
        settings,
        async configure(next) {
            sut.settings = next;
            const pulled = new Promise<void>((r) => (configurationPulled = r));
            await connection.sendNotification(DidChangeConfigurationNotification.type, { settings: null });
            await pulled;
            // The server applies the settings when our answer reaches it, before it reads the next message.
            await connection.sendRequest(lsp.listModels);
        },
        async open(uri, text, languageId = "python") {
            await connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId, version: 1, text } });
        },
        async stop() {
            const exited = new Promise((r) => child.once("exit", r));
            try {
                await connection.sendRequest("shutdown");
                await connection.sendNotification("exit");
            } catch {
                child.kill();
            }
            await exited;
            connection.dispose();
        }
    };
    let configurationPulled = () => {};
    connection.onRequest(ConfigurationRequest.type, (params) => {
        setImmediate(configurationPulled);
        return params.items.map(() => sut.settings);
    });
    connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    connection.onRequest("client/registerCapability", () => null);
    connection.onNotification(lsp.status, (s) => {
        sut.statuses.push(s);
    });
    connection.onNotification("window/logMessage", () => undefined);
    connection.listen();
    sut.initialized = await connection.sendRequest(InitializeRequest.type, {
        processId: process.pid,
        rootUri: null,
        capabilities: { workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } }, window: { workDoneProgress: true } },
        initializationOptions: { settings }
    });
    await connection.sendNotification("initialized", {});
    return sut;
}

/** Applies LSP text edits (non-overlapping) to a text. */
export function applyTextEdits(text: string, edits: { range: { start: { line: number; character: number }; end: { line: number; character: number } }; newText: string }[]): string {
    const lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
    const offset = (p: { line: number; character: number }) => lineStarts[p.line] + p.character;
    const sorted = [...edits].sort((a, b) => offset(a.range.start) - offset(b.range.start));
    let out = "";
    let at = 0;
    for (const e of sorted) {
        const s = offset(e.range.start);
        if (s < at) throw new Error("overlapping edits");
        out += text.slice(at, s) + e.newText;
        at = offset(e.range.end);
    }
    return out + text.slice(at);
}

// A client for the language server as a real child process on its real transport (Node IPC, as VS Code starts
// it; or a socket for a Node that cannot share an IPC channel): the CLI's latency benchmark and the server tests drive
// the server through it. Settings are answered through workspace/configuration, as the editor does.
import { fork, spawn, type ChildProcess, type ForkOptions } from "node:child_process";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import {
    ConfigurationRequest,
    createProtocolConnection,
    DidChangeConfigurationNotification,
    DidOpenTextDocumentNotification,
    InitializeRequest,
    type InlineCompletionItem,
    type InlineCompletionList,
    LogMessageNotification,
    IPCMessageReader,
    IPCMessageWriter,
    SocketMessageReader,
    SocketMessageWriter,
    WorkDoneProgressCreateRequest,
    type InitializeResult,
    type ProtocolConnection
} from "vscode-languageserver-protocol/node";
import * as lsp from "../../../common/protocol";

/** The text of an inline-completion answer's first item (undefined: no item). */
export function firstInsertText(answer: InlineCompletionList | InlineCompletionItem[] | null): string | undefined {
    const item = (Array.isArray(answer) ? answer : (answer?.items ?? []))[0];
    return typeof item?.insertText === "object" ? item.insertText.value : item?.insertText;
}

/** The server's entry point next to this file's folder. */
export const SERVER_MAIN = join(__dirname, "..", "server.js");

export interface LanguageServerProcess {
    connection: ProtocolConnection;
    child: ChildProcess;
    initialized: InitializeResult;
    /** Every dreamCoder/status notification so far. */
    statuses: lsp.ServerStatus[];
    /** Every line the server logged (window/logMessage) so far. */
    logs: string[];
    /** The settings the next workspace/configuration request answers with. */
    settings: Record<string, unknown>;
    /** Replaces the settings, tells the server, and returns once it has read them. */
    configure(settings: Record<string, unknown>): Promise<void>;
    open(uri: string, text: string, languageId?: string): Promise<void>;
    stop(): Promise<void>;
}

/** How the server's process starts, where not as this Node with this environment: e.g. another system's Node under
 *  an emulator (`execPath` qemu-aarch64, `execArgv` its options and that Node). */
export interface NodeCommand extends Pick<ForkOptions, "execPath" | "execArgv" | "env"> {
    /** Over a TCP connection (the server's --socket) instead of Node IPC, with the server's output written to these
     *  file descriptors: for Windows' node.exe under Wine, which can share neither an IPC channel nor a pipe with this
     *  process. Its process ids are Windows', so the server is not told this one (it would exit, taking it for a
     *  client that has gone). */
    socket?: { stdout: number; stderr: number };
}

/** The server as a child process and a connection to it, not yet listening nor initialized. */
export function spawnLanguageServer(main = SERVER_MAIN, node?: NodeCommand): { child: ChildProcess; connection: ProtocolConnection } {
    const child = fork(main, ["--node-ipc"], { stdio: ["ignore", "ignore", "inherit", "ipc"], ...node });
    return { child, connection: createProtocolConnection(new IPCMessageReader(child), new IPCMessageWriter(child)) };
}

/** The server started with --socket=PORT: it connects to the port this process listens on. */
async function spawnOverSocket(main: string, node: NodeCommand, output: { stdout: number; stderr: number }) {
    const listener = createServer();
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
    const port = (listener.address() as AddressInfo).port;
    const child = spawn(node.execPath ?? process.execPath, [...(node.execArgv ?? []), main, `--socket=${port}`], {
        stdio: ["ignore", output.stdout, output.stderr],
        env: node.env
    });
    try {
        const socket = await new Promise<Socket>((resolve, reject) => {
            listener.once("connection", resolve);
            child.once("exit", (code, signal) => reject(new Error(`the language server exited (${code ?? signal}) before it connected`)));
        });
        return { child, connection: createProtocolConnection(new SocketMessageReader(socket), new SocketMessageWriter(socket)) };
    } finally {
        listener.close();
    }
}

export async function startLanguageServer(settings: Record<string, unknown>, main = SERVER_MAIN, node?: NodeCommand): Promise<LanguageServerProcess> {
    const { child, connection } = node?.socket ? await spawnOverSocket(main, node, node.socket) : spawnLanguageServer(main, node);
    let configurationPulled = () => {};
    const server: LanguageServerProcess = {
        connection,
        child,
        initialized: { capabilities: {} },
        statuses: [],
        logs: [],
        settings,
        async configure(next) {
            server.settings = next;
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
    connection.onRequest(ConfigurationRequest.type, (params) => {
        setImmediate(configurationPulled);
        return params.items.map(() => server.settings);
    });
    connection.onRequest(WorkDoneProgressCreateRequest.type, () => undefined);
    connection.onRequest("client/registerCapability", () => null);
    connection.onNotification(lsp.status, (s) => {
        server.statuses.push(s);
    });
    connection.onNotification(LogMessageNotification.type, (m) => {
        server.logs.push(m.message);
    });
    connection.listen();
    server.initialized = await connection.sendRequest(InitializeRequest.type, {
        processId: node?.socket ? null : process.pid,
        rootUri: null,
        capabilities: { workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: true } }, window: { workDoneProgress: true } },
        initializationOptions: { settings }
    });
    await connection.sendNotification("initialized", {});
    return server;
}

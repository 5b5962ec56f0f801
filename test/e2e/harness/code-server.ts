// code-server on loopback with throwaway state, in its own process group.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findTools, type E2ETools } from "./tools";
import { freePort, sleep } from "./util";

/** Settings that keep the test profile quiet and let Tab accept ghost text. */
export const baseTestSettings: Record<string, unknown> = {
    "editor.quickSuggestions": { other: "off", comments: "off", strings: "off" },
    "editor.suggestOnTriggerCharacters": false,
    "editor.acceptSuggestionOnEnter": "off",
    "editor.inlineSuggest.enabled": true,
    "editor.parameterHints.enabled": false,
    "editor.hover.enabled": false,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "extensions.autoCheckUpdates": false,
    "extensions.autoUpdate": false,
    "extensions.ignoreRecommendations": true,
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "security.workspace.trust.enabled": false,
    "window.restoreWindows": "none",
    "files.autoSave": "off",
    "files.hotExit": "off",
    "git.enabled": false,
    "chat.disableAIFeatures": true,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "chat.commandCenter.enabled": false
};

export interface CodeServerOptions {
    /** Folder to open; created if missing. Default: RUN/workspace. */
    workspace?: string;
    /** Extra user settings, merged over baseTestSettings. */
    settings?: Record<string, unknown>;
    /** Adds `--vscode-option enable-smoke-test-driver` (needed for payload/in-host runs). */
    smokeTestDriver?: boolean;
    /** .vsix files installed with --install-extension into the throwaway extensions dir first. */
    installVsix?: string[];
    /** Keep workspace trust on: no --disable-workspace-trust, and security.workspace.trust.enabled true. Default false. */
    workspaceTrust?: boolean;
    /** Extra code-server command-line arguments (before the folder). */
    extraArgs?: string[];
    /** Milliseconds to wait for /healthz. Default 30 s. */
    startTimeoutMs?: number;
    /** Keep RUN after stop() (for debugging). Default: DREAM_CODER_E2E_KEEP=1. */
    keepRunDir?: boolean;
    tools?: E2ETools;
}

export interface CodeServer {
    port: number;
    /** http://127.0.0.1:PORT */
    url: string;
    /** vscode-remote authority, 127.0.0.1:PORT */
    authority: string;
    runDir: string;
    userDataDir: string;
    extensionsDir: string;
    workspace: string;
    /** code-server's stdout+stderr. */
    logFile: string;
    pid: number;
    /** vscode-remote URI for an absolute path on this machine. */
    remoteUri(absPath: string): string;
    /** Stops the process group (TERM, then KILL); keeps RUN (to collect logs). Idempotent. */
    kill(): Promise<void>;
    /** kill(), then removes RUN unless kept. Idempotent. */
    stop(): Promise<void>;
}

const liveGroups = new Set<number>();
let exitHookInstalled = false;
function installExitHook(): void {
    if (exitHookInstalled) return;
    exitHookInstalled = true;
    process.on("exit", () => {
        for (const pgid of liveGroups) signalGroup(pgid, "SIGKILL");
    });
}

/** Sends `signal` to a process group; one that is already gone is fine. */
function signalGroup(pgid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(-pgid, signal);
    } catch {
        // already gone
    }
}

function groupAlive(pgid: number): boolean {
    try {
        process.kill(-pgid, 0);
        return true;
    } catch {
        return false;
    }
}

export function writeUserSettings(userDataDir: string, settings: Record<string, unknown>): string {
    const file = path.join(userDataDir, "User", "settings.json");
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ ...baseTestSettings, ...settings }, null, 2));
    return file;
}

function makeEnv(runDir: string, tools: E2ETools): NodeJS.ProcessEnv {
    const dirs = {
        XDG_DATA_HOME: path.join(runDir, "xdg-data"),
        XDG_CONFIG_HOME: path.join(runDir, "xdg-config"),
        XDG_CACHE_HOME: path.join(runDir, "xdg-cache"),
        XDG_RUNTIME_DIR: path.join(runDir, "runtime"),
        TMPDIR: path.join(runDir, "tmp")
    };
    for (const dir of Object.values(dirs)) fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const env: NodeJS.ProcessEnv = { ...process.env, ...dirs };
    // Node 24 first on PATH: the extension host is spawned with code-server's node.
    env.PATH = `${path.dirname(tools.node)}${path.delimiter}${process.env.PATH ?? ""}`;
    // Do not leak the runner's node --test / inspector settings into code-server.
    delete env.NODE_OPTIONS;
    delete env.NODE_TEST_CONTEXT;
    delete env.VSCODE_IPC_HOOK_CLI;
    return env;
}

async function waitHealthy(url: string, child: ChildProcess, logFile: string, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastError = "";
    while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(`code-server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${readTail(logFile)}`);
        }
        try {
            const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
            if (res.ok) return;
            lastError = `HTTP ${res.status}`;
        } catch (err) {
            lastError = (err as Error).message;
        }
        await sleep(150);
    }
    throw new Error(`code-server not healthy after ${timeoutMs} ms (${lastError}):\n${readTail(logFile)}`);
}

function readTail(file: string, chars = 4000): string {
    try {
        const text = fs.readFileSync(file, "utf8");
        return text.slice(-chars);
    } catch {
        return "(no log)";
    }
}

/** Installs a .vsix into extensionsDir with code-server's --install-extension (offline, < 2 s). */
export function installVsix(tools: E2ETools, env: NodeJS.ProcessEnv, dirs: { userDataDir: string; extensionsDir: string }, vsix: string): void {
    const res = spawnSync(
        tools.node,
        [tools.codeServer, "--user-data-dir", dirs.userDataDir, "--extensions-dir", dirs.extensionsDir, "--install-extension", path.resolve(vsix), "--force"],
        { env, encoding: "utf8", timeout: 60_000 }
    );
    const out = `${res.stdout ?? ""}${res.stderr ?? ""}`;
    if (res.status !== 0 || (/failed|error/i.test(out) && !/successfully installed/i.test(out))) {
        throw new Error(`--install-extension ${vsix} failed (${res.status ?? res.signal}):\n${out}`);
    }
}

export async function startCodeServer(options: CodeServerOptions = {}): Promise<CodeServer> {
    const tools = options.tools ?? findTools();
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "dream-coder-e2e-"));
    const keep = options.keepRunDir ?? process.env.DREAM_CODER_E2E_KEEP === "1";
    const userDataDir = path.join(runDir, "user-data");
    const extensionsDir = path.join(runDir, "extensions");
    const workspace = path.resolve(options.workspace ?? path.join(runDir, "workspace"));
    const logFile = path.join(runDir, "code-server.log");
    fs.mkdirSync(extensionsDir, { recursive: true });
    fs.mkdirSync(workspace, { recursive: true });
    writeUserSettings(userDataDir, { ...(options.workspaceTrust ? { "security.workspace.trust.enabled": true } : {}), ...options.settings });
    const env = makeEnv(runDir, tools);
    fs.writeFileSync(path.join(runDir, "xdg-config", "config.yaml"), "auth: none\ncert: false\n");

    const removeRun = () => {
        if (!keep) fs.rmSync(runDir, { recursive: true, force: true, maxRetries: 3 });
    };

    try {
        for (const vsix of options.installVsix ?? []) installVsix(tools, env, { userDataDir, extensionsDir }, vsix);
    } catch (err) {
        removeRun();
        throw err;
    }

    let lastError: Error | undefined;
    for (let attempt = 0; attempt < 3; attempt++) {
        const port = await freePort();
        const url = `http://127.0.0.1:${port}`;
        const args = [
            tools.codeServer,
            "--bind-addr",
            `127.0.0.1:${port}`,
            "--auth",
            "none",
            "--config",
            path.join(runDir, "xdg-config", "config.yaml"),
            "--user-data-dir",
            userDataDir,
            "--extensions-dir",
            extensionsDir,
            "--disable-telemetry",
            "--disable-update-check",
            ...(options.workspaceTrust ? [] : ["--disable-workspace-trust"]),
            "--disable-getting-started-override",
            "--ignore-last-opened",
            ...(options.smokeTestDriver ? ["--vscode-option", "enable-smoke-test-driver"] : []),
            ...(options.extraArgs ?? []),
            workspace
        ];
        const logFd = fs.openSync(logFile, "a");
        const child = spawn(tools.node, args, { cwd: runDir, env, detached: true, stdio: ["ignore", logFd, logFd] });
        fs.closeSync(logFd);
        const pgid = child.pid;
        if (!pgid) {
            lastError = new Error("code-server did not start");
            continue;
        }
        installExitHook();
        liveGroups.add(pgid);
        let killed: Promise<void> | undefined;
        const kill = (): Promise<void> => {
            killed ??= (async () => {
                signalGroup(pgid, "SIGTERM");
                for (let i = 0; i < 50 && groupAlive(pgid); i++) await sleep(100);
                if (groupAlive(pgid)) {
                    signalGroup(pgid, "SIGKILL");
                    for (let i = 0; i < 20 && groupAlive(pgid); i++) await sleep(100);
                }
                liveGroups.delete(pgid);
            })();
            return killed;
        };
        const stop = async (): Promise<void> => {
            await kill();
            removeRun();
        };
        try {
            await waitHealthy(url, child, logFile, options.startTimeoutMs ?? 30_000);
        } catch (err) {
            lastError = err as Error;
            // Kill this attempt's group but keep RUN for the next attempt.
            signalGroup(pgid, "SIGKILL");
            liveGroups.delete(pgid);
            if (!/EADDRINUSE/.test(lastError.message)) break;
            continue;
        }
        const authority = `127.0.0.1:${port}`;
        return {
            port,
            url,
            authority,
            runDir,
            userDataDir,
            extensionsDir,
            workspace,
            logFile,
            pid: pgid,
            kill,
            remoteUri: (absPath: string) => `vscode-remote://${authority}${path.resolve(absPath).split(path.sep).map(encodeURIComponent).join("/")}`,
            stop
        };
    }
    removeRun();
    throw lastError ?? new Error("code-server did not start");
}

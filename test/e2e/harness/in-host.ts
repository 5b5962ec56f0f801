// Runs a mocha suite inside the real extension host of code-server, driven by headless chromium.
import * as fs from "node:fs";
import * as path from "node:path";
import { format } from "node:util";
import { closeSession, collectArtifacts, newArtifactsDir } from "./artifacts";
import { launchBrowser, type BrowserSession } from "./browser";
import { startCodeServer, type CodeServer } from "./code-server";
import { findTools } from "./tools";
import { withTimeout } from "./util";

export interface InHostSuiteOptions {
    /**
     * Extension folder (its package.json). Loaded as the development extension unless `vsix` is given
     * (then only checked when it exists; a stub development extension is used instead).
     */
    extensionPath: string;
    /** The compiled mocha `run()` module (a .js file, or a folder with index.js) run in the extension host. */
    testsPath: string;
    /** Folder opened in the workbench. Default: an empty folder inside RUN. */
    workspace?: string;
    /** Extra user settings (merged over the test profile's base settings). */
    settings?: Record<string, unknown>;
    /** Install this .vsix into the throwaway extensions dir and run the tests against it instead of extensionPath. */
    vsix?: string;
    /** Whole-run limit in ms (code-server, browser, workbench, suite). Default 120 s. */
    timeoutMs?: number;
    /** Name for the artifacts folder (test-results/e2e/<name>-<time>/). Default: basename of testsPath. */
    name?: string;
    /** Also keep artifacts when the suite passes. */
    keepArtifacts?: boolean;
    /** Print the in-host log to stdout as it arrives. Default true. */
    echo?: boolean;
    /** Extra environment for code-server and its extension host (e.g. DREAM_CODER_TEST=1). */
    env?: Record<string, string>;
    /** Keep workspace trust on (code-server is started without --disable-workspace-trust). Default false. */
    workspaceTrust?: boolean;
    /** Extra code-server command-line arguments. */
    codeServerArgs?: string[];
}

export interface InHostSuiteResult {
    /** The exit code the workbench reported (mocha failures give 1); null when it never reported one. */
    exitCode: number | null;
    timedOut: boolean;
    /** Everything codeAutomationLog received, one line per call. */
    log: string[];
    /** Browser console and page errors. */
    browserConsole: string[];
    durationMs: number;
    /** Set when artifacts were saved (failure, timeout, or keepArtifacts). */
    artifactsDir?: string;
    /** The throwaway RUN folder (removed by now unless DREAM_CODER_E2E_KEEP=1); undefined if code-server never started. */
    runDir?: string;
}

function writeStubExtension(dir: string): string {
    fs.mkdirSync(dir, { recursive: true });
    const manifest = {
        name: "e2e-test-host",
        publisher: "dream-coder-e2e-harness",
        version: "0.0.0",
        description: "Stub development extension: lets the workbench run extensionTestsPath against an installed .vsix.",
        engines: { vscode: "^1.0.0" }
    };
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify(manifest, null, 2));
    return dir;
}

/** The workbench hands over console-style arguments ('%s (%dms)', title, 48): format them like console.log. */
export function formatLogArgs(args: unknown): string {
    const list = Array.isArray(args) ? args : [args];
    return format(...list);
}

/** Workbench noise that says nothing about the suite (the gallery is unreachable offline). */
const echoNoise =
    /open-vsx\.org|\[Service Worker\]|Resolv(ing|ed) connection token|Creating a socket|reconnection-grace-time|AgentHost:remote|AccountPolicyGate|builtin extensions cache/;

/**
 * Starts code-server (smoke-test driver on) and chromium, opens the payload URL with
 * extensionDevelopmentPath + extensionTestsPath, and waits for codeAutomationExit.
 * Never leaves code-server or chromium running. Throws only when the tools cannot start.
 */
export async function runInHostSuite(options: InHostSuiteOptions): Promise<InHostSuiteResult> {
    const started = Date.now();
    const timeoutMs = options.timeoutMs ?? 120_000;
    const echo = options.echo ?? true;
    const tools = findTools();
    const extensionPath = path.resolve(options.extensionPath);
    let testsPath = path.resolve(options.testsPath);
    if (fs.existsSync(testsPath) && fs.statSync(testsPath).isDirectory()) testsPath = path.join(testsPath, "index.js");
    if (!fs.existsSync(testsPath)) throw new Error(`testsPath not found: ${testsPath} (compile first: npx tsc -p .)`);
    if (!options.vsix && !fs.existsSync(path.join(extensionPath, "package.json"))) {
        throw new Error(`no package.json in extensionPath ${extensionPath}`);
    }

    const log: string[] = [];
    let exitLogs: { relativePath: string; contents: string }[] = [];
    let server: CodeServer | undefined;
    let browser: BrowserSession | undefined;
    let exitCode: number | null = null;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    let cancelExit: (err: Error) => void = () => undefined;
    let error: unknown;
    const savedEnv: Record<string, string | undefined> = {};
    for (const [k, v] of Object.entries(options.env ?? {})) {
        savedEnv[k] = process.env[k];
        process.env[k] = v;
    }
    const run = async (): Promise<number> => {
        const s = await startCodeServer({
            workspace: options.workspace,
            settings: options.settings,
            workspaceTrust: options.workspaceTrust,
            smokeTestDriver: true,
            installVsix: options.vsix ? [options.vsix] : [],
            extraArgs: options.codeServerArgs,
            tools
        });
        server = s;
        if (cancelled) throw new Error("cancelled");
        const b = await launchBrowser(path.join(s.runDir, "browser"), tools.chromium);
        browser = b;
        if (cancelled) throw new Error("cancelled");
        let resolveExit!: (code: number) => void;
        const exited = new Promise<number>((resolve, reject) => {
            resolveExit = resolve;
            cancelExit = reject;
        });
        exited.catch(() => undefined);
        b.page.on("crash", () => cancelExit(new Error("the workbench page crashed")));
        b.page.on("close", () => cancelExit(new Error("the workbench page closed before the suite ended")));
        await b.page.exposeFunction("codeAutomationLog", (type: unknown, args: unknown) => {
            const line = `[${String(type)}] ${formatLogArgs(args)}`;
            log.push(line);
            if (echo && !echoNoise.test(line)) process.stdout.write(`  host| ${line}\n`);
        });
        await b.page.exposeFunction("codeAutomationExit", (code: unknown, logs?: unknown) => {
            if (Array.isArray(logs)) {
                exitLogs = logs
                    .filter((l): l is { relativePath: string; contents: string } => !!l && typeof l.relativePath === "string")
                    .map((l) => ({ relativePath: l.relativePath, contents: String(l.contents ?? "") }));
            }
            resolveExit(typeof code === "number" ? code : Number(code));
        });
        // The workbench runs extensionTestsPath only in an extension development host, so a .vsix run gets a
        // stub development extension (no code) next to the installed one.
        const developmentPath = options.vsix ? writeStubExtension(path.join(s.runDir, "stub-extension")) : extensionPath;
        const payload: [string, string][] = [["extensionDevelopmentPath", s.remoteUri(developmentPath)]];
        payload.push(["extensionTestsPath", s.remoteUri(testsPath)], ["skipWelcome", "true"]);
        const url = `${s.url}/?folder=${encodeURIComponent(s.workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
        if (echo) console.log(`  e2e: ${url}`);
        if (cancelled) throw new Error("cancelled");
        await b.page.goto(url, { waitUntil: "domcontentloaded", timeout: 60_000 });
        return exited;
    };
    const running = run();
    running.catch(() => undefined);
    try {
        const deadline = new Promise<"timeout">((resolve) => {
            timer = setTimeout(() => resolve("timeout"), timeoutMs);
        });
        const outcome = await Promise.race([running, deadline]);
        if (outcome === "timeout") {
            timedOut = true;
            // Let the step in progress finish (each is bounded) so that whatever it started gets cleaned up below.
            cancelled = true;
            cancelExit(new Error("cancelled"));
            await withTimeout(running, 100_000, "cancelling the run").catch(() => undefined);
        } else exitCode = outcome;
    } catch (err) {
        error = err;
    } finally {
        clearTimeout(timer);
        for (const [k, v] of Object.entries(savedEnv)) {
            if (v === undefined) delete process.env[k];
            else process.env[k] = v;
        }
    }

    let artifactsDir: string | undefined;
    try {
        if (exitCode !== 0 || options.keepArtifacts) {
            artifactsDir = newArtifactsDir(options.name ?? path.basename(testsPath, ".js"));
            const b = browser as BrowserSession | undefined;
            if (error) fs.writeFileSync(path.join(artifactsDir, "error.txt"), String((error as Error)?.stack ?? error));
            if (timedOut) fs.writeFileSync(path.join(artifactsDir, "error.txt"), `timed out after ${timeoutMs} ms\n`);
            await collectArtifacts(artifactsDir, { page: b?.page, browserConsole: b?.console, automationLog: log, exitLogs });
        }
    } finally {
        await closeSession(browser as BrowserSession | undefined, server as CodeServer | undefined, artifactsDir);
    }
    if (error) {
        if (artifactsDir) (error as Error).message += ` (artifacts in ${artifactsDir})`;
        throw error;
    }
    if (echo && artifactsDir) console.log(`  e2e: artifacts in ${artifactsDir}`);
    return {
        exitCode,
        timedOut,
        log,
        browserConsole: (browser as BrowserSession | undefined)?.console ?? [],
        durationMs: Date.now() - started,
        artifactsDir,
        runDir: (server as CodeServer | undefined)?.runDir
    };
}

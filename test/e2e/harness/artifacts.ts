// Failure artifacts under test-results/e2e/: screenshot, extension host log, code-server and browser logs.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Page } from "playwright-core";
import type { BrowserSession } from "./browser";
import type { CodeServer } from "./code-server";
import { repoRoot } from "./tools";
import { bestEffort, timestamp } from "./util";

export function artifactsRoot(): string {
    return process.env.DREAM_CODER_E2E_ARTIFACTS || path.join(repoRoot, "test-results", "e2e");
}

export function newArtifactsDir(name: string): string {
    const dir = path.join(artifactsRoot(), `${name.replace(/[^\w.-]+/g, "-")}-${timestamp()}`);
    fs.mkdirSync(dir, { recursive: true });
    return dir;
}

/** Copies every file below user-data/logs/<session>/ whose path contains `exthost` (exthost1/…, remoteexthost…). */
export function copyExtensionHostLogs(server: CodeServer, dest: string): string[] {
    const copied: string[] = [];
    const logsRoot = path.join(server.userDataDir, "logs");
    const walk = (dir: string): void => {
        let entries: fs.Dirent[];
        try {
            entries = fs.readdirSync(dir, { withFileTypes: true });
        } catch {
            return;
        }
        for (const entry of entries) {
            const full = path.join(dir, entry.name);
            if (entry.isDirectory()) walk(full);
            else if (entry.isFile() && /exthost/i.test(path.relative(logsRoot, full))) {
                const target = path.join(dest, "logs", path.relative(logsRoot, full));
                fs.mkdirSync(path.dirname(target), { recursive: true });
                fs.copyFileSync(full, target);
                copied.push(target);
            }
        }
    };
    walk(logsRoot);
    return copied;
}

export interface CollectOptions {
    page?: Page;
    server?: CodeServer;
    browserConsole?: string[];
    automationLog?: string[];
    /** Log files the workbench handed to codeAutomationExit. */
    exitLogs?: { relativePath: string; contents: string }[];
}

/** Saves everything useful for a post-mortem into dir; never throws. Screenshot first (needs the live page). */
export async function collectArtifacts(dir: string, o: CollectOptions): Promise<void> {
    fs.mkdirSync(dir, { recursive: true });
    if (o.page && !o.page.isClosed()) {
        await bestEffort("screenshot", () => o.page!.screenshot({ path: path.join(dir, "screenshot.png"), timeout: 10_000 }), 12_000);
    }
    if (o.browserConsole) fs.writeFileSync(path.join(dir, "browser-console.log"), `${o.browserConsole.join("\n")}\n`);
    if (o.automationLog) fs.writeFileSync(path.join(dir, "automation.log"), `${o.automationLog.join("\n")}\n`);
    for (const log of o.exitLogs ?? []) {
        const target = path.join(dir, "workbench-logs", log.relativePath.replace(/^(\.\.\/)+/, ""));
        await bestEffort("write workbench log", () => {
            fs.mkdirSync(path.dirname(target), { recursive: true });
            fs.writeFileSync(target, log.contents);
        });
    }
    if (o.server) {
        await bestEffort("copy code-server logs", () => {
            if (fs.existsSync(o.server!.logFile)) fs.copyFileSync(o.server!.logFile, path.join(dir, "code-server.log"));
            copyExtensionHostLogs(o.server!, dir);
        });
    }
}

/** Closes the browser, then code-server, keeping code-server's logs in `artifactsDir` when one is given. */
export async function closeSession(browser: BrowserSession | undefined, server: CodeServer | undefined, artifactsDir?: string): Promise<void> {
    if (browser) await browser.close();
    if (server) {
        await bestEffort("kill code-server", () => server.kill(), 15_000);
        if (artifactsDir) await collectArtifacts(artifactsDir, { server });
        await bestEffort("remove run dir", () => server.stop(), 15_000);
    }
}

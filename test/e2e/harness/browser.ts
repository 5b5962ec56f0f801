// Headless Debian chromium through playwright-core (no browser download), fresh profile each time.
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { findTools } from "./tools";
import { bestEffort } from "./util";

export const chromiumArgs = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage"
];

export interface BrowserSession {
    context: BrowserContext;
    page: Page;
    /** Every browser console message and page error, in order. */
    console: string[];
    close(): Promise<void>;
}

/** Launches chromium with a fresh user-data-dir under profileDir. */
export async function launchBrowser(profileDir: string, executablePath = findTools().chromium): Promise<BrowserSession> {
    fs.mkdirSync(profileDir, { recursive: true });
    // Keep chromium's crash reports, caches and temp files inside profileDir too.
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    for (const [k, sub] of [
        ["XDG_CONFIG_HOME", "xdg-config"],
        ["XDG_CACHE_HOME", "xdg-cache"],
        ["TMPDIR", "tmp"]
    ] as const) {
        env[k] = path.join(profileDir, sub);
        fs.mkdirSync(env[k], { recursive: true });
    }
    const context = await chromium.launchPersistentContext(path.join(profileDir, "chromium-profile"), {
        executablePath,
        headless: true,
        args: chromiumArgs,
        env,
        viewport: { width: 1400, height: 900 },
        timeout: 60_000,
        handleSIGINT: true,
        handleSIGTERM: true,
        handleSIGHUP: true
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const consoleLines: string[] = [];
    page.on("console", (msg) => consoleLines.push(`[${msg.type()}] ${msg.text()}`));
    page.on("pageerror", (err) => consoleLines.push(`[pageerror] ${err.message}`));
    let closed: Promise<void> | undefined;
    return {
        context,
        page,
        console: consoleLines,
        close: () => (closed ??= bestEffort("close chromium", () => context.close(), 15_000))
    };
}

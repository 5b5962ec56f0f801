// The browser UI smoke test's page object, and a session that starts code-server + chromium for it.
import * as fs from "node:fs";
import * as path from "node:path";
import type { FrameLocator, Page } from "playwright-core";
import { closeSession, collectArtifacts, newArtifactsDir } from "./artifacts";
import { launchBrowser, type BrowserSession } from "./browser";
import { startCodeServer, type CodeServer } from "./code-server";
import { findTools } from "./tools";
import { withTimeout } from "./util";

/** The DOM renders spaces as U+00A0. */
export function domText(text: string): string {
    return text.replace(/\u00a0/g, " ");
}

/**
 * How long a wait on the UI's state (a tab saved, a widget shown or hidden) may last. Generous: the 2-core
 * machines these tests run on are often busy (a fresh clone's first run saw a save take over 10 s), and a
 * wait ends as soon as the state is reached, so the limit only delays the report of a real failure.
 */
export const STATE_WAIT_MS = 60_000;

export class Workbench {
    constructor(
        readonly page: Page,
        readonly server: CodeServer,
        /** Where screenshot() writes (test-results/e2e/<name>-<time>/). */
        readonly artifactsDir: string
    ) {}

    /** Waits for the workbench and its status bar. */
    async waitReady(timeoutMs = STATE_WAIT_MS): Promise<void> {
        await this.page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: timeoutMs });
        await this.page.locator("#workbench\\.parts\\.statusbar").waitFor({ state: "visible", timeout: timeoutMs });
    }

    /** Quick open (Ctrl+P) a file by name relative to the workspace; waits for its editor tab to be active. */
    async openFile(relativePath: string, timeoutMs = STATE_WAIT_MS): Promise<void> {
        await this.focusWorkbench();
        await this.page.keyboard.press("Control+P");
        const input = this.page.locator(".quick-input-widget input");
        await input.waitFor({ state: "visible", timeout: timeoutMs });
        await input.fill(relativePath);
        const base = path.basename(relativePath);
        await this.page.locator(".quick-input-list .monaco-list-row", { hasText: base }).first().waitFor({ state: "visible", timeout: timeoutMs });
        await this.page.keyboard.press("Enter");
        await this.page.locator(".tab.active", { hasText: base }).waitFor({ state: "visible", timeout: timeoutMs });
        await this.focusEditor();
    }

    /** Clicks into the active editor's text area. */
    async focusEditor(): Promise<void> {
        const editor = this.page.locator(".editor-group-container.active .monaco-editor .view-lines").first();
        await editor.waitFor({ state: "visible", timeout: STATE_WAIT_MS });
        await editor.click();
    }

    /** Presses Ctrl+End in the active editor (cursor to the end of the document). */
    async cursorToEnd(): Promise<void> {
        await this.page.keyboard.press("Control+End");
    }

    /** Types as a user would (key events, delay ms between keys). */
    async type(text: string, delay = 20): Promise<void> {
        await this.page.keyboard.type(text, { delay });
    }

    async press(key: string): Promise<void> {
        await this.page.keyboard.press(key);
    }

    /** The active editor's visible text (U+00A0 → space), lines joined with \n. */
    async editorText(): Promise<string> {
        const lines = await this.page.locator(".editor-group-container.active .monaco-editor .view-lines .view-line").evaluateAll((els) =>
            els
                .map((el) => ({ top: parseFloat((el as unknown as { style: { top: string } }).style.top || "0"), text: el.textContent ?? "" }))
                .sort((a, b) => a.top - b.top)
                .map((l) => l.text)
        );
        return domText(lines.join("\n"));
    }

    /**
     * The text that `after` decorations draw in the active editor: VS Code renders them as CSS ::after content on
     * a span in the line, so this is the computed `content` as CSS writes it (quoted; a control character as a
     * hex escape such as `\1 `).
     */
    async afterDecorations(): Promise<string[]> {
        return this.page.locator(".editor-group-container.active .monaco-editor .view-lines span").evaluateAll((els) => {
            const style = (globalThis as unknown as { getComputedStyle(e: unknown, pseudo: string): { content: string } }).getComputedStyle;
            return els.map((el) => style(el, "::after").content).filter((c) => c && c !== "none" && c !== "normal");
        });
    }

    /**
     * Waits for ghost text (`.ghost-text-decoration`, or the multi-line `.ghost-text` block) and returns it.
     * Text typed before activation gets none, so by default it retriggers the inline suggestion every few
     * seconds through the palette command (Alt+\ does nothing in headless Chromium).
     */
    async waitForGhostText(options: { timeoutMs?: number; retrigger?: boolean } = {}): Promise<string> {
        const timeoutMs = options.timeoutMs ?? STATE_WAIT_MS;
        const ghost = this.page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text").first();
        const deadline = Date.now() + timeoutMs;
        let attempt = 0;
        while (Date.now() < deadline) {
            try {
                await ghost.waitFor({ state: "visible", timeout: Math.min(4_000, Math.max(1, deadline - Date.now())) });
                return domText((await ghost.textContent()) ?? "");
            } catch {
                if (options.retrigger === false) continue;
                attempt++;
                await this.triggerInlineSuggestion();
            }
        }
        throw new Error(`no ghost text after ${timeoutMs} ms (${attempt} retriggers)`);
    }

    /** Runs the built-in "Trigger Inline Suggestion" (editor.action.inlineSuggest.trigger) from the palette. */
    async triggerInlineSuggestion(): Promise<void> {
        await this.runCommand("Trigger Inline Suggestion");
    }

    /** Tab: accepts the shown ghost text (quick suggestions are off in the test profile). */
    async acceptGhostText(): Promise<void> {
        await this.page.keyboard.press("Tab");
        await this.page.locator(".monaco-editor .ghost-text-decoration").first().waitFor({ state: "hidden", timeout: STATE_WAIT_MS });
    }

    /**
     * F1, types the command's label (e.g. "Dream-Coder: Fill Holes"), picks the row whose label matches, Enter.
     * The editor keeps focus afterwards, as it does for a user.
     */
    async runCommand(label: string, timeoutMs = STATE_WAIT_MS): Promise<void> {
        await this.pickCommand(label, timeoutMs);
        await this.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: timeoutMs });
    }

    /**
     * Runs a palette command that asks for input in the quick input (e.g. "Dream-Coder: Rewrite Selection…"):
     * waits for the input titled `title` instead of for the widget to close.
     */
    async runCommandAskingInput(label: string, title: string, timeoutMs = STATE_WAIT_MS): Promise<void> {
        await this.pickCommand(label, timeoutMs);
        await this.page.locator(".quick-input-widget .quick-input-title", { hasText: title }).waitFor({ state: "visible", timeout: timeoutMs });
    }

    /** F1, the command's label, a click on its row. */
    private async pickCommand(label: string, timeoutMs: number): Promise<void> {
        await this.page.keyboard.press("F1");
        const input = this.page.locator(".quick-input-widget input");
        await input.waitFor({ state: "visible", timeout: timeoutMs });
        await input.fill(`>${label}`);
        const row = this.page.locator(".quick-input-list .monaco-list-row", { hasText: label }).first();
        await row.waitFor({ state: "visible", timeout: timeoutMs });
        await row.click();
    }

    /** The quick input's rows as shown (label and description run together), and which one Enter would take. */
    async quickInputRows(): Promise<{ rows: string[]; focused: string | undefined }> {
        const list = this.page.locator(".quick-input-widget .quick-input-list");
        await list.locator(".monaco-list-row").first().waitFor({ state: "visible", timeout: STATE_WAIT_MS });
        // The list is virtual: rows are in DOM order of creation, data-index gives their place.
        const rows = await list
            .locator(".monaco-list-row")
            .evaluateAll((els) =>
                els
                    .map((el) => ({ index: Number(el.getAttribute("data-index")), text: el.textContent ?? "", focused: el.classList.contains("focused") }))
                    .sort((a, b) => a.index - b.index)
            );
        return { rows: rows.map((r) => domText(r.text)), focused: rows.filter((r) => r.focused).map((r) => domText(r.text))[0] };
    }

    /**
     * The notifications shown so far, newest first, read from the notification center (this headless workbench
     * keeps them there without showing toasts; its list is as wide as a toast): the message, the icon's severity,
     * the buttons, and those of them whose label is cut short with an ellipsis.
     */
    async notifications(): Promise<{ message: string; severity: "info" | "warning" | "error" | undefined; buttons: string[]; cut: string[] }[]> {
        await this.runCommand("Notifications: Show Notifications");
        const items = this.page.locator(".notifications-center .notification-list-item");
        const list = await items.evaluateAll((els) =>
            els.map((el) => {
                const buttons = [...el.querySelectorAll(".monaco-button")];
                return {
                    message: el.querySelector(".notification-list-item-message")?.textContent ?? "",
                    icon: el.querySelector(".notification-list-item-icon")?.className ?? "",
                    buttons: buttons.map((b) => b.textContent ?? ""),
                    cut: buttons.filter((b) => b.scrollWidth > b.clientWidth).map((b) => b.textContent ?? "")
                };
            })
        );
        await this.runCommand("Notifications: Hide Notifications");
        return list.map((n) => ({
            message: domText(n.message),
            severity: (["error", "warning", "info"] as const).find((s) => n.icon.includes(`codicon-${s}`)),
            buttons: n.buttons,
            cut: n.cut
        }));
    }

    /**
     * The content of a webview panel (each webview is an iframe.webview holding #active-frame), waiting until
     * `selector` is visible inside it. With several webviews open, pass the one's index (in DOM order).
     */
    async webview(selector: string, options: { index?: number; timeoutMs?: number } = {}): Promise<FrameLocator> {
        const frame = this.page
            .locator("iframe.webview")
            .nth(options.index ?? 0)
            .contentFrame()
            .locator("#active-frame")
            .contentFrame();
        await frame
            .locator(selector)
            .first()
            .waitFor({ state: "visible", timeout: options.timeoutMs ?? STATE_WAIT_MS });
        return frame;
    }

    /** Ctrl+S, then waits until the active tab is no longer dirty. */
    async save(timeoutMs = STATE_WAIT_MS): Promise<void> {
        await this.page.keyboard.press("Control+S");
        await this.page.locator(".tab.active.dirty").waitFor({ state: "detached", timeout: timeoutMs });
    }

    /** Saves a PNG of the page into the artifacts folder; returns its path. */
    async screenshot(name: string): Promise<string> {
        const file = path.join(this.artifactsDir, `${name.replace(/[^\w.-]+/g, "-")}.png`);
        await this.page.mouse.move(1, 1); // no hover tooltip in the picture
        await this.page.screenshot({ path: file, timeout: 15_000 });
        return file;
    }

    /** Absolute path of a file in the opened workspace. */
    workspaceFile(relativePath: string): string {
        return path.join(this.server.workspace, relativePath);
    }

    private async focusWorkbench(): Promise<void> {
        await this.page.bringToFront();
    }
}

export interface WorkbenchSessionOptions {
    /** Name for the artifacts folder (test-results/e2e/<name>-<time>/). */
    name: string;
    /** Development extension folder, loaded through the payload (needs the smoke-test driver, turned on here). */
    extensionPath?: string;
    /** Or a built .vsix installed into the throwaway extensions dir. */
    vsix?: string;
    /** Folder to open; files(): extra files written into it first. Default: a fresh folder in RUN. */
    workspace?: string;
    files?: Record<string, string>;
    settings?: Record<string, unknown>;
    /** Keep workspace trust on (no --disable-workspace-trust). Default false. */
    workspaceTrust?: boolean;
    /** Whole-session limit in ms. Default 120 s. */
    timeoutMs?: number;
}

/**
 * Starts code-server + chromium, opens the workbench (with the extension), runs body(workbench),
 * and always tears everything down. On failure it keeps a screenshot and the logs in the artifacts folder.
 */
export async function withWorkbench<T>(options: WorkbenchSessionOptions, body: (wb: Workbench) => Promise<T>): Promise<T> {
    const tools = findTools();
    const artifactsDir = newArtifactsDir(options.name);
    let server: CodeServer | undefined;
    let browser: BrowserSession | undefined;
    let failed = true;
    let closing = false;
    const timeoutMs = options.timeoutMs ?? 120_000;
    const session = async (): Promise<T> => {
        const s = await startCodeServer({
            workspace: options.workspace,
            settings: options.settings,
            workspaceTrust: options.workspaceTrust,
            smokeTestDriver: !!options.extensionPath,
            installVsix: options.vsix ? [options.vsix] : [],
            tools
        });
        server = s;
        if (closing) throw new Error("cancelled");
        for (const [rel, text] of Object.entries(options.files ?? {})) {
            const file = path.join(s.workspace, rel);
            fs.mkdirSync(path.dirname(file), { recursive: true });
            fs.writeFileSync(file, text);
        }
        const b = await launchBrowser(path.join(s.runDir, "browser"), tools.chromium);
        browser = b;
        if (closing) throw new Error("cancelled");
        let url = `${s.url}/?folder=${encodeURIComponent(s.workspace)}`;
        if (options.extensionPath) {
            const payload = [
                ["extensionDevelopmentPath", s.remoteUri(path.resolve(options.extensionPath))],
                ["skipWelcome", "true"]
            ];
            url += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
        }
        await b.page.goto(url, { waitUntil: "domcontentloaded", timeout: 60_000 });
        const wb = new Workbench(b.page, s, artifactsDir);
        await wb.waitReady();
        return body(wb);
    };
    const running = session();
    running.catch(() => undefined);
    try {
        const result = await withTimeout(running, timeoutMs, `workbench session ${options.name}`);
        failed = false;
        return result;
    } finally {
        closing = true;
        if (failed) {
            const b = browser as BrowserSession | undefined;
            await collectArtifacts(artifactsDir, { page: b?.page, browserConsole: b?.console });
            await (browser as BrowserSession | undefined)?.close();
            // The body fails fast once the page is gone; wait for it so nothing it started is left behind.
            await withTimeout(running, 100_000, "cancelling the session").catch(() => undefined);
        }
        await closeSession(browser as BrowserSession | undefined, server as CodeServer | undefined, failed ? artifactsDir : undefined);
        if (failed) console.error(`  e2e: artifacts in ${artifactsDir}`);
        else if (fs.readdirSync(artifactsDir).length === 0) fs.rmSync(artifactsDir, { recursive: true, force: true });
    }
}

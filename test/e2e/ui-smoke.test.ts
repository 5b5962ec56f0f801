// One smoke test through the browser, as a user: type in a file and see Dream-Coder's ghost text, accept it with
// Tab, fill a hole from the command palette, save, open the denoising view. The screenshot stays in
// test-results/e2e/ as the run's artifact.
import assert from "node:assert/strict";
import { readFileSync, statSync } from "node:fs";
import { test } from "node:test";
import { repoRoot, withWorkbench, type Workbench } from "./harness";
import { testModel } from "../tools/test-models";

/** Selects the whole file (the active editor's) and opens the rewrite box. */
async function selectAllAndAskRewrite(wb: Workbench): Promise<void> {
    await wb.focusEditor();
    await wb.press("Control+A");
    await wb.runCommandAskingInput("Dream-Coder: Rewrite Selection", "Rewrite with Dream-Coder");
}

/** Waits for the rewrite's outcome (a diff preview, or "changes nothing") and discards a preview. */
async function closeRewriteOutcome(wb: Workbench): Promise<void> {
    const preview = wb.page.locator(".tab", { hasText: "Dream-Coder rewrite" });
    const nothing = wb.page.locator(".notification-toast", { hasText: "the rewrite changes nothing" });
    await preview.or(nothing).first().waitFor({ state: "visible", timeout: 60_000 });
    if (await preview.count()) await wb.runCommand("Dream-Coder: Discard Rewrite");
}

async function rewriteWith(wb: Workbench, instruction: string): Promise<void> {
    await selectAllAndAskRewrite(wb);
    await wb.type(instruction);
    await wb.press("Enter");
    await closeRewriteOutcome(wb);
}

test("type, ghost text, Tab, a palette command, save, the denoising view", { timeout: 300_000 }, async () => {
    const shot = await withWorkbench(
        {
            name: "dream-coder-ui",
            extensionPath: repoRoot,
            files: { "demo.py": "def add(a, b):\n    return a + b\n\nx = ???\n" },
            settings: { "dreamCoder.model": testModel({ arch: "dream" }), "dreamCoder.threads": 1, "dreamCoder.inlineCompletion.debounceMs": 0 },
            timeoutMs: 240_000
        },
        async (wb) => {
            await wb.openFile("demo.py");
            await wb.cursorToEnd();
            await wb.type("total = add(1, ");
            const ghost = await wb.waitForGhostText({ timeoutMs: 60_000 });
            assert.ok(ghost.length > 0, "ghost text is shown");
            await wb.acceptGhostText();
            // The editor's DOM shows ghost text as if it were text: the file on disk says what was accepted.
            await wb.save();
            const saved = readFileSync(wb.workspaceFile("demo.py"), "utf8");
            const typed = "def add(a, b):\n    return a + b\n\nx = ???\ntotal = add(1, ";
            assert.ok(saved.startsWith(typed) && saved.length > typed.length, `Tab inserted the suggestion after the typed text: ${JSON.stringify(saved)}`);

            await wb.runCommand("Dream-Coder: Fill Holes");
            const deadline = Date.now() + 60_000;
            while ((await wb.editorText()).includes("???")) {
                assert.ok(Date.now() < deadline, "the hole was filled");
                await new Promise((r) => setTimeout(r, 250));
            }
            const filled = await wb.editorText();
            assert.ok(filled.startsWith("def add(a, b):\n    return a + b\n\nx = "), "only the hole changed");
            await wb.save();
            const onDisk = readFileSync(wb.workspaceFile("demo.py"), "utf8");
            assert.ok(!onDisk.includes("???") && onDisk.startsWith("def add(a, b):\n    return a + b\n\nx = "), "the filled file is saved");

            // Rewrite: record an instruction, then type a shorter one that fuzzy-matches it. Enter must run what
            // was typed (the first, selected row), not the recent entry.
            const recorded = "use statistics.pvariance from the standard library";
            const shorter = "use the standard library";
            await rewriteWith(wb, recorded);
            await selectAllAndAskRewrite(wb);
            await wb.type(shorter);
            // The list follows the typed text one round trip to the extension host late.
            await wb.page.locator(".quick-input-list .monaco-list-row", { hasText: `${shorter}rewrite with this instruction` }).waitFor({ timeout: 30_000 });
            const shown = await wb.quickInputRows();
            assert.ok(shown.rows[0]?.startsWith(shorter), `the typed instruction is the first row: ${JSON.stringify(shown.rows)}`);
            assert.ok(shown.focused?.startsWith(shorter), `the typed instruction is the selected row, not the recent one: ${JSON.stringify(shown)}`);
            await wb.press("Enter");
            await closeRewriteOutcome(wb);
            await selectAllAndAskRewrite(wb);
            const recent = await wb.quickInputRows();
            assert.ok(recent.rows.length === 2 && recent.rows[0].startsWith(shorter) && recent.rows[1].startsWith(recorded),
                `the typed instruction ran and was recorded first: ${JSON.stringify(recent.rows)}`);
            await wb.press("Escape");

            await wb.runCommand("Dream-Coder: Show Denoising");
            const view = await wb.webview("#text");
            await view.locator("#counts dt").first().waitFor({ timeout: 30_000 });
            assert.match((await view.locator("#counts").textContent()) ?? "", /forward passes\d+tokens\d+/);
            assert.ok(((await view.locator("#text .token").count()) ?? 0) > 0, "the tokens are drawn");
            return wb.screenshot("dream-coder-ui");
        }
    );
    assert.ok(statSync(shot).size > 1000, `screenshot at ${shot}`);
});

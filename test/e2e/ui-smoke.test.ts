// Smoke tests through the browser, as a user: type in a file and see Dream-Coder's ghost text, accept it with
// Tab, fill a hole from the command palette, save, rewrite, open the denoising view, the download picker, choose a
// bad model file; and a new user's first minutes, with no model. The screenshots stay in test-results/e2e/ as the
// runs' artifacts; the README's pictures (media/readme/) are copies of some of them.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { test } from "node:test";
import type { Locator } from "playwright-core";
import { domText, repoRoot, withWorkbench, type Workbench } from "./harness";
import { GET_A_MODEL } from "../../client/src/notificationActions";
import { testModel } from "../tools/test-models";

/** Selects the whole file (the active editor's) and opens the rewrite box. */
async function selectAllAndAskRewrite(wb: Workbench): Promise<void> {
    await wb.focusEditor();
    await wb.press("Control+A");
    await wb.runCommandAskingInput("Dream-Coder: Rewrite Selection", "Rewrite with Dream-Coder");
}

/** Waits for the rewrite's diff preview and discards it with Escape, as the status bar's hint says; with `shot`,
 * takes a screenshot of the preview first and returns its path. */
async function discardRewritePreview(wb: Workbench, shot?: string): Promise<string | undefined> {
    const preview = wb.page.locator(".tab", { hasText: "Dream-Coder rewrite" });
    await preview.waitFor({ state: "visible", timeout: 60_000 });
    // The hint names the lines the rewrite changes, not its count of span edits.
    const hint = wb.page.locator("#workbench\\.parts\\.statusbar", { hasText: "Ctrl+Enter accepts, Escape discards" });
    await hint.waitFor({ timeout: 30_000 });
    assert.match(domText((await hint.textContent()) ?? ""), /rewrite changes lines? \d+(–\d+)?: Ctrl\+Enter accepts/);
    const file = shot ? await wb.screenshot(shot) : undefined;
    await wb.press("Escape");
    await preview.waitFor({ state: "detached", timeout: 30_000 });
    // Nothing outlives the preview: no notification whose Accept would now do nothing.
    const left = (await wb.notifications()).filter((n) => n.buttons.includes("Accept"));
    assert.deepEqual(left, [], "no Accept button is left after the preview closed");
    return file;
}

/** Select Model… → "Choose a GGUF file…": returns the file dialog's path input (code-server's simple dialog). */
async function openModelFileDialog(wb: Workbench): Promise<Locator> {
    await wb.runCommandAskingInput("Dream-Coder: Select Model", "Dream-Coder: Select Model");
    await wb.type("Choose a GGUF file");
    await wb.page.locator(".quick-input-list .monaco-list-row.focused", { hasText: "Choose a GGUF file" }).waitFor({ timeout: 30_000 });
    await wb.press("Enter");
    await wb.page.locator(".quick-input-widget .quick-input-title", { hasText: "Choose a diffusion model (GGUF)" }).waitFor({ timeout: 30_000 });
    // The dialog fills in its folder and lists it a moment after it shows; typing before that is mixed into it.
    await wb.page.locator(".quick-input-list .monaco-list-row", { hasText: ".." }).first().waitFor({ timeout: 30_000 });
    return wb.page.locator(".quick-input-widget input");
}

/** Makes `path` the model through Select Model… → Choose a GGUF file, and waits for its confirmation by name. */
async function chooseModelFile(wb: Workbench, path: string): Promise<void> {
    const dialog = await openModelFileDialog(wb);
    await dialog.press("Control+A");
    await wb.type(path);
    await wb.page.locator(".quick-input-widget").getByRole("button", { name: "OK" }).click();
    await wb.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 30_000 });
    await until("the confirmation", async () => (await wb.notifications()).find((n) => n.message.includes(`Dream-Coder will use ${basename(path)}`)));
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 500))) {
        const found = await probe();
        if (found !== undefined) return found;
    }
    throw new Error(`timed out waiting for ${what}`);
}

async function rewriteWith(wb: Workbench, instruction: string, shot?: string): Promise<string | undefined> {
    await selectAllAndAskRewrite(wb);
    await wb.type(instruction);
    await wb.press("Enter");
    return discardRewritePreview(wb, shot);
}

test("type, ghost text, Tab, a palette command, save, rewrite, the denoising view, a bad model file", { timeout: 300_000 }, async () => {
    const shots = await withWorkbench(
        {
            name: "dream-coder-ui",
            extensionPath: repoRoot,
            files: { "demo.py": "def add(a, b):\n    return a + b\n\nx = ???\n" },
            // The bundled trained model, by its catalog id: the ghost text, the fill and the rewrite show what a trained
            // model writes (a small one: Python-shaped, not always right).
            settings: { "dreamCoder.model": "dream-mini-py", "dreamCoder.threads": 1, "dreamCoder.inlineCompletion.debounceMs": 0 },
            timeoutMs: 240_000
        },
        async (wb) => {
            await wb.openFile("demo.py");
            await wb.cursorToEnd();
            await wb.type("total = add(1, ");
            const ghost = await wb.waitForGhostText({ timeoutMs: 60_000 });
            assert.ok(ghost.length > 0, "ghost text is shown");
            const ghostShot = await wb.screenshot("dream-coder-ui-ghost-text");
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
            const rewriteShot = await rewriteWith(wb, recorded, "dream-coder-ui-rewrite-diff");
            await selectAllAndAskRewrite(wb);
            await wb.type(shorter);
            // The list follows the typed text one round trip to the extension host late.
            await wb.page.locator(".quick-input-list .monaco-list-row", { hasText: `${shorter}rewrite with this instruction` }).waitFor({ timeout: 30_000 });
            const shown = await wb.quickInputRows();
            assert.ok(shown.rows[0]?.startsWith(shorter), `the typed instruction is the first row: ${JSON.stringify(shown.rows)}`);
            assert.ok(shown.focused?.startsWith(shorter), `the typed instruction is the selected row, not the recent one: ${JSON.stringify(shown)}`);
            await wb.press("Enter");
            await discardRewritePreview(wb);
            await selectAllAndAskRewrite(wb);
            const recent = await wb.quickInputRows();
            assert.ok(
                recent.rows.length === 2 && recent.rows[0].startsWith(shorter) && recent.rows[1].startsWith(recorded),
                `the typed instruction ran and was recorded first: ${JSON.stringify(recent.rows)}`
            );
            await wb.press("Escape");

            // A long fill shows its text forming after the marker, as readable symbols: the generated test model's
            // partial text is full of control characters. 1,500 tokens: with an 800-token hole the wait below missed
            // the forming text in one of six runs (the fill took about 6 s).
            // A 1,500-token hole is more than the bundled model's 512-token context: the generated test model.
            await chooseModelFile(wb, testModel({ arch: "dream" }));
            await wb.focusEditor();
            await wb.cursorToEnd();
            await wb.type("\nz = ???:1500");
            await wb.runCommand("Dream-Coder: Fill Holes");
            const forming = await until(
                "the fill's text forming after its marker",
                async () => (await wb.afterDecorations()).find((t) => t.includes("░")),
                60_000
            );
            assert.doesNotMatch(forming, /\\[0-9a-f]/i, `no control characters (CSS hex escapes) in ${forming}`);
            const formingShot = await wb.screenshot("dream-coder-ui-forming");
            await until("the fill to finish", async () => ((await wb.editorText()).includes("???:1500") ? undefined : true), 120_000);

            // The status item says it in words; its menu turns completions off for this language and opens the settings.
            const item = wb.page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "Dream-Coder" }).first();
            const said = await until("the ready status with the latency", async () => {
                const text = domText((await item.textContent()) ?? "");
                return /ready · \d+ ms/.test(text) ? text : undefined;
            });
            assert.match(said, /^\s*Dream-Coder · dream-\S+\.gguf · ready · \d+ ms$/);
            await item.click();
            const menu = (await wb.quickInputRows()).rows.join("\n");
            // The language by its name, not its id.
            for (const action of ["Turn Off Completions", "Turn Off Completions for Python", "Open Settings"])
                assert.ok(menu.includes(action), `the menu offers ${action}: ${menu}`);
            await wb.type("Turn Off Completions for Python");
            await wb.press("Enter");
            await wb.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 30_000 });
            await item.click();
            assert.ok(
                (await wb.quickInputRows()).rows.some((r) => r.includes("Turn On Completions for Python")),
                "completions are off for Python now"
            );
            await wb.press("Escape");

            await wb.runCommand("Dream-Coder: Show Denoising");
            const view = await wb.webview("#text");
            await view.locator("#counts dt").first().waitFor({ timeout: 30_000 });
            const counts = (await view.locator("#counts").textContent()) ?? "";
            // Plain-language labels, each with its value (and the technical meaning in a tooltip).
            assert.match(counts, /Forward passes\d+Tokens generated\d+Tokens per pass\d+\.\d\d/);
            assert.match(counts, /Time per pass\d+\.\d msof which model \/ sampling\d+\.\d \/ \d+\.\d ms/);
            assert.match(counts, /Reused from the last request(none|\d+ tokens)Total time\d+ msSpeed\d+\.\d tokens\/s$/);
            assert.equal(await view.locator("#counts dt[title]").count(), 8, "every number says what it measures in a tooltip");
            // The legend says what the colours mean.
            const legend = domText((await view.locator("#legend").textContent()) ?? "");
            for (const words of ["the step that revealed a token", "revealed first", "revealed last", "not revealed yet", "revealed at this step"]) {
                assert.ok(legend.includes(words), `the legend says "${words}": ${legend}`);
            }
            assert.equal(await view.locator("#legend .swatch").count(), 3, "the legend shows the colour scale");
            assert.ok(((await view.locator("#text .token").count()) ?? 0) > 0, "the tokens are drawn");
            const denoising = await wb.screenshot("dream-coder-ui");
            // Back to the file: the webview, still loading, would take the focus and close the next quick pick.
            await wb.page.locator(".tab", { hasText: "demo.py" }).click();
            await wb.focusEditor();

            // Download Model… marks the recommended model, says what getting each takes (a GGUF, or a checkpoint
            // converted here) and how much memory each 7B model needs (nothing is downloaded: Escape closes the picker).
            await wb.runCommandAskingInput("Dream-Coder: Download Model", "Dream-Coder: Download Model");
            const offered = (await wb.quickInputRows()).rows;
            assert.equal(offered.filter((r) => r.includes("recommended")).length, 1, `one model is recommended: ${JSON.stringify(offered)}`);
            assert.match(
                offered[0],
                /^\s*Dream-Coder v0 Instruct 7B \(Q4_K_M\)\s*recommended · 15\.2 GB download, converted here to 4\.7 GB.*Needs about 6 GB of free memory/
            );
            for (const row of offered) assert.match(row, /Needs about \d+ GB of free memory/, `each model warns about memory: ${row}`);
            await new Promise((r) => setTimeout(r, 500)); // the list's opening animation, for the picture
            const downloadShot = await wb.screenshot("dream-coder-ui-download-picker");
            await wb.press("Escape");
            await wb.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 30_000 });
            await wb.focusEditor();

            // A text file named .gguf, chosen in the file dialog, shows as an error in the status item at once
            // (not at the first keystroke), and the dialog opens next time in the folder of that choice.
            const elsewhere = mkdtempSync(join(tmpdir(), "dream-coder-ui-"));
            const notModel = join(elsewhere, "notes.gguf");
            writeFileSync(notModel, "not a model\n");
            const dialogInput = await openModelFileDialog(wb);
            await dialogInput.press("Control+A");
            await wb.type(notModel);
            await wb.page.locator(".quick-input-list .monaco-list-row", { hasText: "notes.gguf" }).first().waitFor({ timeout: 30_000 });
            await wb.page.locator(".quick-input-widget").getByRole("button", { name: "OK" }).click();
            await wb.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 30_000 });
            await wb.page.locator("#workbench\\.parts\\.statusbar .statusbar-item.error-kind", { hasText: "Dream-Coder" }).waitFor({ timeout: 15_000 });
            const badModel = await wb.screenshot("dream-coder-ui-bad-model");
            const opensAt = await (await openModelFileDialog(wb)).inputValue();
            assert.ok(opensAt.startsWith(`${elsewhere}/`), `the dialog opens where the last model was chosen: ${opensAt}`);
            await wb.press("Escape");

            // Fill Holes with no hole says how to write one, as information; with the bad model, the error offers
            // the actions that fix it.
            await wb.focusEditor();
            await wb.runCommand("Dream-Coder: Fill Holes");
            const hint = await until("the no-hole message", async () => (await wb.notifications()).find((n) => n.message.includes("no hole marker")));
            assert.match(hint.message, /write \?\?\? where code should go/);
            assert.equal(hint.severity, "info", "an information message, not an error");
            await wb.focusEditor();
            await wb.cursorToEnd();
            await wb.type("\ny = ???");
            await wb.runCommand("Dream-Coder: Fill Holes");
            const failure = await until("the bad model's error", async () =>
                (await wb.notifications()).find((n) => n.message.includes("not a GGUF model file"))
            );
            assert.equal(failure.severity, "error");
            assert.deepEqual(failure.buttons, ["Choose File…", "Select Model…", "Open Setting"], "the actions that fix it");
            assert.deepEqual(failure.cut, [], "every button reads whole");
            assert.ok(failure.message.endsWith("Show Log"), `the message links to the log: ${failure.message}`);
            const errorActions = await wb.screenshot("dream-coder-ui-error-actions");

            // Choosing a good model is confirmed by name.
            await chooseModelFile(wb, testModel({ arch: "dream" }));
            return [ghostShot, rewriteShot!, formingShot, denoising, downloadShot, badModel, errorActions];
        }
    );
    for (const shot of shots) assert.ok(statSync(shot).size > 1000, `screenshot at ${shot}`);
});

test("a new user with no model: the first-run offer, a command that needs a model, the status menu, the bundled model", { timeout: 300_000 }, async () => {
    const shots = await withWorkbench(
        {
            name: "dream-coder-new-user",
            extensionPath: repoRoot,
            files: { "demo.py": "def add(a, b):\n    return a + b\n\nx = ???\n" },
            settings: { "dreamCoder.threads": 1 },
            timeoutMs: 240_000
        },
        async (wb) => {
            // The first-run offer: the three ways to a model, each button read whole.
            const offer = await until(
                "the first-run offer",
                async () => (await wb.notifications()).find((n) => n.message.includes("needs a diffusion model")),
                60_000
            );
            assert.equal(offer.severity, "info");
            assert.deepEqual(offer.buttons, GET_A_MODEL);
            assert.deepEqual(offer.cut, [], "no button is cut short");
            await wb.runCommand("Notifications: Show Notifications");
            const offerShot = await wb.screenshot("dream-coder-ui-first-run");
            await wb.runCommand("Notifications: Hide Notifications");

            // The rewrite key with nothing selected says what to do.
            await wb.openFile("demo.py");
            await wb.press("Control+Alt+W");
            const select = await until("the rewrite key's hint", async () =>
                (await wb.notifications()).find((n) => n.message.includes("select the code to rewrite first"))
            );
            assert.equal(select.severity, "info");

            // A command that needs a model: a plain next step with the same three ways, and no error anywhere.
            await wb.focusEditor();
            await wb.runCommand("Dream-Coder: Fill Holes");
            const noModel = await until("the no-model message", async () =>
                (await wb.notifications()).find((n) => n.message.includes("No model is chosen yet"))
            );
            assert.equal(noModel.severity, "info", "information, not an error");
            assert.deepEqual(noModel.buttons, GET_A_MODEL);
            assert.deepEqual(noModel.cut, []);
            assert.doesNotMatch(noModel.message, /dreamCoder\./, "no setting ids");
            const item = wb.page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "Dream-Coder" }).first();
            assert.match(domText((await item.textContent()) ?? ""), /Dream-Coder · no model chosen$/);
            assert.equal(await item.evaluate((el) => el.classList.contains("error-kind")), false, "the status item is not an error");

            // The status menu's action runs with the editor focused: a focused status item would show its tooltip
            // over the notification the action brings up.
            await item.click();
            await wb.type("Turn Off Completions for Python");
            await wb.press("Enter");
            await wb.page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 30_000 });
            await new Promise((r) => setTimeout(r, 1000));
            const focused = await wb.page.evaluate(() => {
                const active = (globalThis as unknown as { document: { activeElement: { closest(s: string): unknown } | null } }).document.activeElement;
                return active?.closest(".monaco-editor") ? "the editor" : active?.closest(".part.statusbar") ? "the status bar" : "something else";
            });
            assert.equal(focused, "the editor");

            // "Try the Bundled Model" on the no-model message makes it the model.
            await wb.runCommand("Notifications: Show Notifications");
            await wb.page
                .locator(".notifications-center .notification-list-item", { hasText: "No model is chosen yet" })
                .getByRole("button", { name: "Try the Bundled Model" })
                .click();
            await until("the confirmation", async () => (await wb.notifications()).find((n) => n.message.includes("Dream-Coder will use dream-mini-py")));
            await until("the bundled model in the status", async () =>
                /Dream-Coder · dream-mini-py · /.test(domText((await item.textContent()) ?? "")) ? true : undefined
            );
            return [offerShot];
        }
    );
    for (const shot of shots) assert.ok(statSync(shot).size > 1000, `screenshot at ${shot}`);
});

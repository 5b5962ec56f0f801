// Makes the README's pictures (media/readme/) from the screenshots of the UI smoke test: run
//   node --test out/test/e2e/ui-smoke.test.js && node scripts/readme-pictures.mjs [test-results/e2e/dream-coder-ui-… [NAME.png …]]
// (the newest run's folder by default; with names, only those pictures, e.g. fill-forming.png from a run whose
// screenshot caught the masked `░` places on screen — how far a fill has formed when it is taken varies).
// It crops (and scales) each screenshot with the E2E tools' headless Chromium (playwright-core), so it needs no
// image tool. The ghost text, the fill and the rewrite in the pictures are the bundled model's; the long fill forming is
// the generated random-weight model's (its text is noise).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { chromiumPath } from "./e2e-chromium.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const results = join(root, "test-results", "e2e");
const from =
    process.argv[2] ??
    join(
        results,
        readdirSync(results)
            .filter((d) => d.startsWith("dream-coder-ui-"))
            .sort((a, b) => statSync(join(results, b)).mtimeMs - statSync(join(results, a)).mtimeMs)[0]
    );

/** picture: [screenshot, x, y, width, height, scale] in the screenshot's pixels (1400×900). */
const pictures = {
    "ghost-text.png": ["dream-coder-ui-ghost-text.png", 355, 36, 900, 160, 1],
    "fill-forming.png": ["dream-coder-ui-forming.png", 355, 36, 900, 175, 1],
    "rewrite-diff.png": ["dream-coder-ui-rewrite-diff.png", 355, 36, 1045, 170, 0.86],
    "denoising.png": ["dream-coder-ui.png", 875, 36, 525, 600, 1],
    "download-picker.png": ["dream-coder-ui-download-picker.png", 400, 0, 600, 250, 1]
};

const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
    const only = process.argv.slice(3);
    for (const [name, [shot, x, y, w, h, scale]] of Object.entries(pictures)) {
        if (only.length && !only.includes(name)) continue;
        const width = Math.round(w * scale);
        const height = Math.round(h * scale);
        const page = await browser.newPage({ viewport: { width, height }, deviceScaleFactor: 1 });
        const data = readFileSync(join(from, shot)).toString("base64");
        await page.setContent(
            `<!doctype html><html><body style="margin:0;overflow:hidden"><img style="position:absolute;left:${-x * scale}px;top:${-y * scale}px;` +
                `transform-origin:0 0;transform:scale(${scale})" src="data:image/png;base64,${data}"></body></html>`
        );
        await page.locator("img").evaluate((img) => img.decode());
        await page.screenshot({ path: join(root, "media", "readme", name), clip: { x: 0, y: 0, width, height } });
        await page.close();
        console.log(`media/readme/${name}: ${width}×${height} from ${join(from, shot)}`);
    }
} finally {
    await browser.close();
}

// Renders media/icon.svg to media/icon.png (128×128, transparent), the package.json "icon": vsce refuses SVG icons.
// Uses the headless Chromium of the E2E tools (scripts/e2e-tools.sh) through playwright-core, so it needs no other
// image tool. Run it after changing the SVG and commit both: node scripts/render-icon.mjs
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { chromiumPath } from "./e2e-chromium.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const size = 128;
const svg = readFileSync(join(root, "media", "icon.svg"), "utf8");
const browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox", "--disable-gpu"] });
try {
    const page = await browser.newPage({ viewport: { width: size, height: size }, deviceScaleFactor: 1 });
    const html =
        `<!doctype html><html><body style="margin:0;background:transparent">` +
        `<img style="display:block;width:${size}px;height:${size}px" src="data:image/svg+xml;base64,${Buffer.from(svg).toString("base64")}"></body></html>`;
    await page.setContent(html);
    await page.locator("img").evaluate((img) => img.decode());
    await page.screenshot({ path: join(root, "media", "icon.png"), omitBackground: true, clip: { x: 0, y: 0, width: size, height: size } });
    console.log(`media/icon.png: ${size}×${size}`);
} finally {
    await browser.close();
}

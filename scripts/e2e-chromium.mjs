// The Chromium the E2E harness installed (scripts/e2e-tools.sh records it in the tool cache's env.json), for the
// scripts that render pictures with it; $DREAM_CODER_E2E_CHROMIUM wins, /usr/bin/chromium is the fallback.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export function chromiumPath() {
    if (process.env.DREAM_CODER_E2E_CHROMIUM) return process.env.DREAM_CODER_E2E_CHROMIUM;
    const cache = process.env.DREAM_CODER_E2E_CACHE || join(homedir(), ".cache", "dream-coder-e2e");
    try {
        return JSON.parse(readFileSync(join(cache, "env.json"), "utf8")).chromium;
    } catch {
        return "/usr/bin/chromium";
    }
}

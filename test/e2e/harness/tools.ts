// Where the E2E tools are: written by scripts/e2e-tools.sh into $CACHE/env.json.
// Each path can be overridden: DREAM_CODER_E2E_NODE, DREAM_CODER_E2E_CODE_SERVER, DREAM_CODER_E2E_CHROMIUM.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export interface E2ETools {
    /** Node 24 binary that runs code-server. */
    node: string;
    /** code-server's out/node/entry.js. */
    codeServer: string;
    /** Debian's chromium. */
    chromium: string;
}

/** Repository root (this file is compiled to out/test/e2e/harness/). */
export const repoRoot = path.resolve(__dirname, "..", "..", "..", "..");

export function e2eCacheDir(): string {
    return process.env.DREAM_CODER_E2E_CACHE || path.join(os.homedir(), ".cache", "dream-coder-e2e");
}

/** Locates the tools, or throws saying how to install them. */
export function findTools(): E2ETools {
    const envFile = path.join(e2eCacheDir(), "env.json");
    let fromFile: Partial<E2ETools> = {};
    try {
        fromFile = JSON.parse(fs.readFileSync(envFile, "utf8")) as Partial<E2ETools>;
    } catch {
        // fall through to the overrides
    }
    const tools = {
        node: process.env.DREAM_CODER_E2E_NODE || fromFile.node || "",
        codeServer: process.env.DREAM_CODER_E2E_CODE_SERVER || fromFile.codeServer || "",
        chromium: process.env.DREAM_CODER_E2E_CHROMIUM || fromFile.chromium || "/usr/bin/chromium"
    };
    const missing = (Object.keys(tools) as (keyof E2ETools)[]).filter((k) => !tools[k] || !fs.existsSync(tools[k]));
    if (missing.length) {
        throw new Error(`E2E tools missing (${missing.join(", ")}; looked in ${envFile}). Install them with: bash scripts/e2e-tools.sh`);
    }
    return tools;
}

/** True when the tools are installed (for an explicit skip message; tests should normally fail instead). */
export function toolsAvailable(): boolean {
    try {
        findTools();
        return true;
    } catch {
        return false;
    }
}

// The packaged-runtime fill (test/tools/packaged-fill.ts) as the tests use it: bundled into a package's dist/, where it
// finds the addon as the installed extension's dist/server.js does.
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { buildSync } from "esbuild";
import { ADDON_FILE } from "../../server/src/runtime/native";
import { repoRoot } from "./test-models";

/** What packaged-fill prints, as one JSON line. */
export interface PackagedFill {
    tokens: number[];
    text: string;
    /** The backend the editor's status shows, e.g. "CPU (avx512 build)". */
    backend: string;
    /** The addon and OpenMP runtime files the process mapped. */
    mapped: string[];
    /** Why the GPU runtime is not the one running, in the sentence the server logs. */
    fallback?: string;
}

/** Bundles packaged-fill.ts (with the runtime and its dependencies) to `packageRoot`/dist/packaged-fill.js; returns that path. */
export function bundlePackagedFill(packageRoot: string): string {
    const outfile = join(packageRoot, "dist", "packaged-fill.js");
    buildSync({ entryPoints: [join(repoRoot, "test", "tools", "packaged-fill.ts")], bundle: true, platform: "node", outfile, logLevel: "warning" });
    return outfile;
}

/** The hole's tokens from this machine's Node with `addon` ($DREAM_CODER_ADDON; by default this machine's build from
 *  source) and these decoding parameters, by `script` (a bundled packaged-fill): what the other systems' runs are
 *  compared with. */
export function hostTokens(script: string, model: string, params: object, addon = join(repoRoot, ADDON_FILE)): number[] {
    const out = execFileSync(process.execPath, [script, model, JSON.stringify(params)], {
        encoding: "utf8",
        env: { ...process.env, DREAM_CODER_ADDON: addon }
    });
    return (JSON.parse(out) as PackagedFill).tokens;
}

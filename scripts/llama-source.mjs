// llama.cpp's source as this project builds it: node-llama-cpp's bundled git release (offline) with
// native/patches/ applied. build-native.mjs builds from it; gpu-kit.mjs packs it for a bare GPU machine.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
export const llamaPkg = join(root, "node_modules", "node-llama-cpp", "llama");
export const bundle = join(llamaPkg, "gitRelease.bundle");
const patchesDir = join(root, "native", "patches");
/** The patch files, in the order they apply. */
export const patches = readdirSync(patchesDir)
    .filter((f) => f.endsWith(".patch"))
    .sort()
    .map((f) => join(patchesDir, f));

/** Stops the script with a sentence where npm ci has not put the bundle in place. */
export function requireBundle() {
    if (!existsSync(bundle)) {
        console.error(`llama.cpp source bundle not found at ${bundle}: run npm ci first`);
        process.exit(1);
    }
}

/** Clones the bundle into `dest` (absent) and applies the patches. */
export function clonePatchedLlama(dest) {
    execFileSync("git", ["-c", "advice.detachedHead=false", "clone", "--quiet", bundle, dest], { stdio: "inherit" });
    for (const patch of patches) {
        console.log(`applying ${patch.slice(root.length + 1)}`);
        execFileSync("git", ["apply", "--whitespace=nowarn", patch], { cwd: dest, stdio: "inherit" });
    }
}

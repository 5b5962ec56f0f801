// Where the catalog's models (common/catalog.ts) and the user's own model files live on this computer, and the
// sentences for a model setting that cannot be used; pull.ts downloads and converts them.
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, posix, resolve, win32 } from "node:path";
import { CATALOG, type CatalogEntry, catalogEntry } from "../../common/catalog";
import type { CatalogModel } from "../../common/protocol";
import type { Settings } from "../../common/settings";
import { packagedFile } from "./packageFiles";

/** A model setting that cannot be used as it stands; the message says what to do. */
export class ModelSetupError extends Error {
    constructor(
        message: string,
        readonly problem: "no-model" | "not-downloaded" | "model-file"
    ) {
        super(message);
        this.name = "ModelSetupError";
    }
}

/** Dream-Coder's folder in the user's cache (models/ by default, runtime/ for a built runtime): ~/.cache/dream-coder, and
 *  on Windows %LOCALAPPDATA%\dream-coder, where Windows programs keep what is theirs to remake (not roamed with the
 *  profile, unlike %APPDATA%). */
export function cacheDirectory(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env, home = homedir()): string {
    if (platform === "win32") return win32.join(env.LOCALAPPDATA || win32.join(home, "AppData", "Local"), "dream-coder");
    return posix.join(home, ".cache", "dream-coder");
}

export function modelsDirectory(settings: Pick<Settings, "modelsDirectory">): string {
    return settings.modelsDirectory ? expandHome(settings.modelsDirectory) : join(cacheDirectory(), "models");
}

/** Where a catalog model's file is, or will be once downloaded; null for a bundled one the package has lost. */
function expectedPath(entry: CatalogEntry, settings: Pick<Settings, "modelsDirectory">): string | null {
    return entry.bundled ? packagedFile(entry.bundled) : join(modelsDirectory(settings), `${entry.id}.gguf`);
}

/**
 * Where a catalog model's file is, or will be once downloaded. A bundled model's is inside the package; should
 * the package have lost it, the user is told so, not asked to download a model that has no download.
 */
export function catalogPath(entry: CatalogEntry, settings: Pick<Settings, "modelsDirectory">): string {
    const path = expectedPath(entry, settings);
    if (!path) {
        throw new ModelSetupError(
            `${entry.name} comes with the extension, but its file ${entry.bundled} is missing from this installation: reinstall Dream-Coder, or choose another model.`,
            "model-file"
        );
    }
    return path;
}

/** The catalog with each model's file where it is present (downloaded, or bundled), else null. */
export function listCatalog(settings: Pick<Settings, "modelsDirectory">): CatalogModel[] {
    return CATALOG.map((m) => {
        const path = expectedPath(m, settings);
        return { ...m, path: path && existsSync(path) ? path : null };
    });
}

/** The GGUF file a model setting names: a catalog id (downloaded) or a path. */
export function resolveModelPath(settings: Pick<Settings, "model" | "modelsDirectory">): string {
    const model = settings.model;
    if (!model) {
        throw new ModelSetupError("No model is chosen yet: download one, choose a GGUF file, or try the small bundled model.", "no-model");
    }
    const entry = catalogEntry(model);
    if (entry) {
        const path = catalogPath(entry, settings);
        if (!existsSync(path)) {
            throw new ModelSetupError(
                `${entry.name} is not downloaded yet: run "Dream-Coder: Download Model" (or dream-coder models pull ${entry.id}), or set dreamCoder.model to a local GGUF file.`,
                "not-downloaded"
            );
        }
        return path;
    }
    return resolve(expandHome(model));
}

/** ~ as the home folder: ~/models, and on Windows ~\models too. */
export function expandHome(p: string, platform: NodeJS.Platform = process.platform, home = homedir()): string {
    const path = platform === "win32" ? win32 : posix;
    return p === "~" || p.startsWith("~/") || (platform === "win32" && p.startsWith("~\\")) ? path.join(home, p.slice(1)) : p;
}

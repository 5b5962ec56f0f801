// The models a user can pick by name (catalog.json), where their files live, and their download.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { homedir } from "node:os";
import { basename, join, resolve } from "node:path";
import data from "./catalog.json";
import { packagedFile } from "./packageFiles";
import type { CatalogModel } from "./protocol";
import type { Settings } from "./settings";

export type CatalogEntry = Omit<CatalogModel, "path">;

export const CATALOG: readonly CatalogEntry[] = data.models;
/** The catalog's recommended model (its entry says `"recommended": true`): what a user without a setting gets offered. */
export const DEFAULT_MODEL_ID: string = (CATALOG.find((m) => m.recommended) ?? CATALOG[0]).id;

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

export function modelsDirectory(settings: Pick<Settings, "modelsDirectory">): string {
    return settings.modelsDirectory ? expandHome(settings.modelsDirectory) : join(homedir(), ".cache", "dream-coder", "models");
}

export function catalogEntry(id: string): CatalogEntry | undefined {
    return CATALOG.find((m) => m.id === id);
}

/** The bundled model (its entry has `"bundled"`): the small one this project trains (train/), the CLI's default. */
export const BUNDLED_MODEL_ID: string = CATALOG.find((m) => m.bundled)!.id;

/** Where a catalog model's file is, or will be once downloaded; null for a bundled one the package has lost. */
function expectedPath(entry: CatalogEntry, settings: Pick<Settings, "modelsDirectory">): string | null {
    return entry.bundled ? packagedFile(entry.bundled) : join(modelsDirectory(settings), `${entry.id}.gguf`);
}

/**
 * Where a catalog model's file is, or will be once downloaded. A bundled model's is inside the package; should
 * the package have lost it, the user is told so, not asked to download a model that has no download.
 */
function catalogPath(entry: CatalogEntry, settings: Pick<Settings, "modelsDirectory">): string {
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
        throw new ModelSetupError(
            `No model is set. Choose one with "Dream-Coder: Select Model" or set dreamCoder.model to a GGUF file or one of: ${CATALOG.map((m) => m.id).join(", ")}.`,
            "no-model"
        );
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

export interface DownloadProgress {
    downloadedBytes: number;
    totalBytes: number;
}

/**
 * Downloads a catalog model (or any hf:/https: GGUF address) with node-llama-cpp's downloader into `dir` as
 * `fileName`. The file is written under a temporary name and renamed when complete, so a cut download is never
 * loaded; running it again resumes from what was written.
 */
export async function downloadModel(
    uri: string,
    dir: string,
    fileName: string,
    options: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal } = {}
): Promise<string> {
    const { createModelDownloader } = await import("node-llama-cpp");
    await mkdir(dir, { recursive: true });
    const downloader = await createModelDownloader({
        modelUri: uri,
        dirPath: dir,
        fileName,
        skipExisting: true,
        deleteTempFileOnCancel: false,
        onProgress: (s) => options.onProgress?.({ downloadedBytes: s.downloadedSize, totalBytes: s.totalSize })
    });
    const abort = () => void downloader.cancel({ deleteTempFile: false });
    options.signal?.addEventListener("abort", abort);
    try {
        const path = await downloader.download();
        if (options.signal?.aborted) throw new Error("the download was cancelled; running it again resumes it");
        return path;
    } finally {
        options.signal?.removeEventListener("abort", abort);
    }
}

function expandHome(p: string): string {
    return p === "~" || p.startsWith("~/") ? join(homedir(), p.slice(1)) : p;
}

/** Makes a catalog model's file present: downloads it (resuming) into the models directory, or finds the bundled one. */
export async function pullModel(
    entry: CatalogEntry,
    settings: Pick<Settings, "modelsDirectory">,
    options: { onProgress?: (p: DownloadProgress) => void; signal?: AbortSignal } = {}
): Promise<string> {
    const path = catalogPath(entry, settings);
    return entry.bundled ? path : downloadModel(entry.uri, modelsDirectory(settings), basename(path), options);
}

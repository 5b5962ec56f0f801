// The models a user can pick by name (catalog.json), as both the extension and the language server read them.
import data from "./catalog.json";
import type { CatalogModel } from "./protocol";

export type CatalogEntry = Omit<CatalogModel, "path">;

export const CATALOG: readonly CatalogEntry[] = data.models as CatalogEntry[];
/** The catalog's recommended model (its entry says `"recommended": true`): what a user without a setting gets offered. */
export const DEFAULT_MODEL_ID: string = (CATALOG.find((m) => m.recommended) ?? CATALOG[0]).id;

export function catalogEntry(id: string): CatalogEntry | undefined {
    return CATALOG.find((m) => m.id === id);
}

/** The bundled model (its entry has `"bundled"`): the small one this project trains (train/), the CLI's default. */
export const BUNDLED_MODEL_ID: string = CATALOG.find((m) => m.bundled)!.id;

/** How a catalog model comes to this machine, in words: its GGUF, or its checkpoint converted here. */
export function modelRoute(m: Pick<CatalogEntry, "bundled" | "gguf" | "checkpoint">): string {
    if (m.bundled) return "comes with the extension";
    const convert = m.checkpoint && `converted on this machine from ${m.checkpoint.repo} (a ${(m.checkpoint.sizeBytes / 1e9).toFixed(1)} GB download)`;
    if (!m.gguf) return convert ?? "no download";
    return `GGUF ${m.gguf.repo}/${m.gguf.file}${convert ? `; should it be gone, ${convert}` : ""}`;
}

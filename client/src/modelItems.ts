// What the model pickers say about each catalog model: the recommended one, the download size and the memory a
// model needs. No vscode import, so that a unit test (test/server/model-items.test.ts) can check the words.
import catalog from "../../common/catalog.json";
import { modelRoute } from "../../common/catalog";
import type { CatalogModel } from "../../common/protocol";

/** Memory a run needs besides the model file (which is mapped whole): the KV cache and llama.cpp's compute buffer
 * at the default 1,024-token context — about 0.24 GB and 0.6 GB for a 7B model with a 152k vocabulary (docs/speed.md). */
export const RUN_OVERHEAD_BYTES = 1e9;
/** From this much memory on, the pickers warn (every 7B/8B model of the catalog). */
export const WARN_MEMORY_BYTES = 4e9;

const gb = (bytes: number): string => (bytes / 1e9).toFixed(1);

/** Whole gigabytes of free memory a model needs, rounded up: RAM, or GPU memory with every layer on the GPU. */
export function memoryNeededGB(m: Pick<CatalogModel, "sizeBytes">): number {
    return Math.ceil((m.sizeBytes + RUN_OVERHEAD_BYTES) / 1e9);
}

/** "Needs about 6 GB of free memory …", with a warning sign for large models. */
export function memoryNote(m: Pick<CatalogModel, "sizeBytes">): string {
    const note = `Needs about ${memoryNeededGB(m)} GB of free memory`;
    return m.sizeBytes + RUN_OVERHEAD_BYTES >= WARN_MEMORY_BYTES ? `$(warning) ${note}` : note;
}

/** What getting a model takes: a GGUF download, or a checkpoint download converted into a smaller file here. */
function downloadSize(m: Omit<CatalogModel, "path">): string {
    if (m.gguf) return `${gb(m.gguf.sizeBytes)} GB download`;
    return m.checkpoint ? `${gb(m.checkpoint.sizeBytes)} GB download, converted here to ${gb(m.sizeBytes)} GB` : "";
}

export interface ModelItem {
    label: string;
    description?: string;
    detail: string;
    id: string;
}

/** The Download Model… picker's rows: recommended first-class, the download size, the memory warning, the address. */
export function downloadItems(models: readonly CatalogModel[]): ModelItem[] {
    // A bundled model has nothing to download.
    return models
        .filter((m) => !m.bundled)
        .map((m) => ({
            label: m.recommended ? `$(star-full) ${m.name}` : m.name,
            description: [m.recommended ? "recommended" : undefined, m.path ? "downloaded" : downloadSize(m)].filter(Boolean).join(" · "),
            detail: `${memoryNote(m)} · ${modelRoute(m)}`,
            id: m.id
        }));
}

/** The Select Model… picker's catalog rows: current / default / recommended, where the file is or what it takes. */
export function selectItems(models: readonly CatalogModel[], current: string, selected: string): ModelItem[] {
    return models.map((m) => ({
        label: m.recommended ? `$(star-full) ${m.name}` : m.name,
        description:
            [m.id === current ? "current" : m.id === selected && !current ? "default" : undefined, m.recommended ? "recommended" : undefined]
                .filter(Boolean)
                .join(" · ") || undefined,
        detail: m.bundled
            ? `Bundled with the extension: a small Python-only model to try the features on, not an assistant · ${memoryNote(m)}`
            : m.path
              ? `Downloaded: ${m.path} · ${memoryNote(m)}`
              : `Not downloaded (${downloadSize(m)}) · ${memoryNote(m)}`,
        id: m.id
    }));
}

/** The catalog's recommended model (the entry with `"recommended": true`). */
export function recommendedModel(models: readonly Omit<CatalogModel, "path">[] = catalog.models as Omit<CatalogModel, "path">[]): Omit<CatalogModel, "path"> {
    return models.find((m) => m.recommended) ?? models[0];
}

/** The model that ships inside the extension (the entry with `"bundled"`). */
export function bundledModel(models: readonly Omit<CatalogModel, "path">[] = catalog.models as Omit<CatalogModel, "path">[]): Omit<CatalogModel, "path"> {
    return models.find((m) => m.bundled)!;
}

/** The first-run notification's text: the recommended model, its download size and the memory it needs. */
export function firstModelOffer(m: Omit<CatalogModel, "path"> = recommendedModel()): string {
    const download = m.gguf
        ? `about ${gb(m.sizeBytes)} GB`
        : `a ${gb(m.checkpoint?.sizeBytes ?? 0)} GB checkpoint, converted on this machine to a ${gb(m.sizeBytes)} GB file`;
    return `Dream-Coder needs a diffusion model. Download the recommended ${m.name}: ${download}, and it needs about ${memoryNeededGB(m)} GB of free memory. Or use a GGUF file you have, or try the small Python model that comes with the extension.`;
}

// The model pickers' words (client/src/modelItems.ts): the catalog's recommended model is marked, and every 7B/8B
// model warns how much memory it needs, computed from its file size.
import assert from "node:assert/strict";
import { test } from "node:test";
import { bundledModel, downloadItems, firstModelOffer, memoryNeededGB, recommendedModel, selectItems } from "../../client/src/modelItems";
import { BUNDLED_MODEL_ID, CATALOG, DEFAULT_MODEL_ID } from "../../common/catalog";
import type { CatalogModel } from "../../common/protocol";

const models: CatalogModel[] = CATALOG.map((m, i) => ({ ...m, path: i === 1 ? "/models/dream-7b-instruct.gguf" : null }));

test("the catalog recommends exactly one model, Dream-Coder 7B Instruct, which is also the default", () => {
    assert.deepEqual(
        CATALOG.filter((m) => m.recommended).map((m) => m.id),
        ["dream-coder-7b-instruct"]
    );
    assert.equal(DEFAULT_MODEL_ID, "dream-coder-7b-instruct");
    // The first-run offer's "Try the Bundled Model" and the CLI's default name the same entry.
    assert.equal(bundledModel().id, BUNDLED_MODEL_ID);
    assert.equal(BUNDLED_MODEL_ID, "dream-mini-py");
});

test("Download Model…: the recommended model is marked and every 7B model warns about memory; the bundled one is not offered", () => {
    const items = downloadItems(models);
    assert.deepEqual(
        items.map((i) => i.id),
        CATALOG.filter((m) => !m.bundled).map((m) => m.id)
    );
    assert.ok(!items.some((i) => i.id === "dream-mini-py"), "nothing to download");
    const recommended = items.filter((i) => i.description?.includes("recommended"));
    assert.deepEqual(
        recommended.map((i) => i.id),
        ["dream-coder-7b-instruct"]
    );
    assert.match(recommended[0].label, /^\$\(star-full\) Dream-Coder v0 Instruct 7B/);
    assert.equal(items[0].description, "recommended · 15.2 GB download, converted here to 4.7 GB");
    assert.equal(items[1].description, "downloaded");
    for (const item of items) {
        assert.match(item.detail, /^\$\(warning\) Needs about [67] GB of free memory · (GGUF |converted on this machine from )[\w-]+\//, item.detail);
    }
    assert.match(items[0].detail, /converted on this machine from Dream-org\/Dream-Coder-v0-Instruct-7B \(a 15\.2 GB download\)$/);
    assert.match(items[1].detail, /GGUF bartowski\/.*; should it be gone, converted on this machine from Dream-org\/Dream-v0-Instruct-7B/);
    assert.equal(memoryNeededGB({ sizeBytes: 4.68e9 }), 6, "a 4.7 GB file plus the context's caches");
    assert.equal(memoryNeededGB({ sizeBytes: 0.5e9 }), 2);
    assert.doesNotMatch(downloadItems([{ ...models[0], sizeBytes: 1e9, recommended: false }])[0].detail, /warning/, "a small model gets no warning sign");
});

test("Select Model…: current, default and recommended; where the file is or what it takes", () => {
    const unset = selectItems(models, "", "dream-coder-7b-instruct");
    assert.equal(unset[0].description, "default · recommended");
    assert.equal(unset[2].description, undefined);
    assert.match(unset[0].detail, /^Not downloaded \(15\.2 GB download, converted here to 4\.7 GB\) · \$\(warning\) Needs about 6 GB/);
    assert.match(unset[1].detail, /^Downloaded: \/models\/dream-7b-instruct\.gguf · /);
    const chosen = selectItems(models, "diffucoder-7b", "diffucoder-7b");
    assert.deepEqual(
        chosen.map((i) => i.description),
        ["recommended", undefined, "current", undefined, undefined, undefined, undefined]
    );
    const bundled = unset.find((i) => i.id === "dream-mini-py")!;
    assert.match(bundled.detail, /^Bundled with the extension: a small Python-only model .* · Needs about 2 GB of free memory$/);
});

test("the first-run offer names the recommended model, its size and the memory it needs", () => {
    assert.equal(recommendedModel().id, "dream-coder-7b-instruct");
    assert.equal(
        firstModelOffer(),
        "Dream-Coder needs a diffusion model. Download the recommended Dream-Coder v0 Instruct 7B (Q4_K_M): a 15.2 GB checkpoint, converted on this machine to a 4.7 GB file, and it needs about 6 GB of free memory. Or use a GGUF file you have, or try the small Python model that comes with the extension."
    );
});

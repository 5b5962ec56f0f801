// Settings and model resolution: wrong values are reported and replaced by defaults; a model setting that
// cannot be used says what to do.
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CATALOG, ModelSetupError, resolveModelPath } from "../../server/src/catalog";
import { DEFAULT_SETTINGS, inlineEnabled, readSettings } from "../../server/src/settings";

test("known keys override the defaults; wrong values are reported and the default kept", () => {
    const { settings, problems } = readSettings({
        model: " /models/a.gguf ",
        threads: 2,
        steps: -3,
        algorithm: "sideways",
        cache: "everything",
        cacheReuse: "yes",
        holes: { marker: "<hole>", defaultTokens: "many" },
        inlineCompletion: { enable: { "*": true, markdown: false } }
    });
    assert.equal(settings.model, "/models/a.gguf");
    assert.equal(settings.threads, 2);
    assert.equal(settings.steps, DEFAULT_SETTINGS.steps);
    assert.equal(settings.algorithm, DEFAULT_SETTINGS.algorithm);
    assert.equal(settings.holes.marker, "<hole>");
    assert.equal(settings.holes.defaultTokens, DEFAULT_SETTINGS.holes.defaultTokens);
    assert.equal(settings.cache, "dual");
    assert.equal(settings.cacheReuse, true);
    assert.equal(readSettings({ cacheReuse: false }).settings.cacheReuse, false);
    assert.equal(problems.length, 5);
    assert.ok(problems.some((p) => p.message === "dreamCoder.cacheReuse: \"yes\" is not valid (true or false)"));
    assert.ok(problems.some((p) => p.message === "dreamCoder.algorithm: \"sideways\" is not valid (one of origin, maskgit_plus, topk_margin, entropy)"));
    assert.equal(inlineEnabled(settings.inlineCompletion.enable, "markdown"), false);
    assert.equal(inlineEnabled(settings.inlineCompletion.enable, "python"), true);
    assert.deepEqual(readSettings(null), { settings: DEFAULT_SETTINGS, problems: [] });
});

test("rules between settings: origin reveals at random, so a confidence threshold is refused in the settings' words", () => {
    const { settings, problems } = readSettings({ algorithm: "origin", confidenceThreshold: 0.9 });
    assert.equal(settings.algorithm, "origin");
    assert.equal(settings.confidenceThreshold, 0);
    assert.deepEqual(problems.map((p) => p.message), [
        'dreamCoder.confidenceThreshold: 0.9 needs an algorithm that ranks by confidence (maskgit_plus, topk_margin or entropy), not dreamCoder.algorithm "origin"; using 0'
    ]);
    assert.deepEqual(readSettings({ algorithm: "maskgit_plus", confidenceThreshold: 0.9 }).problems, []);
});

test("a model setting names a path or a downloaded catalog model, or says what to do", () => {
    const dir = mkdtempSync(join(tmpdir(), "dream-coder-models-"));
    assert.throws(() => resolveModelPath({ model: "", modelsDirectory: dir }), (e: Error) => e instanceof ModelSetupError && /No model is set/.test(e.message));
    const id = CATALOG[0].id;
    assert.throws(
        () => resolveModelPath({ model: id, modelsDirectory: dir }),
        (e: Error) => e instanceof ModelSetupError && e.message.includes("not downloaded") && e.message.includes(`dream-coder models pull ${id}`)
    );
    writeFileSync(join(dir, `${id}.gguf`), "");
    assert.equal(resolveModelPath({ model: id, modelsDirectory: dir }), join(dir, `${id}.gguf`));
    assert.equal(resolveModelPath({ model: "rel/x.gguf", modelsDirectory: dir }), join(process.cwd(), "rel/x.gguf"));
});

test("the catalog lists the four model families, each with an address and a size", () => {
    assert.deepEqual(CATALOG.map((m) => m.id), ["dream-coder-7b-instruct", "dream-7b-instruct", "diffucoder-7b", "llada-8b-instruct"]);
    for (const m of CATALOG) {
        assert.match(m.uri, /^hf:[\w.-]+\/[\w.-]+:Q4_K_M$/);
        assert.ok(m.sizeBytes > 1e9);
    }
});

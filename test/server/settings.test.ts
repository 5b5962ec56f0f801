// Settings and model resolution: wrong values are reported and replaced by defaults; a model setting that
// cannot be used says what to do.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CATALOG } from "../../common/catalog";
import { cacheDirectory, expandHome, ModelSetupError, resolveModelPath } from "../../server/src/modelPaths";
import { DECLARED, DEFAULT_SETTINGS, inlineEnabled, readSettings } from "../../common/settings";
import { repoRoot } from "../tools/test-models";

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
    assert.ok(problems.some((p) => p.message === 'dreamCoder.cacheReuse: "yes" is not valid (true or false)'));
    assert.ok(problems.some((p) => p.message === 'dreamCoder.algorithm: "sideways" is not valid (one of origin, maskgit_plus, topk_margin, entropy)'));
    assert.equal(inlineEnabled(settings.inlineCompletion.enable, "markdown"), false);
    assert.equal(inlineEnabled(settings.inlineCompletion.enable, "python"), true);
    assert.deepEqual(readSettings(null), { settings: DEFAULT_SETTINGS, problems: [] });
});

test("where the model runs: gpuLayers is auto or a count, device auto, cpu or a Vulkan device by number", () => {
    assert.equal(DEFAULT_SETTINGS.gpuLayers, "auto");
    assert.equal(DEFAULT_SETTINGS.device, "auto");
    assert.deepEqual(readSettings({ gpuLayers: -1, device: "Vulkan1" }), { settings: { ...DEFAULT_SETTINGS, gpuLayers: -1, device: "Vulkan1" }, problems: [] });
    const { settings, problems } = readSettings({ gpuLayers: "all", device: "cuda" });
    assert.equal(settings.gpuLayers, "auto");
    assert.equal(settings.device, "auto");
    assert.deepEqual(
        problems.map((p) => p.message),
        [
            'dreamCoder.gpuLayers: "all" is not valid ("auto", or a whole number of at least -1)',
            'dreamCoder.device: "cuda" is not valid (auto, cpu, or Vulkan followed by a device number (Vulkan0))'
        ]
    );
    assert.equal(readSettings({ gpuLayers: -2 }).problems.length, 1);
});

test("rules between settings: origin reveals at random, so a confidence threshold is refused in the settings' words", () => {
    const { settings, problems } = readSettings({ algorithm: "origin", confidenceThreshold: 0.9 });
    assert.equal(settings.algorithm, "origin");
    assert.equal(settings.confidenceThreshold, 0);
    assert.deepEqual(
        problems.map((p) => p.message),
        [
            'dreamCoder.confidenceThreshold: 0.9 needs an algorithm that ranks by confidence (maskgit_plus, topk_margin or entropy), not dreamCoder.algorithm "origin"'
        ]
    );
    assert.deepEqual(
        problems.map((p) => p.fallback),
        [0],
        "the server adds what it uses instead (server.ts: every problem's fallback)"
    );
    assert.deepEqual(readSettings({ algorithm: "maskgit_plus", confidenceThreshold: 0.9 }).problems, []);
});

test("each setting is declared once, in package.json: the reader reads every declared key, the README lists it", () => {
    // The leaves of the settings object, as dotted keys ("holes.marker"); inlineCompletion.enable is one value.
    const leaves = (o: Record<string, unknown>, prefix = ""): string[] =>
        Object.entries(o).flatMap(([k, v]) =>
            typeof v === "object" && v !== null && !Array.isArray(v) && `${prefix}${k}` !== "inlineCompletion.enable"
                ? leaves(v as Record<string, unknown>, `${prefix}${k}.`)
                : [`${prefix}${k}`]
        );
    assert.deepEqual(leaves(DEFAULT_SETTINGS as unknown as Record<string, unknown>).sort(), Object.keys(DECLARED).sort());
    // Every declared value other than the default is read (a key the reader skipped would come back as the default).
    // Where the rule below gives no valid other value: a pattern's string, the other type of a union.
    const OTHER: Record<string, unknown> = { device: "cpu", gpuLayers: 0 };
    for (const [key, d] of Object.entries(DECLARED)) {
        const other =
            key in OTHER
                ? OTHER[key]
                : d.enum
                  ? d.enum.find((e) => e !== d.default)
                  : d.type === "boolean"
                    ? !d.default
                    : d.type === "string"
                      ? `x${String(d.default)}`
                      : d.type === "object"
                        ? { python: false }
                        : (d.maximum ?? (d.default as number) + 1);
        const raw = key.split(".").reduceRight<unknown>((v, part) => ({ [part]: v }), other);
        const { settings, problems } = readSettings(raw);
        assert.deepEqual(problems, [], key);
        const got = key.split(".").reduce<unknown>((o, part) => (o as Record<string, unknown>)[part], settings);
        assert.deepEqual(got, other, `dreamCoder.${key} is read`);
    }
    assert.deepEqual(readSettings(DEFAULT_SETTINGS).problems, [], "the declared defaults pass their own checks");
    const readme = readFileSync(`${repoRoot}/README.md`, "utf8");
    const table = readme.slice(readme.indexOf("| setting | default | meaning |"));
    const rows = table.slice(0, table.indexOf("\n\n")).split("\n");
    // Each row: its keys (`a`, `b` or `group.a`, `.b`) and its defaults in the same order, each perhaps followed by
    // a note in parentheses ("at most N" must be the declared maximum).
    const listed = new Map<string, string>();
    for (const row of rows.slice(2)) {
        const [keyCell, defaultCell] = row.split(" | ").map((c) => c.replace(/^\| /, ""));
        let group = "";
        const keys = [...keyCell.matchAll(/`([\w.]+)`/g)].map((m) => {
            if (m[1].startsWith(".")) return group + m[1];
            group = m[1].includes(".") ? m[1].slice(0, m[1].lastIndexOf(".")) : "";
            return m[1];
        });
        const values = defaultCell.split(/, (?![^({]*[)}])/);
        assert.equal(values.length, keys.length, `README's settings row ${keyCell}: one default per setting`);
        for (const [i, k] of keys.entries()) listed.set(k, values[i]);
    }
    for (const [key, d] of Object.entries(DECLARED)) {
        const cell = listed.get(key);
        assert.ok(cell !== undefined, `README's settings table lists dreamCoder.${key}`);
        const [, value, note] = /^(.*?)(?: \((.*)\))?$/.exec(cell)!;
        const shown = value.replace(/^`(.*)`$/, "$1");
        const parsed = typeof d.default === "string" ? (shown === '""' ? "" : shown) : JSON.parse(shown);
        assert.deepEqual(parsed, d.default, `README's default of dreamCoder.${key} is the declared one`);
        const most = note && /at most (\d+)/.exec(note);
        if (most) assert.equal(Number(most[1]), d.maximum, `README's maximum of dreamCoder.${key} is the declared one`);
    }
});

test("a model setting names a path or a downloaded catalog model, or says what to do", () => {
    const dir = mkdtempSync(join(tmpdir(), "dream-coder-models-"));
    assert.throws(
        () => resolveModelPath({ model: "", modelsDirectory: dir }),
        (e: Error) => e instanceof ModelSetupError && /No model is chosen yet/.test(e.message)
    );
    const id = CATALOG[0].id;
    assert.throws(
        () => resolveModelPath({ model: id, modelsDirectory: dir }),
        (e: Error) => e instanceof ModelSetupError && e.message.includes("not downloaded") && e.message.includes(`dream-coder models pull ${id}`)
    );
    writeFileSync(join(dir, `${id}.gguf`), "");
    assert.equal(resolveModelPath({ model: id, modelsDirectory: dir }), join(dir, `${id}.gguf`));
    assert.equal(resolveModelPath({ model: "rel/x.gguf", modelsDirectory: dir }), join(process.cwd(), "rel/x.gguf"));
});

test("the cache folder (models, built runtimes): ~/.cache/dream-coder, on Windows %LOCALAPPDATA%\\dream-coder", () => {
    assert.equal(cacheDirectory("linux", {}, "/home/ada"), "/home/ada/.cache/dream-coder");
    assert.equal(cacheDirectory("darwin", { LOCALAPPDATA: "ignored" }, "/Users/ada"), "/Users/ada/.cache/dream-coder");
    assert.equal(cacheDirectory("win32", { LOCALAPPDATA: "D:\\Profiles\\ada\\Local" }, "C:\\Users\\ada"), "D:\\Profiles\\ada\\Local\\dream-coder");
    // Without the variable (a service's environment): where Windows puts it in a profile.
    assert.equal(cacheDirectory("win32", {}, "C:\\Users\\ada"), "C:\\Users\\ada\\AppData\\Local\\dream-coder");
    assert.equal(expandHome("~/models", "linux", "/home/ada"), "/home/ada/models");
    assert.equal(expandHome("~\\models", "linux", "/home/ada"), "~\\models", "a backslash is part of a Linux file name");
    for (const p of ["~/models", "~\\models"]) assert.equal(expandHome(p, "win32", "C:\\Users\\ada"), "C:\\Users\\ada\\models");
});

test("the catalog: every downloadable entry names the authors' checkpoint, says how it is known, and the recommended one converts", () => {
    assert.deepEqual(
        CATALOG.map((m) => m.id),
        ["dream-coder-7b-instruct", "dream-7b-instruct", "diffucoder-7b", "diffucoder-7b-instruct", "llada-8b-instruct", "dreamon-7b", "dream-mini-py"]
    );
    for (const m of CATALOG.filter((m) => !m.bundled)) {
        assert.match(m.checkpoint?.repo ?? "", /^[\w.-]+\/[\w.-]+$/, m.id);
        assert.ok(m.checkpoint!.sizeBytes > m.sizeBytes && m.sizeBytes > 1e9, m.id);
        if (m.gguf) assert.match(m.gguf.file, /Q4_K_M\.gguf$/, m.id);
        assert.ok(m.known.length > 40, `${m.id} says how its sources are known`);
    }
    // The model the product is named for comes through the route that certainly exists: its authors' checkpoint.
    const recommended = CATALOG.find((m) => m.recommended)!;
    assert.equal(recommended.gguf, undefined);
    assert.equal(recommended.checkpoint?.repo, "Dream-org/Dream-Coder-v0-Instruct-7B");
    // The bundled model is found in the package whatever the models directory, and its size is the file's.
    const path = resolveModelPath({ model: "dream-mini-py", modelsDirectory: mkdtempSync(join(tmpdir(), "models-")) });
    assert.equal(path, join(repoRoot, "models", "dream-mini-py-q8_0.gguf"));
    const size = statSync(path).size;
    const declared = CATALOG.find((m) => m.bundled)!.sizeBytes;
    assert.ok(Math.abs(size - declared) / size < 0.05, `catalog says ${declared} bytes, the file has ${size}`);
});

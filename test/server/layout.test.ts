// The boundary between the programs, as the layout shows it: the extension (client/) and the language server
// (server/) share only common/ (the protocol, the catalog, the settings' reader, the decoding words); the server never
// loads VS Code's API; common/ depends on neither side; and no module imports itself back through others.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../tools/test-models";

interface Import {
    from: string;
    spec: string;
    /** The repository-relative file a relative import names; undefined for a package. */
    target?: string;
    /** `import type`: gone at run time. */
    typeOnly: boolean;
}

function sources(dir: string): string[] {
    return readdirSync(join(repoRoot, dir), { recursive: true, encoding: "utf8" })
        .filter((f) => f.endsWith(".ts"))
        .map((f) => join(dir, f));
}

function importsOf(file: string): Import[] {
    const text = readFileSync(join(repoRoot, file), "utf8");
    const found: Import[] = [];
    for (const m of text.matchAll(/^\s*(?:import|export)\s+(type\s+)?(?:[^;"']*?\s+from\s+)?"([^"]+)"/gm)) {
        const spec = m[2];
        let target: string | undefined;
        if (spec.startsWith(".")) {
            const base = resolve(repoRoot, dirname(file), spec);
            const hit = [base, `${base}.ts`, join(base, "index.ts")].find((p) => statSync(p, { throwIfNoEntry: false })?.isFile());
            assert.ok(hit, `${file}: ${spec} names no file`);
            target = relative(repoRoot, hit);
        }
        found.push({ from: file, spec, target, typeOnly: m[1] !== undefined });
    }
    return found;
}

const CLIENT = sources("client/src").flatMap(importsOf);
const SERVER = sources("server/src").flatMap(importsOf);
const COMMON = sources("common").flatMap(importsOf);

test("the layout's programs import what the boundary allows", () => {
    assert.ok(CLIENT.length > 20 && SERVER.length > 100 && COMMON.length >= 3, "the scan found the imports");
    const crossing = (imports: Import[], allowed: string[]) =>
        imports.filter((i) => i.target !== undefined && !allowed.some((a) => i.target!.startsWith(a))).map((i) => `${i.from} imports ${i.spec}`);
    assert.deepEqual(crossing(CLIENT, ["client/", "common/", "package.json"]), [], "the extension imports only itself and common/");
    assert.deepEqual(
        crossing(SERVER, ["server/", "common/", "native/", "package.json"]),
        [],
        "the server imports only itself, common/ and the native build's descriptions"
    );
    assert.deepEqual(crossing(COMMON, ["common/", "package.json"]), [], "common/ imports only itself");
    const named = (imports: Import[], packages: RegExp) => imports.filter((i) => packages.test(i.spec)).map((i) => `${i.from} imports ${i.spec}`);
    assert.deepEqual(named(SERVER, /^vscode$/), [], "the server runs without VS Code (the CLI, the HTTP clients)");
    assert.deepEqual(named(COMMON, /^(vscode|vscode-languageclient.*|vscode-languageserver(\/.*)?|node:.*)$/), [], "common/ loads in either program");
});

test("no module imports itself back through others (a cycle runs half-loaded modules at load)", () => {
    const edges = new Map<string, string[]>();
    for (const i of [...CLIENT, ...SERVER, ...COMMON]) {
        if (i.target?.endsWith(".ts") && !i.typeOnly) edges.set(i.from, [...(edges.get(i.from) ?? []), i.target]);
    }
    assert.ok(edges.size > 30, `${edges.size} modules import others`);
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const path: string[] = [];
    const visit = (file: string) => {
        state.set(file, "open");
        path.push(file);
        for (const next of edges.get(file) ?? []) {
            if (state.get(next) === "open") cycles.push([...path.slice(path.indexOf(next)), next].join(" → "));
            else if (!state.has(next)) visit(next);
        }
        path.pop();
        state.set(file, "done");
    };
    for (const file of edges.keys()) if (!state.has(file)) visit(file);
    assert.deepEqual(cycles, []);
});

// The win32-x64 package's runtime (scripts/build-native.mjs --target win32-x64: MinGW-w64, cross-compiled here) run by
// the official Windows Node.js under Wine (scripts/cross-tools.sh installs both): the decoder gives Linux's tokens, the
// addons load in a host that is not node.exe (VS Code's Code.exe), an installed package finds its build through the CPU
// probe, and the command line and the language server work there. Wine gives node.exe no usable pipe (EBADF), so
// output goes through files and the language server talks over a socket.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type LanguageServerProcess, startLanguageServer } from "../../server/src/cli/lspClient";
import { ADDON_FILE, cpuProbeFile, packagedAddonFile } from "../../server/src/runtime/native";
import { applyTextEdits } from "../server/apply-edits";
import { type CrossTools, completeAndFill, crossTools } from "../tools/cross";
import { bundlePackagedFill, hostTokens, type PackagedFill } from "../tools/packaged";
import { quantizedTestModel, repoRoot, testModel } from "../tools/test-models";

const TARGET = "win32-x64";
const inRepo = (file: string) => join(repoRoot, file);
const ADDON = inRepo(packagedAddonFile("portable", TARGET));
const PROBE = inRepo(cpuProbeFile(TARGET));
/** The path Windows programs under Wine see for a path here (Wine's drive Z: is /). */
const winPath = (path: string) => `Z:${path.replaceAll("/", "\\")}`;

let tools: CrossTools;
let repoFill = ""; // packaged-fill outside any package: for runs that name their addon
let packageRoot = ""; // a win32-x64 package's runtime and dist/ (the tests' bundled script and the server)
let codeExe = ""; // Windows' node.exe copied as Code.exe, alone in its folder, as VS Code's host is

/** Runs Windows' node.exe (or `exe`, a copy of it) under Wine; its last line of output parsed as JSON when it exits
 *  with 0 and printed any. */
function onWindows<T>(args: string[], env: Record<string, string | undefined> = {}, exe = tools.nodeWin) {
    const dir = mkdtempSync(join(tmpdir(), "dream-coder-wine-"));
    const [stdout, stderr] = ["stdout", "stderr"].map((name) => openSync(join(dir, name), "w"));
    const r = spawnSync("wine", [exe, ...args], {
        stdio: ["ignore", stdout, stderr],
        env: { ...process.env, WINEPREFIX: tools.winePrefix, WINEDEBUG: "-all", ...env },
        timeout: 600_000
    });
    closeSync(stdout);
    closeSync(stderr);
    const [out, err] = ["stdout", "stderr"].map((name) => readFileSync(join(dir, name), "utf8"));
    rmSync(dir, { recursive: true });
    const json = r.status === 0 && out.trim() ? (JSON.parse(out.trim().split("\n").at(-1) ?? "") as T) : undefined;
    return { status: r.status, signal: r.signal, stdout: out, stderr: err, json };
}

describe("the win32-x64 runtime under Wine", { skip: process.arch !== "x64" && "Wine runs x86-64 Windows programs on x86-64 only" }, () => {
    before(() => {
        tools = crossTools();
        for (const target of [["--target", TARGET], []])
            execFileSync(process.execPath, [join(repoRoot, "scripts", "build-native.mjs"), ...target, "--cpu", "portable"], {
                stdio: "ignore",
                timeout: 1_800_000
            });
        repoFill = bundlePackagedFill(mkdtempSync(join(tmpdir(), "dream-coder-fill-")));
        // The package's layout: dist/ and its target's runtime only, copied (a .vsix has no links).
        packageRoot = mkdtempSync(join(tmpdir(), "dream-coder-win32-package-"));
        bundlePackagedFill(packageRoot);
        copyFileSync(inRepo("dist/server.js"), join(packageRoot, "dist", "server.js"));
        copyFileSync(inRepo("package.json"), join(packageRoot, "package.json"));
        for (const file of [packagedAddonFile("portable", TARGET), cpuProbeFile(TARGET)]) {
            mkdirSync(dirname(join(packageRoot, file)), { recursive: true });
            copyFileSync(inRepo(file), join(packageRoot, file));
        }
        codeExe = join(mkdtempSync(join(tmpdir(), "dream-coder-code-")), "Code.exe");
        copyFileSync(tools.nodeWin, codeExe);
    });

    it("the addons need only Windows' own DLLs: the C++ runtime, threads and OpenMP are linked in", () => {
        for (const file of [ADDON, PROBE]) {
            const headers = execFileSync("x86_64-w64-mingw32-objdump", ["-p", file], { encoding: "utf8", maxBuffer: 1 << 26 });
            const dlls = [...headers.matchAll(/DLL Name: (\S+)/g)].map((m) => m[1]).sort();
            // msvcrt.dll is MinGW-w64's C runtime, part of every Windows since XP. node.exe is not among them: the
            // Node-API functions are delay-loaded from the host process (the next test).
            assert.deepEqual(
                dlls.filter((d) => !["ADVAPI32.dll", "KERNEL32.dll", "msvcrt.dll"].includes(d)),
                [],
                `${file} imports ${dlls.join(", ")}`
            );
        }
    });

    it("an installed package in a host that is not node.exe (VS Code's Code.exe) loads the portable build through the CPU probe", () => {
        const r = onWindows<PackagedFill>(
            [winPath(join(packageRoot, "dist", "packaged-fill.js")), winPath(quantizedTestModel("Q8_0"))],
            { DREAM_CODER_ADDON: undefined },
            codeExe
        );
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.json?.backend, "CPU (portable build)");
        assert.deepEqual(r.json?.mapped, [winPath(join(packageRoot, packagedAddonFile("portable", TARGET)))]);
        assert.deepEqual(
            r.json?.tokens,
            hostTokens(repoFill, quantizedTestModel("Q8_0"), {}, inRepo(packagedAddonFile("portable"))),
            "Linux's portable build's tokens"
        );
    });

    it("exact decoding and the dual cache give Linux's tokens: F32 as this machine's build, Q8_0 and Q4_0 as Linux's portable build", () => {
        const f32 = testModel({ arch: "dream" });
        const exact = { cache: "none", schedule: "timestep" };
        for (const [name, model, params, linux] of [
            ["F32, exact", f32, exact, inRepo(ADDON_FILE)],
            ["F32, dual cache", f32, {}, inRepo(ADDON_FILE)],
            ["Q8_0, exact", quantizedTestModel("Q8_0"), exact, inRepo(packagedAddonFile("portable"))],
            ["Q4_0, dual cache", quantizedTestModel("Q4_0"), {}, inRepo(packagedAddonFile("portable"))]
        ] as const) {
            const r = onWindows<PackagedFill>([winPath(repoFill), winPath(model), JSON.stringify(params)], { DREAM_CODER_ADDON: winPath(ADDON) });
            assert.equal(r.status, 0, `${name}: ${r.stderr}${r.stdout}`);
            assert.equal(r.json?.tokens.length, 8, name);
            assert.deepEqual(r.json?.tokens, hostTokens(repoFill, model, params, linux), name);
        }
    });

    it("the CLI fills a CRLF file in place, keeping its line breaks", () => {
        const file = join(mkdtempSync(join(tmpdir(), "dream-coder-win32-cli-")), "mean.py");
        const [head, tail] = ["def mean(xs):\r\n    return ", "\r\n\r\nprint(mean([1, 2]))\r\n"];
        writeFileSync(file, `${head}???:6${tail}`);
        const cli = winPath(inRepo("out/server/src/cli/main.js"));
        const r = onWindows([cli, "fill", winPath(file), "--in-place", "--model", winPath(quantizedTestModel("Q8_0")), "--threads", "1"], {
            DREAM_CODER_ADDON: winPath(ADDON),
            DREAM_CODER_MODEL: ""
        });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /1 edit applied/);
        const after = readFileSync(file, "utf8");
        assert.ok(after.startsWith(head) && after.endsWith(tail) && !after.includes("???"), JSON.stringify(after));
        assert.ok(!/(^|[^\r])\n/.test(after), `no bare LF: ${JSON.stringify(after)}`);
    });

    describe("the package's language server, in Code.exe over a socket", () => {
        let server: LanguageServerProcess;
        let output = "";
        before(async () => {
            output = mkdtempSync(join(tmpdir(), "dream-coder-win32-server-"));
            const [stdout, stderr] = ["stdout", "stderr"].map((name) => openSync(join(output, name), "w"));
            server = await startLanguageServer(
                { model: winPath(quantizedTestModel("Q8_0")), threads: 1, inlineCompletion: { debounceMs: 0, lineTokens: 8 } },
                winPath(join(packageRoot, "dist", "server.js")),
                {
                    execPath: "wine",
                    execArgv: [codeExe],
                    env: { ...process.env, WINEPREFIX: tools.winePrefix, WINEDEBUG: "-all", DREAM_CODER_ADDON: undefined },
                    socket: { stdout, stderr }
                }
            );
            closeSync(stdout);
            closeSync(stderr);
        });
        after(async () => {
            await server?.stop();
        });

        it("answers an inline completion and a fill in a CRLF document", async () => {
            const { text, suggestion, fill } = await completeAndFill(server, "file:///c%3A/work/crlf.py", "\r\n");
            assert.ok((suggestion ?? "").length > 0, "a suggestion");
            assert.equal(fill.holes, 1);
            assert.equal(fill.edits.length, 1);
            const filled = applyTextEdits(text, fill.edits);
            assert.ok(
                filled.startsWith("def add(a, b):\r\n    return ") && filled.endsWith("\r\n\r\ndef twice(x):\r\n    return \r\n"),
                JSON.stringify(filled)
            );
            assert.ok(!filled.includes("???"));
            assert.ok(
                server.statuses.some((s) => s.backend?.includes("portable build")),
                `${JSON.stringify(server.statuses.at(-1))}; server output: ${readFileSync(join(output, "stderr"), "utf8")}`
            );
        });
    });
});

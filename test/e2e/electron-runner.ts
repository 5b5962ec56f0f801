// The same in-host suite in desktop VS Code through @vscode/test-electron, for machines that can download VS
// Code from Microsoft (it cannot here: these machines reach only npm and Debian; CI uses code-server instead).
//   npm run test:electron          (after npm run setup)
import { join } from "node:path";
import { runTests } from "@vscode/test-electron";
import { testModel } from "../tools/test-models";
import { repoRoot } from "./harness/tools";
import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";

async function main(): Promise<void> {
    const userData = mkdtempSync(join(tmpdir(), "dream-coder-electron-"));
    mkdirSync(join(userData, "User"), { recursive: true });
    writeFileSync(
        join(userData, "User", "settings.json"),
        JSON.stringify({
            "dreamCoder.model": testModel({ arch: "dream" }),
            "dreamCoder.threads": 1,
            "dreamCoder.inlineCompletion.debounceMs": 0,
            "dreamCoder.inlineCompletion.lineTokens": 8,
            "dreamCoder.sketch.tokens": 48,
            "editor.quickSuggestions": { other: false, comments: false, strings: false }
        })
    );
    await runTests({
        extensionDevelopmentPath: repoRoot,
        extensionTestsPath: join(repoRoot, "out", "test", "e2e", "suite", "index.js"),
        launchArgs: ["--user-data-dir", userData, "--disable-extensions", "--disable-workspace-trust"]
    });
}

main().catch((e: Error) => {
    process.stderr.write(`electron E2E: ${e.message}\n`);
    process.exit(1);
});

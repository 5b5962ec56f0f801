// The same in-host suite in desktop VS Code through @vscode/test-electron, for machines that can download VS
// Code from Microsoft (it cannot here: these machines reach only npm and Debian; CI uses code-server instead).
//   npm run test:electron          (after npm run setup)
import { join } from "node:path";
import { runTests } from "@vscode/test-electron";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { SUITE_INDEX, withSuiteHub } from "./extension-suite";
import { writeUserSettings } from "./harness/code-server";
import { repoRoot } from "./harness/tools";

async function main(): Promise<void> {
    const userData = mkdtempSync(join(tmpdir(), "dream-coder-electron-"));
    await withSuiteHub(async ({ env, settings }) => {
        writeUserSettings(userData, settings);
        await runTests({
            extensionDevelopmentPath: repoRoot,
            extensionTestsPath: SUITE_INDEX,
            launchArgs: ["--user-data-dir", userData, "--disable-extensions", "--disable-workspace-trust"],
            extensionTestsEnv: env
        });
    });
}

main().catch((e: Error) => {
    process.stderr.write(`electron E2E: ${e.message}\n`);
    process.exit(1);
});

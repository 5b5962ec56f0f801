// Runs inside the extension host: the body of an extensionTestsPath module's run().
// Usage (in the suite's index.ts):  export function run() { return runMocha({ files: [...] }); }
// Keep this file free of playwright/harness imports: it is loaded by the extension host.
/// <reference types="mocha" />
import * as path from "node:path";

export interface RunMochaOptions {
    /** Absolute paths of compiled spec files (*.spec.js). */
    files: string[];
    /** Per-test timeout in ms. Default 20 s. */
    timeoutMs?: number;
    /** Only tests whose full title matches (also from env DREAM_CODER_E2E_GREP). */
    grep?: string;
}

/** Loads mocha's CommonJS build (mocha 12's main entry is ESM). */
function loadMocha(): typeof import("mocha") {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require("mocha/lib/mocha.cjs") as typeof import("mocha");
}

/** Resolves when every test passed; rejects (→ exit code 1) when any failed or none ran. */
export function runMocha(options: RunMochaOptions): Promise<void> {
    const Mocha = loadMocha();
    const mocha = new Mocha({ ui: "bdd", color: false, reporter: "spec", timeout: options.timeoutMs ?? 20_000 });
    const grep = options.grep ?? process.env.DREAM_CODER_E2E_GREP;
    if (grep) mocha.grep(grep);
    for (const file of options.files) mocha.addFile(path.resolve(file));
    return new Promise((resolve, reject) => {
        try {
            const runner = mocha.run((failures) => {
                const stats = runner.stats;
                const summary = `in-host mocha: ${stats?.passes ?? "?"} passing, ${failures} failing, ${stats?.pending ?? 0} pending`;
                console.log(summary);
                if (failures > 0) reject(new Error(summary));
                else if (!stats || stats.tests === 0) reject(new Error("in-host mocha: no tests ran"));
                else resolve();
            });
            runner.on("fail", (t, err) => console.log(`FAIL ${t.fullTitle()}: ${(err as Error)?.stack ?? err}`));
        } catch (err) {
            console.error(err);
            reject(err instanceof Error ? err : new Error(String(err)));
        }
    });
}

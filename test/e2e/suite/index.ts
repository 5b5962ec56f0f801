// The in-host suite's entry point: the extension host loads this module (extensionTestsPath) and calls run().
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { runMocha } from "../harness/mocha-run";

export function run(): Promise<void> {
    const files = readdirSync(__dirname)
        .filter((f) => f.endsWith(".spec.js"))
        .sort()
        .map((f) => join(__dirname, f));
    return runMocha({ files, timeoutMs: 120_000 });
}

// extensionTestsPath module that MUST fail: proves a failing in-host test reaches the runner as exit code 1.
import * as path from "node:path";
import { runMocha } from "../mocha-run";

export function run(): Promise<void> {
    return runMocha({ files: [path.join(__dirname, "failing.spec.js")], timeoutMs: 20_000 });
}

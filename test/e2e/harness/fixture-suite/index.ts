// extensionTestsPath module for the harness self-test: runs the passing fixture spec in the extension host.
import * as path from "node:path";
import { runMocha } from "../mocha-run";

export function run(): Promise<void> {
    return runMocha({ files: [path.join(__dirname, "fixture.spec.js")], timeoutMs: 20_000 });
}

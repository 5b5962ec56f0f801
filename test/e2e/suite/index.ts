// The in-host suite's entry point: the extension host loads this module (extensionTestsPath) and calls run().
// Mocha runs every *.spec.js beside it against the real `vscode` API.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import Mocha from "mocha";

export function run(): Promise<void> {
    const mocha = new Mocha({ ui: "tdd", timeout: 120_000, color: false, reporter: "spec" });
    for (const f of readdirSync(__dirname).filter((f) => f.endsWith(".spec.js")).sort()) mocha.addFile(join(__dirname, f));
    return new Promise((resolve, reject) => {
        mocha.run((failures) => (failures > 0 ? reject(new Error(`${failures} in-host test(s) failed`)) : resolve()));
    });
}

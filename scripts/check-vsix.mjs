#!/usr/bin/env node
// node scripts/check-vsix.mjs FILE.vsix TARGET: fails unless the package carries exactly TARGET's runtime files
// (server/src/runtime/native.ts packageRuntimeFiles), the runtime builder's source archive, and is marked for TARGET.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";

const [vsix, target] = process.argv.slice(2);
const require = createRequire(import.meta.url);
const { packageRuntimeFiles } = require("../out/server/src/runtime/native.js");
const { RUNTIME_SOURCE_FILE } = require("../out/server/src/builder/source.js");
const zip = (code) => execFileSync("python3", ["-c", `import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); ${code}`, vsix], { encoding: "utf8" });
const native = zip("print('\\n'.join(n for n in z.namelist()))")
    .split("\n")
    .filter((n) => n.startsWith("extension/native/"))
    .map((n) => n.slice("extension/".length))
    .sort();
const expected = [...packageRuntimeFiles(target), RUNTIME_SOURCE_FILE].sort();
const problems = [
    ...expected.filter((f) => !native.includes(f)).map((f) => `lacks ${f}`),
    ...native.filter((f) => !expected.includes(f)).map((f) => `carries ${f}, which is not ${target}'s`)
];
if (!zip("print(z.read('extension.vsixmanifest').decode())").includes(`TargetPlatform="${target}"`)) problems.push(`is not marked for ${target}`);
if (problems.length) {
    console.error(`${vsix} ${problems.join("; ")}`);
    process.exit(1);
}
console.log(`${vsix}: ${target}'s runtime (${native.length} file${native.length === 1 ? "" : "s"} under native/), checked`);

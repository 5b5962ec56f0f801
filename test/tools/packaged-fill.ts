// Fills a hole with the runtime as an installed .vsix finds it (bundled into a package's dist/ by
// test/tools/packaged.ts) and prints a PackagedFill as one JSON line: run on emulated CPUs by
// test/native/portable.test.ts and arm64.test.ts, on other systems by test/e2e/vsix.test.ts, and by Windows' Node
// under Wine by test/native/windows.test.ts.
//   node DIST/packaged-fill.js MODEL.gguf [DECODE_PARAMS_JSON]   (by default the dual cache, maskgit_plus)
import { readFileSync } from "node:fs";
import { loadRuntime } from "../../server/src/runtime/native";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import type { PackagedFill } from "./packaged";

(async () => {
    const model = await DiffusionModel.load(process.argv[2], { threads: 1 });
    const params = { cache: "dual", schedule: "block", algorithm: "maskgit_plus", ...JSON.parse(process.argv[3] ?? "{}") };
    const r = await model.decode(["def mean(xs):\n    return ", { hole: 8 }, "\n"], params);
    // Linux: the files behind the process's mappings (links resolved). Windows has no /proc: the modules Node's
    // diagnostic report lists (EnumProcessModules), by the paths they were loaded from.
    const modules =
        process.platform === "linux"
            ? (readFileSync("/proc/self/maps", "utf8").match(/\/\S+/g) ?? [])
            : (process.report.getReport() as { sharedObjects: string[] }).sharedObjects;
    const mapped = modules.filter((f) => /(libgomp|dream_native)[^/\\]*$/.test(f));
    const out: PackagedFill = {
        tokens: r.holes[0].tokens,
        text: r.holes[0].text,
        backend: model.runsOn.backend,
        mapped: [...new Set(mapped)].sort(),
        fallback: loadRuntime().fallback
    };
    console.log(JSON.stringify(out));
    model.dispose();
})().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
});

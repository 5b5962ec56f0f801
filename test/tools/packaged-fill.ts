// Fills a hole with the runtime as an installed .vsix finds it (bundled into a package's dist/ by
// test/tools/packaged.ts) and prints a PackagedFill as one JSON line: run on emulated CPUs by
// test/native/portable.test.ts and on other systems by test/e2e/vsix.test.ts.
//   node DIST/packaged-fill.js MODEL.gguf
import { readFileSync } from "node:fs";
import { loadRuntime } from "../../server/src/runtime/native";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import type { PackagedFill } from "./packaged";

(async () => {
    const model = await DiffusionModel.load(process.argv[2], { threads: 1 });
    const r = await model.decode(["def mean(xs):\n    return ", { hole: 8 }, "\n"], { cache: "dual", schedule: "block", algorithm: "maskgit_plus" });
    const mapped = readFileSync("/proc/self/maps", "utf8").match(/\/\S*(libgomp|dream_native)\S*/g) ?? [];
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

// Fills a hole with the runtime as an installed .vsix finds it: test/e2e/vsix.test.ts bundles this file into the
// extracted package's dist/ (beside dist/server.js, which finds its addon the same way) and runs it on other
// systems. Prints the hole's text and the backend, then the runtime files the process mapped.
import { readFileSync } from "node:fs";
import { DiffusionModel } from "../../server/src/runtime/runtime";

(async () => {
    const model = await DiffusionModel.load(process.argv[2], { threads: 1 });
    const r = await model.decode(["def mean(xs):\n    return ", { hole: 8 }, "\n"], { cache: "dual", schedule: "block", algorithm: "maskgit_plus" });
    console.log(`${JSON.stringify(r.holes[0].text)} ${DiffusionModel.backend()}`);
    const mapped = readFileSync("/proc/self/maps", "utf8").match(/\/\S*(libgomp|dream_native)\S*/g) ?? [];
    console.log([...new Set(mapped)].join(" "));
    model.dispose();
})().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
});

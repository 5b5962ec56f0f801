// Loads the runtime that $DREAM_CODER_ADDON names (a runtime the builder made, in test/native/runtime-builder.test.ts)
// in a process of its own, fills a hole greedily in exact mode and prints one JSON line: the tokens, the text, the
// place it runs on (runsOn: the GPU's name when layers went there), and the devices the addon sees.
//   DREAM_CODER_ADDON=.../dream_native.node node out/test/tools/built-runtime-fill.js MODEL.gguf [GPU_LAYERS]
import { loadAddon } from "../../server/src/runtime/native";
import { DiffusionModel } from "../../server/src/runtime/runtime";

export interface BuiltRuntimeFill {
    tokens: number[];
    text: string;
    backend: string;
    gpu?: string;
    devices: { name: string; description: string; type: string }[];
}

(async () => {
    const model = await DiffusionModel.load(process.argv[2], { threads: 2, gpuLayers: Number(process.argv[3] ?? 0) });
    const r = await model.decode(["def mean(xs):\n    return ", { hole: 8 }, "\n"], { cache: "none", algorithm: "maskgit_plus" });
    const out: BuiltRuntimeFill = { tokens: r.holes[0].tokens, text: r.holes[0].text, ...model.runsOn, devices: loadAddon().devices() };
    console.log(JSON.stringify(out));
    model.dispose();
})().catch((e: Error) => {
    console.error(`error: ${e.message}`);
    process.exit(1);
});

// Prints the path of a generated test model (writing it first if needed): the offline demo (docs/building.md, "The main job") and
// benchmarks use it as a stand-in for a real model. Its weights are random, so its output is noise.
//   node out/test/tools/make-test-model.js [dream|llada]
import { standInModel } from "./test-models";

const arch = (process.argv[2] ?? "dream") as "dream" | "llada";
if (arch !== "dream" && arch !== "llada") {
    process.stderr.write(`make-test-model: unknown architecture "${process.argv[2]}" (dream or llada)\n`);
    process.exit(2);
}
process.stdout.write(`${standInModel(arch)}\n`);

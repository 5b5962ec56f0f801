// Variable-length holes on the generated models: they know no expand or delete token, so tests name two tokens the
// model often predicts at masks; then expand and delete fire, and holes grow and shrink.
import assert from "node:assert/strict";
import type { DiffusionModel } from "../../server/src/runtime/runtime";
import { testModel } from "./test-models";

/** The two tokens the model predicts most often at masks (a fixed-length decode), most frequent first. */
export async function frequentTokens(model: DiffusionModel): Promise<[number, number]> {
    const counts = new Map<number, number>();
    const r = await model.decode(["let x = ", { hole: 24 }, ";\n", { hole: 24 }], { steps: 8 });
    for (const t of r.holes.flatMap((h) => h.tokens)) counts.set(t, (counts.get(t) ?? 0) + 1);
    const [first, second] = [...counts].filter(([t]) => !model.isEndToken(t)).sort((a, b) => b[1] - a[1]);
    assert.ok(second, "the model predicts at least two tokens");
    return [first[0], second[0]];
}

/** Ordinary tokens of the generated models' vocabulary, declared expand and delete by growingTestModel(). */
const EXPAND = 300;
const DELETE = 301;

/** The generated dream model with metadata that declares two of its tokens expand and delete
 *  (diffusion.expand_token_id / delete_token_id, as our converter writes them), their output rows scaled up so that
 *  the model predicts them often: its holes grow, and sometimes shrink. */
export function growingTestModel(): { path: string; expand: number; del: number } {
    const path = testModel({
        arch: "dream",
        rowScales: { [EXPAND]: 10, [DELETE]: 3 },
        overrides: { "diffusion.expand_token_id": { type: "u32", value: EXPAND }, "diffusion.delete_token_id": { type: "u32", value: DELETE } }
    });
    return { path, expand: EXPAND, del: DELETE };
}

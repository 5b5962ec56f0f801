// The generated dream and llada models, loaded once per test file (1 thread) and freed after it.
import { after, before } from "node:test";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { testModel } from "../tools/test-models";

export interface LoadedModels {
    dream: DiffusionModel;
    llada: DiffusionModel;
}

export function useTestModels(): LoadedModels {
    const models = {} as LoadedModels;
    before(async () => {
        models.dream = await DiffusionModel.load(testModel({ arch: "dream" }), { threads: 1 });
        models.llada = await DiffusionModel.load(testModel({ arch: "llada" }), { threads: 1 });
    });
    after(async () => {
        await models.dream?.dispose();
        await models.llada?.dispose();
    });
    return models;
}

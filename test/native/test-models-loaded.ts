// The generated dream and llada models, and their quantized kin, loaded once per test file (1 thread) and freed after it.
import { after, before } from "node:test";
import { DiffusionModel } from "../../server/src/runtime/runtime";
import { QUANT_TYPES, quantizedTestModel, testModel, type QuantType } from "../tools/test-models";

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

/** The generated dream model quantized by llama-quantize to each type users download. */
export function useQuantizedModels(): Record<QuantType, DiffusionModel> {
    const models = {} as Record<QuantType, DiffusionModel>;
    before(async () => {
        for (const type of QUANT_TYPES) models[type] = await DiffusionModel.load(quantizedTestModel(type), { threads: 1 });
    });
    after(async () => {
        for (const type of QUANT_TYPES) await models[type]?.dispose();
    });
    return models;
}

// What convert_hf_to_gguf.py's classes for our architectures write (conversion/base.py TextModel, conversion/dream.py
// DreamModel, conversion/llada.py LLaDAModel): the architecture's metadata keys with their types and order, the
// tensor names (gguf-py/gguf/tensor_mapping.py, for the names these checkpoints use) and LLaDA's q/k un-permute.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { CheckpointError } from "./checkpointError";
import type { GgufKvValue } from "./gguf";

export type Architecture = "dream" | "llada";
export type Hparams = Record<string, unknown>;

/** config.json's `architectures[0]` of each checkpoint class we convert, and the GGUF architecture it becomes. */
export const HF_ARCHITECTURES: Record<string, Architecture> = { DreamModel: "dream", LLaDAModelLM: "llada" };

/** Metadata in insertion order; setting a key again keeps its place and takes the new value, as gguf-py's dict does. */
export class KvList extends Map<string, GgufKvValue> {
    u32(key: string, v: unknown, what: string): void {
        this.set(key, { type: "u32", value: wholeNumber(v, what) });
    }

    f32(key: string, v: unknown, what: string): void {
        if (typeof v !== "number") throw new CheckpointError(`config.json's ${what} is ${JSON.stringify(v)}, not a number: the checkpoint's config is damaged`);
        this.set(key, { type: "f32", value: v });
    }

    bool(key: string, v: boolean): void {
        this.set(key, { type: "bool", value: v });
    }

    str(key: string, v: string): void {
        if (v) this.set(key, { type: "string", value: v });
    }
}

function wholeNumber(v: unknown, what: string): number {
    if (typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 2 ** 32) return v;
    throw new CheckpointError(`config.json's ${what} is ${JSON.stringify(v)}, not a whole number: the checkpoint's config is damaged`);
}

/** TextModel.find_hparam: the value of the first of `keys` the config has (which may be null), and its name. */
function findHparam(h: Hparams, keys: string[]): [unknown, string] | undefined {
    const key = keys.find((k) => k in h);
    return key === undefined ? undefined : [h[key], key];
}

function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The layer count, as TextModel reads it. */
export function blockCount(h: Hparams): number {
    const found = findHparam(h, ["n_layers", "num_hidden_layers", "n_layer", "num_layers"]);
    if (!found) throw new CheckpointError("config.json names no layer count (num_hidden_layers or n_layers): the checkpoint's config is damaged");
    return wholeNumber(found[0], found[1]);
}

/** TextModel.set_gguf_parameters: the keys every text model writes. */
function textModelParameters(kv: KvList, arch: Architecture, h: Hparams, fileType: number): void {
    const optional = (keys: string[], write: (v: unknown, key: string) => void) => {
        const found = findHparam(h, keys);
        if (found && found[0] !== null && found[0] !== undefined) write(found[0], found[1]);
    };
    kv.u32(`${arch}.block_count`, blockCount(h), "layer count");
    optional(["max_position_embeddings", "n_ctx", "n_positions", "max_length", "max_sequence_length", "model_max_length"], (v, k) =>
        kv.u32(`${arch}.context_length`, v, k)
    );
    optional(["hidden_size", "n_embd", "dim"], (v, k) => kv.u32(`${arch}.embedding_length`, v, k));
    optional(["prefix_dense_intermediate_size", "dense_intermediate_size", "intermediate_size", "n_inner", "hidden_dim"], (v, k) =>
        kv.u32(`${arch}.feed_forward_length`, v, k)
    );
    optional(["num_attention_heads", "n_head", "n_heads"], (v, k) => kv.u32(`${arch}.attention.head_count`, v, k));
    optional(["num_key_value_heads", "n_kv_heads"], (v, k) => kv.u32(`${arch}.attention.head_count_kv`, v, k));
    if (h.is_causal === false) kv.bool(`${arch}.attention.causal`, false);

    // TextModel.__init__'s rope_parameters: rope_parameters or rope_scaling, with the global values mirrored in.
    const ropeSource = "rope_parameters" in h ? h.rope_parameters : h.rope_scaling;
    const rope: Record<string, unknown> = isObject(ropeSource) ? { ...ropeSource } : {};
    const ropeTheta = findHparam(h, ["global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"]);
    const localTheta = findHparam(h, ["local_rope_theta", "rope_local_theta", "rope_theta_local", "swa_rope_theta", "rope_local_base_freq"]);
    if ("full_attention" in rope || "sliding_attention" in rope || (localTheta && localTheta[0] !== null) || "mrope_section" in rope) {
        throw new CheckpointError(
            "this checkpoint uses per-layer or multimodal rotary embeddings, which Dream and LLaDA checkpoints do not: it is not a model this converter supports"
        );
    }
    if (!("rope_theta" in rope) && ropeTheta && ropeTheta[0] !== null) rope.rope_theta = ropeTheta[0];
    if (!("rope_type" in rope) && rope.type !== undefined && rope.type !== null) rope.rope_type = rope.type;
    for (const key of ["partial_rotary_factor", "original_max_position_embeddings"]) {
        const keys = key === "partial_rotary_factor" ? ["partial_rotary_factor", "rope_pct", "rope_percent"] : [key];
        const found = findHparam(h, keys);
        if (!(key in rope) && found && found[0] !== null) rope[key] = found[0];
    }
    const ropeType = rope.rope_type;
    if (ropeType !== undefined && ropeType !== null) {
        const factor = rope.factor;
        const hasFactor = factor !== undefined && factor !== null;
        if (ropeType === "linear" && hasFactor) {
            kv.str(`${arch}.rope.scaling.type`, "linear");
            kv.f32(`${arch}.rope.scaling.factor`, factor, "rope_scaling.factor");
        } else if (ropeType === "yarn" && hasFactor) {
            kv.str(`${arch}.rope.scaling.type`, "yarn");
            kv.f32(`${arch}.rope.scaling.factor`, factor, "rope_scaling.factor");
            kv.u32(`${arch}.rope.scaling.original_context_length`, rope.original_max_position_embeddings, "rope_scaling.original_max_position_embeddings");
            const yarn: [string, unknown][] = [
                ["yarn_ext_factor", rope.extrapolation_factor],
                ["yarn_attn_factor", rope.attention_factor ?? rope.attn_factor],
                ["yarn_beta_fast", rope.beta_fast],
                ["yarn_beta_slow", rope.beta_slow]
            ];
            for (const [name, v] of yarn) if (v !== undefined && v !== null) kv.f32(`${arch}.rope.scaling.${name}`, v, `rope_scaling.${name}`);
        } else if (ropeType === "su" || ropeType === "longrope") {
            kv.str(`${arch}.rope.scaling.type`, "longrope");
        }
        // Other types ("default", "dynamic", "llama3") add no keys in these classes.
    }
    if (rope.rope_theta !== undefined && rope.rope_theta !== null) kv.f32(`${arch}.rope.freq_base`, rope.rope_theta, "rope_theta");
    optional(["rms_norm_eps", "norm_eps"], (v, k) => kv.f32(`${arch}.attention.layer_norm_rms_epsilon`, v, k));
    optional(["layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"], (v, k) => kv.f32(`${arch}.attention.layer_norm_epsilon`, v, k));
    optional(["num_local_experts", "num_experts", "n_routed_experts"], (v, k) => kv.u32(`${arch}.expert_count`, v, k));
    optional(["num_experts_per_tok", "num_experts_per_token", "top_k_experts"], (v, k) => kv.u32(`${arch}.expert_used_count`, v, k));
    if ((h.n_group ?? null) !== null || (h.topk_group ?? null) !== null) {
        throw new CheckpointError(
            "this checkpoint uses grouped expert routing, which Dream and LLaDA checkpoints do not: it is not a model this converter supports"
        );
    }
    optional(["score_function", "scoring_func", "score_func", "moe_router_activation", "moe_router_activation_func", "expert_selection_fn"], (v) => {
        const gating: Record<string, number> = { softmax: 1, sigmoid: 2, sqrtsoftplus: 4 };
        if (typeof v !== "string" || !(v in gating))
            throw new CheckpointError(`config.json's expert scoring function ${JSON.stringify(v)} is not one llama.cpp supports`);
        kv.u32(`${arch}.expert_gating_func`, gating[v], "score function");
    });
    if (h.head_dim !== undefined && h.head_dim !== null) {
        kv.u32(`${arch}.attention.key_length`, h.head_dim, "head_dim");
        kv.u32(`${arch}.attention.value_length`, h.head_dim, "head_dim");
    }
    kv.u32("general.file_type", fileType, "file type");
}

/** TextModel._try_set_pooling_type: a sentence-transformers folder's pooling (modules.json), which these rarely have. */
async function poolingType(kv: KvList, arch: Architecture, dir: string): Promise<void> {
    let modules: unknown;
    try {
        modules = JSON.parse(await readFile(join(dir, "modules.json"), "utf8"));
    } catch {
        return;
    }
    const pooling = Array.isArray(modules) ? modules.find((m) => isObject(m) && typeof m.type === "string" && m.type.endsWith("Pooling")) : undefined;
    if (!pooling) return;
    let config: Record<string, unknown> = {};
    try {
        config = JSON.parse(await readFile(join(dir, String(pooling.path), "config.json"), "utf8"));
    } catch {
        throw new CheckpointError(`${join(dir, String(pooling.path), "config.json")} is missing or not JSON: download the checkpoint again`);
    }
    const modes: Record<string, number> = { mean: 1, cls: 2, lasttoken: 3 };
    const type = config.pooling_mode_mean_tokens
        ? 1
        : config.pooling_mode_cls_token
          ? 2
          : config.pooling_mode_lasttoken
            ? 3
            : typeof config.pooling_mode === "string"
              ? modes[config.pooling_mode]
              : undefined;
    if (type === undefined) throw new CheckpointError("the checkpoint's pooling is not mean, cls or last-token, the ones llama.cpp supports");
    kv.u32(`${arch}.pooling_type`, type, "pooling type");
}

/** set_gguf_parameters of DreamModel or LLaDAModel: the architecture's keys, after general.*. */
export async function architectureParameters(kv: KvList, arch: Architecture, h: Hparams, dir: string, fileType: number): Promise<void> {
    textModelParameters(kv, arch, h, fileType);
    await poolingType(kv, arch, dir);
    if (arch === "dream") {
        kv.bool("dream.attention.causal", false); // diffusion: non-causal attention
        if (h.mask_token_id !== undefined && h.mask_token_id !== null) kv.u32("tokenizer.ggml.mask_token_id", h.mask_token_id, "mask_token_id");
        return;
    }
    kv.u32("llada.vocab_size", h.vocab_size, "vocab_size");
    let ropeDim = h.head_dim;
    if (ropeDim === undefined || ropeDim === null) {
        const heads = h.num_attention_heads ?? h.n_heads;
        const width = h.hidden_size ?? h.d_model;
        ropeDim = Math.floor(wholeNumber(width, "d_model") / wholeNumber(heads, "n_heads"));
    }
    kv.u32("llada.rope.dimension_count", ropeDim, "head_dim");
    kv.u32("llada.context_length", h.max_sequence_length ?? 4096, "max_sequence_length");
    kv.u32("llada.embedding_length", h.d_model ?? 4096, "d_model");
    kv.u32("llada.feed_forward_length", h.mlp_hidden_size ?? 12288, "mlp_hidden_size");
    kv.bool("llada.attention.causal", false);
    kv.bool("diffusion.shift_logits", false); // LLaDA predicts each masked position itself
}

// ---- Tensor names: tensor_mapping.py's entries for the names Dream (Qwen2 layout) and LLaDA checkpoints use.

const DREAM_BLOCK: Record<string, string> = {
    input_layernorm: "attn_norm",
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    post_attention_layernorm: "ffn_norm",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down"
};
const LLADA_BLOCK: Record<string, string> = {
    attn_norm: "attn_norm",
    q_proj: "attn_q",
    k_proj: "attn_k",
    v_proj: "attn_v",
    attn_out: "attn_output",
    ff_norm: "ffn_norm",
    ff_proj: "ffn_gate",
    up_proj: "ffn_up",
    ff_out: "ffn_down"
};
const NAMES: Record<Architecture, { global: Record<string, string>; blockPrefix: string; block: Record<string, string> }> = {
    dream: { global: { "model.embed_tokens": "token_embd", "model.norm": "output_norm", lm_head: "output" }, blockPrefix: "model.layers.", block: DREAM_BLOCK },
    llada: {
        global: { "model.transformer.wte": "token_embd", "model.transformer.ln_f": "output_norm", "model.transformer.ff_out": "output" },
        blockPrefix: "model.transformer.blocks.",
        block: LLADA_BLOCK
    }
};

/** Checkpoint tensors the converter drops (prepare_tensors' list). */
export function isSkippedTensor(name: string): boolean {
    return name.endsWith(".attention.masked_bias") || name.endsWith(".attention.bias") || name.endsWith(".rotary_emb.inv_freq");
}

/** The GGUF name of a checkpoint tensor (map_tensor_name), or a CheckpointError as the Python converter's "Can not map tensor". */
export function ggufTensorName(arch: Architecture, name: string, blocks: number): string {
    const suffix = [".weight", ".bias"].find((s) => name.endsWith(s));
    const base = suffix ? name.slice(0, -suffix.length) : name;
    const names = NAMES[arch];
    let mapped = names.global[base];
    if (mapped === undefined && base.startsWith(names.blockPrefix)) {
        const m = /^(\d+)\.(.+)$/.exec(base.slice(names.blockPrefix.length));
        if (m && Number(m[1]) < blocks && String(Number(m[1])) === m[1] && names.block[m[2]] !== undefined) mapped = `blk.${m[1]}.${names.block[m[2]]}`;
    }
    if (mapped === undefined) {
        throw new CheckpointError(`the checkpoint has a tensor ${name} that a ${arch} model does not have: it is not a ${arch} checkpoint llama.cpp can run`);
    }
    return mapped + (suffix ?? "");
}

/** LLaDA stores q and k with the rotary halves of each head interleaved; its converter un-permutes them by heads. */
export function permuteHeads(arch: Architecture, name: string, h: Hparams): number | undefined {
    if (arch !== "llada") return undefined;
    const heads = wholeNumber(h.num_attention_heads ?? h.n_heads, "n_heads");
    if (/q_proj\.(weight|bias)$/.test(name)) return heads;
    if (/k_proj\.(weight|bias)$/.test(name)) {
        const kv = h.num_key_value_heads ?? h.n_kv_heads;
        return kv === undefined || kv === null ? heads : wholeNumber(kv, "n_kv_heads");
    }
    return undefined;
}

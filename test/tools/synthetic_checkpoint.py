"""Writes a Hugging Face checkpoint folder with random weights, laid out as a real one, for the converter's tests.

    train/.venv/bin/python test/tools/synthetic_checkpoint.py --shape dream-coder-7b --out DIR
        [--vocab-json] [--dreamon] [--size small|large] [--config JSON] [--shards N] [--seed N]

Shapes:
  dream-coder-7b  Dream-Coder-v0-Instruct-7B's config.json values (DreamModel, bf16) with the widths shrunk, and
                  synthetic_tokenizer.py's dream-coder layout (tokenizer.json, or with --vocab-json the slow
                  tokenizer's vocab.json, merges.txt and added_tokens.json that Dream's repositories ship; with
                  --dreamon, DreamOn's <|expand|> and <|delete|> added after Dream's tokens, as DreamOn's checkpoint)
  llada-8b        LLaDA-8B-Instruct's config.json layout (LLaDAModelLM, bf16) with the widths shrunk, and
                  synthetic_tokenizer.py's llada layout
  dream-mini      the tiny Dream checkpoint this project's training pipeline writes (train/export.py's write_hf:
                  float32, one model.safetensors), from a randomly initialized train/model.py and a tokenizer trained
                  by train/tokenizer.py on this repository's Python

Every shape but dream-mini is sharded into --shards safetensors files with model.safetensors.index.json, and gets a
README.md model card with YAML front matter and a generation_config.json like the real repository's. --size large
widens the model to a few hundred MB for the memory and speed measurements; --config overrides any config.json value.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from synthetic_tokenizer import write_layout  # noqa: E402 (found through the sys.path entry above)

# Dream-Coder-v0-Instruct-7B's config.json (Dream-org/Dream-Coder-v0-Instruct-7B) with its widths (hidden 3584,
# intermediate 18944, 28 layers, 28 heads, 4 KV heads) replaced by SHRUNK below.
DREAM_CODER_7B = {
    "_name_or_path": "Dream-org/Dream-Coder-v0-Instruct-7B",
    "architectures": ["DreamModel"],
    "attention_dropout": 0.0,
    "auto_map": {"AutoConfig": "configuration_dream.DreamConfig", "AutoModel": "modeling_dream.DreamModel"},
    "bos_token_id": 151665,
    "eos_token_id": 151643,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "mask_token_id": 151666,
    "max_position_embeddings": 131072,
    "max_window_layers": 28,
    "model_type": "Dream",
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "pad_token_id": 151643,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.46.2",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 152064,
}
DREAM_SHRUNK = {
    "small": {"hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2},
    "large": {"hidden_size": 1024, "intermediate_size": 2816, "num_hidden_layers": 6, "num_attention_heads": 16, "num_key_value_heads": 4},
}
DREAM_CARD = """---
license: apache-2.0
library_name: transformers
pipeline_tag: text-generation
base_model:
- Dream-org/Dream-Coder-v0-Base-7B
tags:
- code
- diffusion
language:
- en
---
# Dream-Coder-v0-Instruct-7B (synthetic stand-in)

Random weights with the real model's configuration, widths shrunk, for the converter's tests.
"""
DREAM_GENERATION = {"_from_model_config": True, "bos_token_id": 151665, "eos_token_id": 151643, "pad_token_id": 151643,
                     "temperature": 0.1, "top_p": 0.95, "transformers_version": "4.46.2"}

# LLaDA-8B-Instruct's config.json (GSAI-ML/LLaDA-8B-Instruct): d_model 4096, 32 layers, 32 heads, mlp 12288, shrunk.
LLADA_8B = {
    "activation_type": "silu",
    "alibi": False,
    "alibi_bias_max": 8.0,
    "architectures": ["LLaDAModelLM"],
    "attention_dropout": 0.0,
    "attention_layer_norm": False,
    "attention_layer_norm_with_affine": True,
    "auto_map": {"AutoConfig": "configuration_llada.LLaDAConfig", "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
                 "AutoModel": "modeling_llada.LLaDAModelLM"},
    "bias_for_layer_norm": False,
    "block_group_size": 1,
    "block_type": "llama",
    "d_model": 4096,
    "embedding_dropout": 0.0,
    "embedding_size": 126464,
    "eos_token_id": 126081,
    "flash_attention": False,
    "include_bias": False,
    "include_qkv_bias": False,
    "init_cutoff_factor": None,
    "init_device": "meta",
    "init_fn": "mitchell",
    "init_std": 0.02,
    "input_emb_norm": False,
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "mask_token_id": 126336,
    "max_sequence_length": 4096,
    "mlp_hidden_size": 12288,
    "mlp_ratio": 4,
    "model_type": "llada",
    "multi_query_attention": None,
    "n_heads": 32,
    "n_kv_heads": 32,
    "n_layers": 32,
    "pad_token_id": 126081,
    "precision": "amp_bf16",
    "residual_dropout": 0.0,
    "rms_norm_eps": 1e-05,
    "rope": True,
    "rope_full_precision": True,
    "rope_theta": 500000.0,
    "scale_logits": False,
    "transformers_version": "4.46.3",
    "use_cache": False,
    "vocab_size": 126464,
    "weight_tying": False,
}
LLADA_SHRUNK = {
    "small": {"d_model": 64, "n_heads": 4, "n_kv_heads": 4, "mlp_hidden_size": 160, "n_layers": 2},
    "large": {"d_model": 1024, "n_heads": 16, "n_kv_heads": 16, "mlp_hidden_size": 2816, "n_layers": 6},
}
LLADA_CARD = """---
license: mit
library_name: transformers
pipeline_tag: text-generation
---
# LLaDA-8B-Instruct (synthetic stand-in)

Random weights with the real model's configuration, widths shrunk, for the converter's tests.
"""
LLADA_GENERATION = {"_from_model_config": True, "eos_token_id": 126081, "pad_token_id": 126081, "transformers_version": "4.46.3"}


def random_like(shape, dtype, generator, norm=False):
    if norm:
        return (1 + 0.1 * torch.randn(shape, generator=generator)).to(dtype)
    return (0.02 * torch.randn(shape, generator=generator)).to(dtype)


def dream_tensors(c: dict, g) -> dict:
    h, ff, heads, kv = c["hidden_size"], c["intermediate_size"], c["num_attention_heads"], c["num_key_value_heads"]
    hd = h // heads
    t = {"model.embed_tokens.weight": (c["vocab_size"], h), "model.norm.weight": (h,), "lm_head.weight": (c["vocab_size"], h)}
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": (h,), p + "post_attention_layernorm.weight": (h,),
                  p + "self_attn.q_proj.weight": (heads * hd, h), p + "self_attn.q_proj.bias": (heads * hd,),
                  p + "self_attn.k_proj.weight": (kv * hd, h), p + "self_attn.k_proj.bias": (kv * hd,),
                  p + "self_attn.v_proj.weight": (kv * hd, h), p + "self_attn.v_proj.bias": (kv * hd,),
                  p + "self_attn.o_proj.weight": (h, heads * hd), p + "mlp.gate_proj.weight": (ff, h),
                  p + "mlp.up_proj.weight": (ff, h), p + "mlp.down_proj.weight": (h, ff)})
    return {k: random_like(s, torch.bfloat16, g, norm=k.endswith("norm.weight")) for k, s in t.items()}


def llada_tensors(c: dict, g) -> dict:
    d, ff, heads, kv = c["d_model"], c["mlp_hidden_size"], c["n_heads"], c["n_kv_heads"]
    hd = d // heads
    p0 = "model.transformer."
    t = {p0 + "wte.weight": (c["embedding_size"], d), p0 + "ln_f.weight": (d,), p0 + "ff_out.weight": (c["embedding_size"], d)}
    for i in range(c["n_layers"]):
        p = f"{p0}blocks.{i}."
        t.update({p + "attn_norm.weight": (d,), p + "ff_norm.weight": (d,), p + "q_proj.weight": (heads * hd, d),
                  p + "k_proj.weight": (kv * hd, d), p + "v_proj.weight": (kv * hd, d), p + "attn_out.weight": (d, heads * hd),
                  p + "ff_proj.weight": (ff, d), p + "up_proj.weight": (ff, d), p + "ff_out.weight": (d, ff)})
    return {k: random_like(s, torch.bfloat16, g, norm=k.endswith("norm.weight")) for k, s in t.items()}


def save_sharded(tensors: dict, out: Path, shards: int) -> None:
    """model-0000i-of-0000n.safetensors plus the index, as transformers' save_pretrained shards them (in order)."""
    names = list(tensors)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    per = -(-total // shards)
    groups, current, size = [], [], 0
    for n in names:
        current.append(n)
        size += tensors[n].numel() * tensors[n].element_size()
        if size >= per and len(groups) < shards - 1:
            groups.append(current)
            current, size = [], 0
    groups.append(current)
    weight_map = {}
    for i, group in enumerate(groups):
        file = f"model-{i + 1:05d}-of-{len(groups):05d}.safetensors"
        save_file({n: tensors[n].contiguous() for n in group}, str(out / file), metadata={"format": "pt"})
        weight_map.update({n: file for n in group})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def trained_tokenizer(dest: Path) -> None:
    """The pipeline's own tokenizer: train/tokenizer.py (Qwen2's regex, no normalizer), trained on this repository's Python."""
    import tokenizer as train_tokenizer

    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp)
        with open(corpus / "train.jsonl", "w", encoding="utf-8") as f:
            for path in sorted((REPO / "train").glob("*.py")):
                f.write(json.dumps({"text": path.read_text(encoding="utf-8")}) + "\n")
        train_tokenizer.train(corpus, dest, 400)


def dream_mini(out: Path, tokenizer: Path, overrides: dict, seed: int) -> None:
    """train/export.py's write_hf on a randomly initialized train/model.py, the pipeline test's tiny shape."""
    from dataclasses import asdict

    from export import write_hf
    from model import DreamConfig, DreamModel

    torch.manual_seed(seed)
    vocab = json.loads((tokenizer / "tokenizer.json").read_text(encoding="utf-8"))
    ids = {t["content"]: t["id"] for t in vocab["added_tokens"]}
    size = max([*vocab["model"]["vocab"].values(), *ids.values()]) + 1
    cfg = DreamConfig(vocab_size=size, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, max_position_embeddings=128, mask_token_id=ids.get("<|mask|>", 1),
                      pad_token_id=ids.get("<|endoftext|>", 0), eos_token_id=ids.get("<|endoftext|>", 0), **overrides)
    model = DreamModel(cfg)
    with torch.no_grad():  # trained norms are not all ones
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn_like(p))
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = Path(tmp) / "checkpoint.pt"
        torch.save({"config": asdict(cfg), "model": model.state_dict(), "state": {"step": 0, "tokens": 0}}, ckpt)
        write_hf(ckpt, tokenizer, out)


# Each sharded shape: its config.json, widths, tokenizer layout (synthetic_tokenizer.py), tensors, card, generation config.
SHAPES = {
    "dream-coder-7b": (DREAM_CODER_7B, DREAM_SHRUNK, "dream-coder", dream_tensors, DREAM_CARD, DREAM_GENERATION),
    "llada-8b": (LLADA_8B, LLADA_SHRUNK, "llada", llada_tensors, LLADA_CARD, LLADA_GENERATION),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", required=True, choices=[*SHAPES, "dream-mini"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab-json", action="store_true", help="the slow tokenizer's files instead of tokenizer.json (dream-coder-7b)")
    ap.add_argument("--dreamon", action="store_true", help="DreamOn's <|expand|> and <|delete|> in the tokenizer (dream-coder-7b)")
    ap.add_argument("--size", choices=["small", "large"], default="small")
    ap.add_argument("--config", default="{}", help="JSON object of config.json values to override")
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    try:
        overrides = json.loads(args.config)
    except json.JSONDecodeError:
        raise SystemExit(f"--config is not JSON: {args.config}") from None
    if args.vocab_json and args.shape != "dream-coder-7b":
        raise SystemExit("--vocab-json is Dream's tokenizer layout: use it with --shape dream-coder-7b")
    if args.dreamon and args.shape != "dream-coder-7b":
        raise SystemExit("--dreamon adds DreamOn's tokens to Dream's tokenizer: use it with --shape dream-coder-7b")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.shape == "dream-mini":
        with tempfile.TemporaryDirectory() as tmp:
            trained_tokenizer(Path(tmp))
            dream_mini(args.out, Path(tmp), overrides, args.seed)
        print(args.out)
        return
    real, shrunk, layout, tensors_of, card, generation = SHAPES[args.shape]
    write_layout(layout, args.out, vocab_json=args.vocab_json, dreamon=args.dreamon)
    # The tokenizer layout writes the config.json values it depends on; they must be the real checkpoint's.
    tokenizer_config = json.loads((args.out / "config.json").read_text())
    differing = {k: (v, real.get(k)) for k, v in tokenizer_config.items() if real.get(k) != v}
    if differing:
        raise SystemExit(f"synthetic_tokenizer.py's {layout} layout disagrees with {args.shape}'s config.json (tokenizer, config): {differing}")
    config = {**real, **shrunk[args.size], **overrides}
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (args.out / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    (args.out / "README.md").write_text(card)
    save_sharded(tensors_of(config, torch.Generator().manual_seed(args.seed)), args.out, args.shards)
    print(args.out)


if __name__ == "__main__":
    main()

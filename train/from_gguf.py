"""Turns a Dream GGUF made by this pipeline (the shipped model) back into a training checkpoint, so that train.py can
fine-tune it (`--init`) instead of starting from random weights: how DreamOn was made from Dream-Coder.

    python train/from_gguf.py --gguf models/dream-mini-py-q8_0.gguf --tokenizer train/work/tokenizer-last \
        --out train/work/shipped.pt

The tokenizer must hold the GGUF's vocabulary at the same ids (tokenizer.py makes the shipped model's again from the
same corpus); tokens it adds after them (DreamOn's <|expand|> and <|delete|>, with --dreamon-tokens last) get new
embedding and output rows, each the mean of the model's rows, so the fine-tune starts from what the model predicts
now. Quantized weights are dequantized (Q8_0 keeps the logits within 5e-2 of F16's largest).
"""

import argparse
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from inputs import require_file
from model import DreamConfig, DreamModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "native" / "build" / "llama.cpp" / "gguf-py"))

# GGUF tensor names (llama.cpp's) to the checkpoint's (Dream's Hugging Face layout, as export.py writes it).
LAYER_NAMES = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj", "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm",
}
TOP_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}


def checkpoint_name(gguf_name: str) -> str:
    base, kind = gguf_name.rsplit(".", 1)
    if base.startswith("blk."):
        _, layer, part = base.split(".", 2)
        return f"model.layers.{layer}.{LAYER_NAMES[part]}.{kind}"
    return f"{TOP_NAMES[base]}.{kind}"


def field(reader, key: str):
    if key not in reader.fields:
        raise SystemExit(f"the GGUF has no {key}: it is not a Dream model made by train/export.py")
    value = reader.fields[key].contents()
    # GGUF keeps float32: its shortest decimal is the number the checkpoint's config.json had (1e-06, not 9.99...e-07).
    return float(str(np.float32(value))) if isinstance(value, float) else value


def config_of(reader, vocab: int) -> DreamConfig:
    arch = field(reader, "general.architecture")
    if arch != "dream":
        raise SystemExit(f"the GGUF's architecture is {arch}, not dream")
    eos = field(reader, "tokenizer.ggml.eos_token_id")
    return DreamConfig(
        vocab_size=vocab, hidden_size=field(reader, "dream.embedding_length"),
        intermediate_size=field(reader, "dream.feed_forward_length"), num_hidden_layers=field(reader, "dream.block_count"),
        num_attention_heads=field(reader, "dream.attention.head_count"),
        num_key_value_heads=field(reader, "dream.attention.head_count_kv"),
        max_position_embeddings=field(reader, "dream.context_length"), rope_theta=field(reader, "dream.rope.freq_base"),
        rms_norm_eps=field(reader, "dream.attention.layer_norm_rms_epsilon"),
        mask_token_id=field(reader, "tokenizer.ggml.mask_token_id"), pad_token_id=eos, eos_token_id=eos)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gguf", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="the checkpoint to write (train.py --init takes it)")
    args = ap.parse_args()
    require_file(args.tokenizer / "tokenizer.json", "tokenizer.py")
    require_file(args.gguf, "export.py")
    from gguf import GGUFReader
    from gguf.quants import dequantize

    reader = GGUFReader(args.gguf)
    tokens = field(reader, "tokenizer.ggml.tokens")
    vocab = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json")).get_vocab()
    by_id = {i: t for t, i in vocab.items()}
    differ = [i for i, t in enumerate(tokens) if by_id.get(i) != t]
    if differ or len(vocab) < len(tokens):
        raise SystemExit(f"{args.tokenizer / 'tokenizer.json'} is not the GGUF's vocabulary ({len(differ)} of its "
                         f"{len(tokens)} ids differ): make it with tokenizer.py from the corpus the model was trained on")
    cfg = config_of(reader, len(vocab))
    model = DreamModel(cfg)
    state = model.state_dict()
    loaded = set()
    for t in reader.tensors:
        name = checkpoint_name(t.name)
        weights = torch.from_numpy(np.array(dequantize(t.data, t.tensor_type), dtype=np.float32))
        target = state[name]
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            rows = weights.shape[0]
            target[:rows] = weights
            target[rows:] = weights.mean(dim=0)
        else:
            target.copy_(weights.reshape(target.shape))
        loaded.add(name)
    if set(state) - loaded:
        raise SystemExit(f"the GGUF lacks {', '.join(sorted(set(state) - loaded))}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": state, "config": asdict(cfg)}, args.out)
    added = len(vocab) - len(tokens)
    print(f"{args.out}: {model.parameter_count():,} parameters, {len(tokens)} tokens from the GGUF, {added} added")


if __name__ == "__main__":
    main()

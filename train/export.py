"""Exports a training checkpoint as a Hugging Face checkpoint in Dream's format, converts it with the bundled
llama.cpp's own convert_hf_to_gguf.py (the path a user takes to convert Dream-Coder 7B) and quantizes it with the
same tree's llama-quantize.

    python train/export.py --checkpoint train/work/run/checkpoint.pt --tokenizer train/work/tokenizer \
        --hf train/work/hf --gguf models/dream-mini-py-q8_0.gguf --type Q8_0

The converter names a BPE pre-tokenizer by hashing how the tokenizer splits a fixed text; a newly trained
tokenizer has a hash the converter's table cannot know. Ours uses Qwen2's pre-tokenizer by construction
(tokenizer.py), so the conversion runs (train/hf_to_gguf.py) with the converter's Dream class answering "qwen2" for
it, and with the GGUF declaring DreamOn's <|expand|> and <|delete|> ids (diffusion.expand_token_id and
diffusion.delete_token_id; the tokens themselves are CONTROL tokens, as every special added token): the two changes
to the converter, made at run time rather than by editing the tree. The pipeline test checks that llama.cpp then
tokenizes exactly as the training tokenizer does.
"""

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import save_file

from inputs import require_file

REPO = Path(__file__).resolve().parent.parent
LLAMA_CPP = REPO / "native" / "build" / "llama.cpp"
QUANTIZE = REPO / "native" / "build" / "cmake" / "bin" / "llama-quantize"
# The GGUF types users run (F16: unquantized); llama-quantize knows more, which this export does not offer.
QUANT_TYPES = ("F16", "Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0")


def write_hf(checkpoint: Path, tokenizer: Path, out: Path) -> None:
    """config.json, model.safetensors and the tokenizer files, as Dream's checkpoints on the Hub lay them out."""
    sys.path.insert(0, str(Path(__file__).parent))
    from model import DreamConfig

    ckpt = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = DreamConfig(**ckpt["config"])
    out.mkdir(parents=True, exist_ok=True)
    config = cfg.hf_config()
    config["training"] = {k: ckpt["state"][k] for k in ("step", "tokens")}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    save_file({k: v.float().contiguous() for k, v in ckpt["model"].items()}, str(out / "model.safetensors"), metadata={"format": "pt"})
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tokenizer / name, out / name)


def convert(hf: Path, outfile: Path, outtype: str, name: str) -> None:
    """Runs the tree's convert_hf_to_gguf.py through hf_to_gguf.py (see the module docstring)."""
    subprocess.run([sys.executable, str(Path(__file__).parent / "hf_to_gguf.py"), "--pre", "qwen2", str(hf),
                    "--outfile", str(outfile), "--outtype", outtype, "--model-name", name], check=True)


def quantize(source: Path, out: Path, qtype: str) -> None:
    if not QUANTIZE.exists():
        raise SystemExit(f"{QUANTIZE} is missing: build the native addon first (node scripts/build-native.mjs)")
    subprocess.run([str(QUANTIZE), str(source), str(out), qtype, "2"], check=True, stdout=subprocess.DEVNULL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--hf", type=Path, required=True, help="folder for the Hugging Face checkpoint")
    ap.add_argument("--gguf", type=Path, required=True, help="the GGUF to write")
    ap.add_argument("--type", default="Q8_0", type=str.upper, choices=QUANT_TYPES,
                    help="llama-quantize type (F16: the converter's output as is)")
    ap.add_argument("--name", default="Dream Mini Python", help="general.name in the GGUF")
    args = ap.parse_args()
    require_file(args.checkpoint, "train.py")
    require_file(args.tokenizer / "tokenizer.json", "tokenizer.py")
    if not (LLAMA_CPP / "convert_hf_to_gguf.py").exists():
        raise SystemExit(f"{LLAMA_CPP} is missing: build the native addon first (node scripts/build-native.mjs)")
    write_hf(args.checkpoint, args.tokenizer, args.hf)
    args.gguf.parent.mkdir(parents=True, exist_ok=True)
    if args.type == "F16":
        convert(args.hf, args.gguf, "f16", args.name)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            f16 = Path(tmp) / "model-f16.gguf"
            convert(args.hf, f16, "f16", args.name)
            quantize(f16, args.gguf, args.type)
    print(f"{args.gguf}: {args.gguf.stat().st_size / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()

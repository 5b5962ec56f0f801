"""What training computes, for the pipeline test to hold llama.cpp against: the training tokenizer's ids for a
split's files, and the PyTorch model's logits for a token sequence. Prints JSON.

    python train/reference.py tokenize --tokenizer DIR --corpus DIR --split val
    python train/reference.py logits --checkpoint FILE --tokens 0,5,9,...
"""

import argparse
import json
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer

sys.path.insert(0, str(Path(__file__).parent))
from model import DreamConfig, DreamModel  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tokenize")
    t.add_argument("--tokenizer", type=Path, required=True)
    t.add_argument("--corpus", type=Path, required=True)
    t.add_argument("--split", default="val")
    g = sub.add_parser("logits")
    g.add_argument("--checkpoint", type=Path, required=True)
    g.add_argument("--tokens", required=True, help="comma-separated token ids")
    args = ap.parse_args()
    if args.command == "tokenize":
        tok = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))
        with open(args.corpus / f"{args.split}.jsonl", encoding="utf-8") as f:
            files = [json.loads(line) for line in f]
        print(json.dumps([{"path": x["path"], "text": x["text"], "ids": tok.encode(x["text"]).ids} for x in files]))
    else:
        ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        model = DreamModel(DreamConfig(**ckpt["config"]))
        model.load_state_dict(ckpt["model"])
        tokens = torch.tensor([[int(x) for x in args.tokens.split(",")]])
        with torch.no_grad():
            print(json.dumps(model(tokens)[0].tolist()))


if __name__ == "__main__":
    main()

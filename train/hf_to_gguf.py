"""Runs the bundled llama.cpp's convert_hf_to_gguf.py with this project's two changes, made at run time rather than
by editing the tree (train/export.py and the converter tests both run it this way):

- the Dream and LLaDA classes answer get_vocab_base_pre with the pre-tokenizer named by --pre: the converter names
  one by hashing how the tokenizer splits a fixed text, and a newly trained or synthetic tokenizer's hash is not in
  its table;
- when the checkpoint's tokenizer has the added tokens <|expand|> and <|delete|> (DreamOn's, and train/tokenizer.py's),
  the GGUF declares their ids as diffusion.expand_token_id and diffusion.delete_token_id (uint32), after the
  tokenizer's keys, for the decoder that grows and shrinks holes. The project's own converter (server/src/convert/)
  writes the same keys in the same place.

    python train/hf_to_gguf.py --pre qwen2 HF_DIR --outfile OUT.gguf --outtype f16 [convert_hf_to_gguf.py's options]
"""

import json
import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LLAMA_CPP = REPO / "native" / "build" / "llama.cpp"

EXPAND = "<|expand|>"
DELETE = "<|delete|>"
EXPAND_KEY = "diffusion.expand_token_id"
DELETE_KEY = "diffusion.delete_token_id"


def added_token_ids(model_dir: Path) -> dict[str, int]:
    """Text -> id of the checkpoint's added tokens: tokenizer.json's added_tokens (or a slow tokenizer's
    added_tokens.json), then those only tokenizer_config.json's added_tokens_decoder lists."""
    ids: dict[str, int] = {}
    tokenizer, added = model_dir / "tokenizer.json", model_dir / "added_tokens.json"
    if tokenizer.is_file():
        for entry in json.loads(tokenizer.read_text(encoding="utf-8")).get("added_tokens") or []:
            ids.setdefault(entry["content"], int(entry["id"]))
    elif added.is_file():
        for content, i in json.loads(added.read_text(encoding="utf-8")).items():
            ids.setdefault(content, int(i))
    config = model_dir / "tokenizer_config.json"
    if config.is_file():
        for i, entry in (json.loads(config.read_text(encoding="utf-8")).get("added_tokens_decoder") or {}).items():
            ids.setdefault(entry["content"], int(i))
    return ids


def patch(pre: str) -> None:
    from conversion.dream import DreamModel
    from conversion.llada import LLaDAModel

    for cls in (DreamModel, LLaDAModel):
        cls.get_vocab_base_pre = lambda self, tokenizer: pre
        original = cls.set_vocab

        def set_vocab(self, original=original):
            original(self)
            ids = added_token_ids(Path(self.dir_model))
            if EXPAND in ids and DELETE in ids:
                self.gguf_writer.add_uint32(EXPAND_KEY, ids[EXPAND])
                self.gguf_writer.add_uint32(DELETE_KEY, ids[DELETE])

        cls.set_vocab = set_vocab


def main() -> None:
    if len(sys.argv) < 3 or sys.argv[1] != "--pre":
        raise SystemExit(f"usage: {sys.argv[0]} --pre NAME HF_DIR [convert_hf_to_gguf.py's options]")
    pre, rest = sys.argv[2], sys.argv[3:]
    sys.path.insert(0, str(LLAMA_CPP))
    sys.path.insert(1, str(LLAMA_CPP / "gguf-py"))
    patch(pre)
    sys.argv = ["convert_hf_to_gguf.py", *rest]
    runpy.run_path(str(LLAMA_CPP / "convert_hf_to_gguf.py"), run_name="__main__")


if __name__ == "__main__":
    main()

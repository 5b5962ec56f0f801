"""Trains the byte-level BPE tokenizer on the corpus's training split, with Qwen2's pre-tokenizer, so that
llama.cpp's `qwen2` pre-tokenizer splits text exactly as training did.

    python train/tokenizer.py --corpus train/work/corpus --out train/work/tokenizer --vocab 4096

DreamOn's two tokens get ids 4 and 5 (a tokenizer for a model trained from scratch), or with --dreamon-tokens last the
ids after the merges: the shipped model's vocabulary (trained before the two existed) plus the two, to fine-tune it
(train/from_gguf.py).

Writes tokenizer.json and tokenizer_config.json (the files transformers' AutoTokenizer and llama.cpp's
convert_hf_to_gguf.py read).
"""

import argparse
import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

from inputs import require_file

# Qwen2's pre-tokenizer regex, as in its tokenizer.json; llama.cpp's LLAMA_VOCAB_PRE_TYPE_QWEN2 implements it.
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

END = "<|endoftext|>"
MASK = "<|mask|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
# DreamOn's tokens (holes of unknown length): predicted at a mask, <|expand|> turns it into two masks and <|delete|>
# removes it (and the masks after it in its hole). After the four above, so that those keep ids 0-3.
EXPAND = "<|expand|>"
DELETE = "<|delete|>"
SPECIAL = [END, MASK, IM_START, IM_END]
DREAMON = [EXPAND, DELETE]
DREAMON_PLACES = ("first", "last")

# ChatML, as Qwen2 and Dream write it; the model is not trained on chats, but the tokens and the template let the
# runtime lay out an instruction the same way it does for Dream-Coder.
CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
                 "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


def texts(corpus: Path, split: str):
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)["text"]


def train(corpus: Path, out: Path, vocab: int, dreamon_tokens: str = "first") -> Tokenizer:
    """`vocab` tokens with DreamOn's first (ids 4 and 5, among them), or `vocab` + 2 with DreamOn's last."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    first = dreamon_tokens == "first"
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL + DREAMON if first else SPECIAL,
                                  min_frequency=2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts(corpus, "train"), trainer=trainer)
    if not first:
        tok.add_special_tokens(DREAMON)
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        # No separate begin token: files are joined by end-of-text in training, so it is what precedes a text.
        "bos_token": END,
        "eos_token": END,
        "pad_token": END,
        "mask_token": MASK,
        "add_bos_token": False,
        "add_eos_token": False,
        "model_max_length": 1 << 20,
        "chat_template": CHAT_TEMPLATE,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    return tok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--dreamon-tokens", choices=DREAMON_PLACES, default="first",
                    help="ids 4 and 5 for <|expand|> and <|delete|> (first), or the two after --vocab (last)")
    args = ap.parse_args()
    require_file(args.corpus / "train.jsonl", "corpus.py")
    least = 256 + len(SPECIAL) + (len(DREAMON) if args.dreamon_tokens == "first" else 0)
    if not least <= args.vocab:
        raise SystemExit(f"--vocab must be at least {least}: the 256 bytes and the special tokens")
    tok = train(args.corpus, args.out, args.vocab, args.dreamon_tokens)
    print(f"vocabulary {tok.get_vocab_size()} tokens -> {args.out}")


if __name__ == "__main__":
    main()

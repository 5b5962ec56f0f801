"""Writes a small tokenizer in the layout of a real diffusion checkpoint, for the converter's tests: a byte-level BPE
(the 256 byte tokens and merges learned from a short text) with the real checkpoint's pre-tokenizer, normalizer and
decoder, its added tokens at their real ids, its tokenizer_config.json, and a config.json with its vocabulary size
and special token ids. The real vocabularies are not needed, only the ids of the special tokens: the ids between the
small vocabulary and them are gaps, which the converter fills with [PAD{i}] tokens.

    train/.venv/bin/python test/tools/synthetic_tokenizer.py --layout dream-coder --out DIR [--chat-template-file] [--vocab-json] [--dreamon]

Layouts:
  dream-coder  Dream-org/Dream-Coder-v0-Instruct-7B: Qwen2.5's tokenizer (NFC, Qwen2's Split regex, ByteLevel), the
               Qwen2.5 added tokens 151643-151664 and Dream's <|beginoftext|> 151665 and <|mask|> 151666, ChatML.
  llada        GSAI-ML/LLaDA-8B-Instruct: the Ling tokenizer's regex, <|startoftext|> 126080, <|endoftext|> 126081,
               <|mdm_mask|> 126336, <|start_header_id|> 126346, <|end_header_id|> 126347, <|eot_id|> 126348, 126464
               tokens in config.json.

--dreamon adds DreamOn's special tokens to the dream-coder layout, after Dream's: <|expand|> 151667 (the id DreamOn's
training code gives it) and <|delete|> 151668.

--vocab-json writes the files of a slow tokenizer instead of tokenizer.json: vocab.json, merges.txt, added_tokens.json
and special_tokens_map.json, as Dream's checkpoints ship them for their DreamTokenizer (tokenization_dream.py, loaded
as remote code). The remote code is not here, so tokenizer_config.json names transformers' Qwen2Tokenizer, of which
DreamTokenizer is a copy.

The `tokenizers` library gives an added token the id its model's vocabulary has for it, or else the next free one,
whatever tokenizer.json says; so the special tokens are also in the BPE vocabulary at their ids, which keeps them
there when transformers loads the files (the real files need no such entry: their vocabularies end just below the
first added token).
"""

import argparse
import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
LING_SPLIT = r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+"""

TEXT = '''def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

export function parseConfig(text: string): Record<string, string> {
    const result: Record<string, string> = {};
    for (const line of text.split("\\n")) result[line] = line.trim();
    return result;
}
The quick brown fox jumps over the lazy dog. Don't we'll they're 1234 3.14
'''

# (id, text, special): Qwen2.5's added tokens, then Dream's.
QWEN25_ADDED = [
    (151643, "<|endoftext|>", True), (151644, "<|im_start|>", True), (151645, "<|im_end|>", True),
    (151646, "<|object_ref_start|>", True), (151647, "<|object_ref_end|>", True), (151648, "<|box_start|>", True),
    (151649, "<|box_end|>", True), (151650, "<|quad_start|>", True), (151651, "<|quad_end|>", True),
    (151652, "<|vision_start|>", True), (151653, "<|vision_end|>", True), (151654, "<|vision_pad|>", True),
    (151655, "<|image_pad|>", True), (151656, "<|video_pad|>", True), (151657, "<tool_call>", False),
    (151658, "</tool_call>", False), (151659, "<|fim_prefix|>", False), (151660, "<|fim_middle|>", False),
    (151661, "<|fim_suffix|>", False), (151662, "<|fim_pad|>", False), (151663, "<|repo_name|>", False),
    (151664, "<|file_sep|>", False),
]
DREAM_ADDED = QWEN25_ADDED + [(151665, "<|beginoftext|>", True), (151666, "<|mask|>", True)]
DREAMON_ADDED = DREAM_ADDED + [(151667, "<|expand|>", True), (151668, "<|delete|>", True)]
LLADA_ADDED = [
    (126080, "<|startoftext|>", True), (126081, "<|endoftext|>", True), (126336, "<|mdm_mask|>", True),
    (126346, "<|start_header_id|>", True), (126347, "<|end_header_id|>", True), (126348, "<|eot_id|>", True),
]

CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
LLADA_CHAT = ("{% set loop_messages = messages %}{% for message in loop_messages %}"
              "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' %}"
              "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
              "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def bpe(split: str, normalizer, merges: int) -> dict:
    """A byte-level BPE with `split` before ByteLevel, as tokenizer.json (the tokenizers library's own form)."""
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(split), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    trainer = trainers.BpeTrainer(vocab_size=256 + merges, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator([TEXT] * 4, trainer=trainer)
    return json.loads(tok.to_str())


def with_added(tokenizer: dict, added: list) -> dict:
    tokenizer["added_tokens"] = [
        {"id": i, "content": text, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": special}
        for i, text, special in added
    ]
    for i, text, _ in added:
        tokenizer["model"]["vocab"][text] = i
    return tokenizer


def decoder_entries(added: list) -> dict:
    return {str(i): {"content": text, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False, "special": special}
            for i, text, special in added}


def dream_coder(added: list = DREAM_ADDED) -> tuple[dict, dict, dict, str]:
    tokenizer = with_added(bpe(QWEN2_SPLIT, normalizers.NFC(), 300), added)
    # Qwen2.5's tokenizer.json writes its merges as "a b" strings.
    tokenizer["model"]["merges"] = [" ".join(pair) for pair in tokenizer["model"]["merges"]]
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": decoder_entries(added),
        "additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
                                      "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>",
                                      "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"],
        "bos_token": "<|beginoftext|>",
        "chat_template": CHATML,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|endoftext|>",
        "errors": "replace",
        "mask_token": "<|mask|>",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    hf = {
        "architectures": ["DreamModel"], "model_type": "Dream", "vocab_size": 152064, "hidden_size": 3584,
        "intermediate_size": 18944, "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
        "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06, "hidden_act": "silu",
        "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "bos_token_id": 151665, "eos_token_id": 151643, "pad_token_id": 151643, "mask_token_id": 151666,
    }
    return tokenizer, config, hf, CHATML


def llada() -> tuple[dict, dict, dict, str]:
    tokenizer = with_added(bpe(LING_SPLIT, None, 300), LLADA_ADDED)
    config = {
        "added_tokens_decoder": decoder_entries(LLADA_ADDED),
        "additional_special_tokens": ["<|mdm_mask|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
        "bos_token": "<|startoftext|>",
        "chat_template": LLADA_CHAT,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|eot_id|>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "<|endoftext|>",
        "tokenizer_class": "PreTrainedTokenizerFast",
    }
    hf = {
        "architectures": ["LLaDAModelLM"], "model_type": "llada", "vocab_size": 126464, "embedding_size": 126464,
        "d_model": 4096, "n_heads": 32, "n_kv_heads": 32, "n_layers": 32, "mlp_hidden_size": 12288,
        "max_sequence_length": 4096, "rope_theta": 500000.0, "rms_norm_eps": 1e-05,
        "mask_token_id": 126336, "eos_token_id": 126081, "pad_token_id": 126081,
    }
    return tokenizer, config, hf, LLADA_CHAT


def write_vocab_json(tokenizer: dict, config: dict, out: Path) -> None:
    model = tokenizer["model"]
    (out / "vocab.json").write_text(json.dumps(model["vocab"], ensure_ascii=False) + "\n")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    (out / "added_tokens.json").write_text(json.dumps({t["content"]: t["id"] for t in tokenizer["added_tokens"]}, indent=2) + "\n")
    named = {k: config[k] for k in ("bos_token", "eos_token", "pad_token", "mask_token", "additional_special_tokens") if k in config}
    (out / "special_tokens_map.json").write_text(json.dumps(named, indent=2) + "\n")
    config["tokenizer_class"] = "Qwen2Tokenizer"


LAYOUTS = {"dream-coder": dream_coder, "llada": llada}


def write_layout(layout: str, out: Path, chat_template_file: bool = False, vocab_json: bool = False, dreamon: bool = False) -> None:
    """Writes the layout's tokenizer files and its config.json (the values the tokenizer needs) into `out`."""
    if dreamon and layout != "dream-coder":
        raise SystemExit("--dreamon adds DreamOn's tokens to Dream's tokenizer: use it with --layout dream-coder")
    tokenizer, config, hf, template = dream_coder(DREAMON_ADDED) if dreamon else LAYOUTS[layout]()
    out.mkdir(parents=True, exist_ok=True)
    if chat_template_file:
        del config["chat_template"]
        (out / "chat_template.jinja").write_text(template)
    if vocab_json:
        write_vocab_json(tokenizer, config, out)
    else:
        (out / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False, indent=2) + "\n")
    (out / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n")
    (out / "config.json").write_text(json.dumps(hf, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layout", choices=tuple(LAYOUTS), required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--chat-template-file", action="store_true",
                    help="write the chat template to chat_template.jinja instead of tokenizer_config.json")
    ap.add_argument("--vocab-json", action="store_true", help="write a slow tokenizer's vocab.json and merges.txt, not tokenizer.json")
    ap.add_argument("--dreamon", action="store_true", help="add DreamOn's <|expand|> and <|delete|> (dream-coder)")
    args = ap.parse_args()
    write_layout(args.layout, args.out, args.chat_template_file, args.vocab_json, args.dreamon)


if __name__ == "__main__":
    main()

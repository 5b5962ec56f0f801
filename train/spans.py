"""Makes the held-out infilling problems from the corpus's test split, for `dream-coder eval --sets py-lines,py-token`:
random spans of one to three lines, and single tokens, cut out of files the model never trained on.

    python train/spans.py --corpus train/work/corpus --tokenizer train/work/tokenizer --out data/mini-py

Writes files.jsonl.gz (the test split's files that parse, so a filled file's parse result says something) and
spans.jsonl.gz: one record per problem in the HumanEval-infilling shape the evaluation reads (prompt, suffix,
canonical_solution), the prompt and suffix cut to a window that fits the model's context, plus the file and the
span's offsets so the whole filled file can be parsed. Each set also names its trivial filler: the training
split's most frequent non-blank line, or its most frequent token.
"""

import argparse
import ast
import gzip
import json
import random
import warnings
from collections import Counter
from pathlib import Path

from tokenizers import Tokenizer

from inputs import require_file
from tokenizer import DREAMON, SPECIAL

# The model's context is 512 tokens: prompt, span and suffix together stay within this (a little room for a
# begin token and for pieces tokenized apart), three quarters of what the span leaves before it.
CONTEXT_TOKENS = 500


def read_split(corpus: Path, split: str) -> list[dict]:
    with open(corpus / f"{split}.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def parses(text: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
        return True
    except (SyntaxError, ValueError):
        return False


def usable(text: str) -> bool:
    """Parses, and has no character outside the BMP: then Python's and JavaScript's string offsets agree."""
    return parses(text) and all(ord(c) < 0x10000 for c in text)


def window(tok: Tokenizer, text: str, start: int, end: int) -> tuple[int, int]:
    """Whole lines around [start, end): as many as fit the context with the span, three quarters of it before."""
    room = CONTEXT_TOKENS - len(tok.encode(text[start:end]).ids)
    prefix_tokens, suffix_tokens = room * 3 // 4, room - room * 3 // 4
    lo = start
    while lo > 0:
        prev = text.rfind("\n", 0, lo - 1) + 1
        if len(tok.encode(text[prev:start]).ids) > prefix_tokens:
            break
        lo = prev
    hi = end
    while hi < len(text):
        nxt = text.find("\n", hi)
        nxt = len(text) if nxt < 0 else nxt + 1
        if len(tok.encode(text[end:nxt]).ids) > suffix_tokens:
            break
        hi = nxt
    return lo, hi


def line_problem(rng: random.Random, tok: Tokenizer, path: str, text: str) -> dict | None:
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip()]
    if not starts:
        return None
    first = rng.choice(starts)
    count = rng.choice((1, 2, 3))
    span = lines[first:first + count]
    start = sum(len(x) for x in lines[:first])
    end = start + sum(len(x) for x in span)
    return {"file": path, "start": start, "end": end}


def token_problem(rng: random.Random, tok: Tokenizer, path: str, text: str) -> dict | None:
    enc = tok.encode(text)
    candidates = [(a, b) for (a, b) in enc.offsets if text[a:b].strip()]
    if not candidates:
        return None
    a, b = rng.choice(candidates)
    return {"file": path, "start": a, "end": b}


def write_jsonl_gz(path: Path, rows) -> None:
    """No time stamp in the gzip header: the same problems give the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        for row in rows:
            gz.write((json.dumps(row) + "\n").encode("utf-8"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-set", type=int, default=200)
    ap.add_argument("--seed", type=int, default=14)
    args = ap.parse_args()
    require_file(args.tokenizer / "tokenizer.json", "tokenizer.py")
    for split in ("train", "test"):
        require_file(args.corpus / f"{split}.jsonl", "corpus.py")
    tok = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))

    train = read_split(args.corpus, "train")
    line_counts = Counter(line for f in train for line in f["text"].splitlines(keepends=True) if line.strip())
    special = {tok.token_to_id(s) for s in SPECIAL + DREAMON}
    token_counts = Counter(i for enc in tok.encode_batch([f["text"] for f in train]) for i in enc.ids if i not in special)
    # The problems are non-blank lines and tokens, so the best trivial filler is the most frequent non-blank one.
    token_counts = Counter({i: n for i, n in token_counts.items() if tok.decode([i]).strip()})
    trivial = {"py-lines": line_counts.most_common(1)[0][0], "py-token": tok.decode([token_counts.most_common(1)[0][0]])}

    files = [f for f in read_split(args.corpus, "test") if usable(f["text"])]
    rng = random.Random(args.seed)
    records = []
    for set_name, make in (("py-lines", line_problem), ("py-token", token_problem)):
        made = 0
        while made < args.per_set:
            f = rng.choice(files)
            p = make(rng, tok, f["path"], f["text"])
            if p is None:
                continue
            text = f["text"]
            lo, hi = window(tok, text, p["start"], p["end"])
            records.append({"task_id": f"{set_name}/{made}", "set": set_name, **p, "window_start": lo, "window_end": hi,
                            "prompt": text[lo:p["start"]], "canonical_solution": text[p["start"]:p["end"]],
                            "suffix": text[p["end"]:hi], "trivial": trivial[set_name]})
            made += 1

    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl_gz(args.out / "files.jsonl.gz", ({"path": f["path"], "text": f["text"]} for f in files))
    write_jsonl_gz(args.out / "spans.jsonl.gz", records)
    print(f"{len(files)} files, {len(records)} problems, trivial fillers {trivial!r} -> {args.out}")


if __name__ == "__main__":
    main()

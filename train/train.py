"""Trains the Dream model with Dream's masked-diffusion objective: a mask ratio t ~ U(0, 1], cross-entropy on the
masked positions weighted 1 / t, read from the shifted logits. Part of every batch is shaped like the editor's
infilling: one to three holes (whole lines, token runs or single tokens) masked inside a file. With --objective dream
each hole is followed by end-of-text padding, as a hole that is longer than its text is; with --objective dreamon
(DreamOn, train/dreamon.py) a hole gets fewer or more masks than its text, the missing room asked for with
<|expand|> targets and the extra positions given <|delete|> targets.

    python train/train.py --corpus train/work/corpus --tokenizer train/work/tokenizer --out train/work/run --minutes 100

Checkpoints to OUT/checkpoint.pt every few minutes and at the end; run again with the same OUT to resume. The
learning-rate schedule follows the time budget, so a resumed run ends where the uninterrupted one would. --init
starts a new run from a checkpoint's weights instead of random ones (train/from_gguf.py makes one from the shipped
model, to fine-tune it with DreamOn's objective).
"""

import argparse
import json
import math
import random
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from dreamon import hole_positions, hole_targets
from inputs import require_file
from model import DreamConfig, DreamModel
from tokenizer import DELETE, END, EXPAND, MASK

MAX_PAD = 40
OBJECTIVES = ("dream", "dreamon")
PRECISIONS = ("auto", "bf16", "fp32")


def uses_bf16(precision: str) -> bool:
    """Whether to train under bf16 autocast. "auto": where PyTorch's CPU kernels have AVX-512 (the shipped run's
    machine); on an AVX2-only CPU its bf16 matmuls are about 27 times slower than fp32 (measured: 72 s against 2.7 s
    for a forward and backward pass of 16 x 512 tokens on 2 cores), so fp32 there."""
    if precision == "auto":
        return torch.backends.cpu.get_cpu_capability().startswith("AVX512")
    return precision == "bf16"


class Tokens:
    """The special ids the examples use; expand and delete are None with a tokenizer made before DreamOn's tokens."""

    def __init__(self, tok: Tokenizer):
        self.end, self.mask = tok.token_to_id(END), tok.token_to_id(MASK)
        self.expand, self.delete = tok.token_to_id(EXPAND), tok.token_to_id(DELETE)


class Corpus:
    """One split tokenized once: every file's ids, end-of-text between files, in one array."""

    def __init__(self, corpus: Path, split: str, tok: Tokenizer):
        ids: list[int] = []
        end = tok.token_to_id(END)
        with open(corpus / f"{split}.jsonl", encoding="utf-8") as f:
            texts = [json.loads(line)["text"] for line in f]
        for enc in tok.encode_batch(texts):
            ids.extend(enc.ids)
            ids.append(end)
        self.ids = np.array(ids, dtype=np.int32)
        vocab = tok.get_vocab()
        self.newline = np.zeros(tok.get_vocab_size(), dtype=bool)
        for i in vocab.values():
            text = tok.decode([i])
            self.newline[i] = text.endswith("\n")

    def window(self, rng: random.Random, n: int) -> np.ndarray:
        start = rng.randrange(0, len(self.ids) - n)
        return self.ids[start:start + n].copy()


def line_span(rng: random.Random, newline: np.ndarray, lo: int, hi: int) -> tuple[int, int] | None:
    """One to three whole lines inside tokens [lo, hi): starts after a newline token, ends with one."""
    ends = [i for i in range(lo, hi) if newline[i]]
    if len(ends) < 2:
        return None
    k = rng.randrange(0, len(ends) - 1)
    lines = rng.choice((1, 1, 2, 3))
    last = min(k + lines, len(ends) - 1)
    return ends[k] + 1, ends[last] + 1


def make_example(rng: random.Random, data: Corpus, n: int, ids: Tokens, objective: str = "dream", max_pad: int = MAX_PAD):
    """(noisy tokens, clean tokens, loss weight per position) for one sequence. `clean` holds each position's target:
    with the DreamOn objective a hole's positions hold its hole_targets, expand and delete ones always masked."""
    end, mask = ids.end, ids.mask
    dreamon = objective == "dreamon"
    forced: list[int] = []  # positions masked whatever the ratio: DreamOn's expand and delete targets
    if rng.random() < 0.4:
        clean = data.window(rng, n)
        eligible = list(range(1, n))  # nothing predicts position 0 of a shifted model
    else:
        # A DreamOn hole can be shorter than its text: the window's tail refills what merges take out.
        clean = data.window(rng, n + 64 + (n if dreamon else 0))
        holes = []  # (start, length) in the final sequence
        n_holes = rng.choice((1, 1, 2, 3))
        segment = (n - 1) // n_holes
        pieces, cursor = [clean[:1]], 1
        for h in range(n_holes):
            lo, hi = 1 + h * segment, (h + 1) * segment
            kind = rng.random()
            span = line_span(rng, data.newline[clean], max(lo, cursor), hi) if kind < 0.45 else None
            if span is None:
                length = 1 if kind > 0.8 else rng.randint(1, 32)
                a = rng.randrange(max(lo, cursor), max(lo, cursor) + max(1, hi - max(lo, cursor) - length))
                span = (a, a + length)
            a, b = span
            pieces.append(clean[cursor:a])
            start = sum(len(p) for p in pieces)
            if dreamon:
                targets, runs = hole_targets(rng, clean[a:b], hole_positions(rng, b - a, max_pad), ids.expand, ids.delete)
                pieces.append(targets)
                forced.extend(start + i for i, run in enumerate(runs) if run != 1 and start + i < n)
                holes.append((start, len(targets)))
            else:
                pad = 0 if rng.random() < 0.3 or b - a == 1 else rng.randint(1, max_pad)
                pieces.append(clean[a:b])
                pieces.append(np.full(pad, end, dtype=np.int32))
                holes.append((start, b - a + pad))
            cursor = b
        pieces.append(clean[cursor:])
        clean = np.concatenate(pieces)[:n]
        # Padding can push a late hole past the end: then the example is an ordinary one.
        eligible = [i for start, length in holes for i in range(start, min(start + length, n))] or list(range(1, n))
    # Mask ratio t ~ U(0, 1] in its discrete form: k of the eligible positions, k uniform in 1..len. Weighting
    # each masked position by 1 / t / len = 1 / k is Dream's 1/t weighting per position that may be masked,
    # without the huge weight a forced single mask at a tiny t would get. DreamOn's expand and delete positions are
    # always among the k, so k starts at their count.
    k = rng.randint(max(1, len(forced)), len(eligible))
    free = sorted(set(eligible) - set(forced)) if forced else eligible
    masked = np.zeros(n, dtype=bool)
    masked[forced] = True
    masked[rng.sample(free, k - len(forced))] = True
    noisy = np.where(masked, mask, clean)
    weight = masked.astype(np.float32) / k
    return noisy, clean, weight


def batch(rng: random.Random, data: Corpus, size: int, n: int, ids: Tokens, objective: str = "dream", max_pad: int = MAX_PAD):
    rows = [make_example(rng, data, n, ids, objective, max_pad) for _ in range(size)]
    return tuple(torch.from_numpy(np.stack(col)) for col in zip(*rows))


def diffusion_loss(model: DreamModel, noisy, clean, weight):
    """Weighted cross-entropy on the masked positions; position j is read from the output row j - 1."""
    b, j = torch.nonzero(weight[:, 1:] > 0, as_tuple=True)
    j = j + 1
    hidden = model.hidden(noisy)
    logits = model.lm_head(hidden[b, j - 1]).float()
    ce = F.cross_entropy(logits, clean[b, j].long(), reduction="none")
    return (ce * weight[b, j]).sum() / noisy.shape[0], ce.mean()


def check_args(args: argparse.Namespace) -> dict:
    """Refuses what would fail later with a traceback, in a sentence; returns the --config overrides."""
    for name in ("batch", "seq", "lr", "threads", "checkpoint_minutes", "log_every", "max_pad"):
        if not getattr(args, name) > 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be more than 0 (it is {getattr(args, name)})")
    for name in ("minutes", "max_steps"):
        if not getattr(args, name) >= 0:
            raise SystemExit(f"--{name.replace('_', '-')} must be 0 or more (it is {getattr(args, name)})")
    require_file(args.tokenizer / "tokenizer.json", "tokenizer.py")
    if args.init:
        require_file(args.init, "from_gguf.py")
    for split in ("train", "val"):
        require_file(args.corpus / f"{split}.jsonl", "corpus.py")
    try:
        overrides = json.loads(args.config)
    except json.JSONDecodeError as e:
        raise SystemExit(f"--config is not JSON: {e}") from None
    fields = set(DreamConfig.__dataclass_fields__)
    if not isinstance(overrides, dict) or set(overrides) - fields:
        raise SystemExit(f"--config takes an object with some of: {', '.join(sorted(fields))}")
    return overrides


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--tokenizer", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=100.0, help="wall-clock budget; the schedule decays over it")
    ap.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (0: only the budget)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--config", type=str, default="{}", help="JSON overrides of DreamConfig (for tiny test runs)")
    ap.add_argument("--checkpoint-minutes", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--objective", choices=OBJECTIVES, default="dreamon",
                    help="dreamon: holes of any length with <|expand|> and <|delete|> targets (train/dreamon.py); "
                         "dream: holes padded with end-of-text, the shipped model's objective")
    ap.add_argument("--precision", choices=PRECISIONS, default="auto",
                    help="bf16 autocast or fp32; auto: bf16 where the CPU has AVX-512, else fp32 (bf16 is far slower there)")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--max-pad", type=int, default=MAX_PAD,
                    help="most padding positions (end-of-text, or DreamOn's deletes) a hole gets beyond its text")
    ap.add_argument("--init", type=Path, help="a checkpoint whose weights a new run starts from (train/from_gguf.py)")
    args = ap.parse_args()
    overrides = check_args(args)
    torch.set_num_threads(args.threads)

    tok = Tokenizer.from_file(str(args.tokenizer / "tokenizer.json"))
    ids = Tokens(tok)
    end, mask = ids.end, ids.mask
    if args.objective == "dreamon" and (ids.expand is None or ids.delete is None):
        raise SystemExit(f"{args.tokenizer / 'tokenizer.json'} has no {EXPAND} and {DELETE}, which --objective dreamon "
                         "predicts: make the tokenizer again with train/tokenizer.py (or train with --objective dream)")
    cfg = DreamConfig(vocab_size=tok.get_vocab_size(), max_position_embeddings=args.seq, mask_token_id=mask,
                      pad_token_id=end, eos_token_id=end, **overrides)
    train_data, val_data = Corpus(args.corpus, "train", tok), Corpus(args.corpus, "val", tok)
    model = DreamModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    args.out.mkdir(parents=True, exist_ok=True)
    ckpt_path = args.out / "checkpoint.pt"
    state = {"step": 0, "seconds": 0.0, "tokens": 0, "log": []}
    if ckpt_path.exists():
        ckpt = torch.load(ckpt_path, weights_only=False)
        if ckpt["config"] != asdict(cfg):
            raise SystemExit(f"{ckpt_path} is a run with another model configuration: give a new --out to start one")
        if ckpt.get("objective", "dream") != args.objective:
            raise SystemExit(f"{ckpt_path} is a run with --objective {ckpt.get('objective', 'dream')}: give that, or a new --out to start one")
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        state = ckpt["state"]
        print(f"resumed at step {state['step']}, {state['seconds'] / 60:.1f} min, {state['tokens']:,} tokens", flush=True)
    elif args.init:
        init = torch.load(args.init, map_location="cpu", weights_only=False)
        if init["config"] != asdict(cfg):
            raise SystemExit(f"{args.init} is a model with another configuration (or tokenizer) than this run's")
        model.load_state_dict(init["model"])
        print(f"starting from the weights of {args.init}", flush=True)
    rng = random.Random(args.seed * 1_000_003 + state["step"])
    val_batch = batch(random.Random(12345), val_data, 32, args.seq, ids, args.objective, args.max_pad)
    bf16 = uses_bf16(args.precision)
    print(f"{model.parameter_count():,} parameters; train {len(train_data.ids):,} tokens, val {len(val_data.ids):,}; "
          f"objective {args.objective}; {'bf16 autocast' if bf16 else 'fp32'}", flush=True)

    def save():
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "state": state,
                    "config": asdict(cfg), "objective": args.objective}, ckpt_path.with_suffix(".tmp"))
        ckpt_path.with_suffix(".tmp").replace(ckpt_path)
        (args.out / "log.json").write_text(json.dumps(state["log"]) + "\n")

    budget = args.minutes * 60
    started, last_save = time.time() - state["seconds"], time.time()
    warmup = 100
    while True:
        elapsed = time.time() - started
        if elapsed >= budget or (args.max_steps and state["step"] >= args.max_steps):
            break
        frac = elapsed / budget
        lr = args.lr * min(1.0, (state["step"] + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))
        for g in opt.param_groups:
            g["lr"] = lr
        noisy, clean, weight = batch(rng, train_data, args.batch, args.seq, ids, args.objective, args.max_pad)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, ce = diffusion_loss(model, noisy, clean, weight)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["step"] += 1
        state["tokens"] += args.batch * args.seq
        state["seconds"] = time.time() - started
        if state["step"] % args.log_every == 0 or state["step"] == 1:
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                val_loss, val_ce = diffusion_loss(model, *val_batch)
            entry = {"step": state["step"], "minutes": round(state["seconds"] / 60, 2), "tokens": state["tokens"], "lr": lr,
                     "loss": round(loss.item(), 4), "masked_ce": round(ce.item(), 4), "val_loss": round(val_loss.item(), 4),
                     "val_masked_ce": round(val_ce.item(), 4)}
            state["log"].append(entry)
            print(json.dumps(entry), flush=True)
        if time.time() - last_save > args.checkpoint_minutes * 60:
            save()
            last_save = time.time()
    save()
    print(f"done: step {state['step']}, {state['tokens']:,} tokens, {state['seconds'] / 60:.1f} min", flush=True)


if __name__ == "__main__":
    main()

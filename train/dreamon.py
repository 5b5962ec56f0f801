"""DreamOn's hole targets (holes of unknown length): a hole is given a number of mask positions that need not be the
length of its text, and each position's target says what the decoder must do there.

A hole whose text is L tokens, given M positions:
- M = L: each position's target is its token, as in Dream's objective.
- M < L: the text is cut into M consecutive runs; a run of one token is that token's target, a longer run is one
  `<|expand|>` target (the decoder turns an expanded mask into two masks, so a run of two needs one expansion and a
  longer run one expansion per level until each mask holds one token).
- M > L: the L tokens, then M - L `<|delete|>` targets (the decoder removes a deleted position and the masks after it
  in its hole, so the deletes close the hole).

An expand or delete target is never a revealed token in the input: the decoder acts on it as soon as it is predicted,
so those positions are always masked. The rules follow DreamOn's SFT dataset (end padding drawn per hole and always
masked, merges only of masked tokens into one expand target), with the number of positions drawn per hole.
"""

import random

import numpy as np


def hole_targets(rng: random.Random, text: np.ndarray, positions: int, expand: int, delete: int) -> tuple[np.ndarray, list[int]]:
    """The targets of a hole whose `text` gets `positions` masks, and the number of text tokens each position stands
    for (1 for a token, 2 or more for an expand, 0 for a delete)."""
    length = len(text)
    if positions < 1 or length < 1:
        raise ValueError(f"a hole needs a text and at least one position (text {length}, positions {positions})")
    if positions >= length:
        targets = np.concatenate([text, np.full(positions - length, delete, dtype=text.dtype)])
        return targets, [1] * length + [0] * (positions - length)
    # M - 1 cuts among the L - 1 gaps between tokens: every composition of L into M runs is equally likely.
    cuts = sorted(rng.sample(range(1, length), positions - 1))
    bounds = [0, *cuts, length]
    runs = [b - a for a, b in zip(bounds, bounds[1:])]
    targets = np.array([text[a] if b - a == 1 else expand for a, b in zip(bounds, bounds[1:])], dtype=text.dtype)
    return targets, runs


def hole_positions(rng: random.Random, length: int, max_pad: int) -> int:
    """How many masks a hole whose text is `length` tokens gets: fewer than its text for 35 % of the holes of two
    tokens or more (uniform in 1..length-1), else its length plus padding (none for 30 %, else 1..max_pad). A single
    token is padded too, unlike in Dream's objective: the editor starts a hole at a few masks, and a one-token answer
    must give the rest back."""
    r = rng.random()
    if length >= 2 and r < 0.35:
        return rng.randint(1, length - 1)
    pad = 0 if rng.random() < 0.3 else rng.randint(1, max_pad)
    return length + pad


def expanded(targets: np.ndarray, runs: list[int], text: np.ndarray, expand: int, delete: int) -> list[int]:
    """The text the targets decode to when each expand is grown to its run and each delete removed: what a check
    holds against the hole's text."""
    out: list[int] = []
    at = 0
    for target, run in zip(targets.tolist(), runs):
        if target == delete:
            assert run == 0
            continue
        if target == expand:
            assert run >= 2
        else:
            assert run == 1 and target == text[at]
        out.extend(text[at:at + run].tolist())
        at += run
    return out

"""Small statistics helpers, with holes for Dream-Coder to fill: `dream-coder fill examples/stats.py`."""


def mean(xs):
    """The arithmetic mean of a non-empty list."""
    total = ???
    return total / len(xs)


def median(xs):
    """The middle value of xs (the mean of the two middle values for an even count)."""
    ordered = sorted(xs)
    n = len(ordered)
    if n % 2 == 1:
        return ???:8
    return (ordered[n // 2 - 1] + ordered[n // 2]) / 2


def variance(xs):
    m = mean(xs)
    return sum(???:12 for x in xs) / len(xs)

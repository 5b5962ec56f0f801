"""The pipeline's scripts read each other's outputs: a missing one is named, with the script that makes it."""

from pathlib import Path


def require_file(path: Path, made_by: str) -> None:
    """Stops with a sentence (not a traceback) when `path`, an output of train/`made_by`, is missing."""
    if not path.is_file():
        raise SystemExit(f"{path} is missing: make it with train/{made_by} (docs/training.md)")

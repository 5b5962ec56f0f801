"""Builds the training corpus: the Python source files of the CPython standard library this interpreter runs
(PSF License 2.0), deduplicated and split into train / validation / test by file.

    python train/corpus.py --out train/work/corpus

Writes one JSON line per file ({"path", "text"}) to train.jsonl, val.jsonl and test.jsonl, and stats.json with the
sizes. The split depends only on a file's path inside the library, so the same CPython version always gives the
same split; SOURCES.md names the version the shipped model was trained on.
"""

import argparse
import hashlib
import json
import platform
import sysconfig
from pathlib import Path

# Files larger than this are mostly data tables (unicode names, test vectors), not code a person writes.
MAX_FILE_BYTES = 200_000
MAX_LINE_CHARS = 400
SPLITS = (("train", 90), ("val", 95), ("test", 100))


def split_of(rel_path: str) -> str:
    """Train 90 %, validation 5 %, test 5 %, by a hash of the path: stable across runs and machines."""
    bucket = int(hashlib.sha256(rel_path.encode()).hexdigest()[:8], 16) % 100
    return next(name for name, upper in SPLITS if bucket < upper)


def source_files(root: Path, limit: int | None = None):
    """The library's .py files, third-party packages excluded, in a stable order."""
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts and "dist-packages" not in p.parts)
    return files[:limit] if limit else files


def readable(text: str) -> bool:
    return len(text.encode()) <= MAX_FILE_BYTES and text.strip() != "" and all(len(line) <= MAX_LINE_CHARS for line in text.splitlines())


def build(root: Path, out: Path, limit: int | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    writers = {name: open(out / f"{name}.jsonl", "w", encoding="utf-8") for name, _ in SPLITS}
    seen: set[str] = set()
    stats = {name: {"files": 0, "bytes": 0} for name, _ in SPLITS}
    skipped = {"duplicate": 0, "not_utf8": 0, "large_or_data": 0}
    for path in source_files(root, limit):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            skipped["not_utf8"] += 1
            continue
        text = text.replace("\r\n", "\n")
        if not readable(text):
            skipped["large_or_data"] += 1
            continue
        digest = hashlib.sha256(text.encode()).hexdigest()
        if digest in seen:
            skipped["duplicate"] += 1
            continue
        seen.add(digest)
        rel = path.relative_to(root).as_posix()
        name = split_of(rel)
        writers[name].write(json.dumps({"path": rel, "text": text}) + "\n")
        stats[name]["files"] += 1
        stats[name]["bytes"] += len(text.encode())
    for w in writers.values():
        w.close()
    result = {"source": f"CPython {platform.python_version()} standard library ({root})", "licence": "PSF-2.0",
              "splits": stats, "skipped": skipped}
    (out / "stats.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(sysconfig.get_paths()["stdlib"]), help="library to read (default: this interpreter's)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, help="read only the first N files (for tests)")
    args = ap.parse_args()
    if not args.root.is_dir():
        raise SystemExit(f"--root {args.root} is not a folder")
    print(json.dumps(build(args.root, args.out, args.limit), indent=2))


if __name__ == "__main__":
    main()

// Synthetic Hugging Face checkpoints laid out as the real ones (config.json values, tokenizer files and special-token
// ids, sharded safetensors with their index, model card), with the widths shrunk and random weights: written by
// synthetic_tokenizer.py and synthetic_checkpoint.py with train/.venv's Python.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { join } from "node:path";
import { PYTHON } from "./python-convert";
import { repoRoot } from "./test-models";

/** Runs synthetic_checkpoint.py with `args` (--shape, --out, …), on one thread. */
export function writeSyntheticCheckpoint(args: string[]): void {
    const r = spawnSync(PYTHON, [join(repoRoot, "test", "tools", "synthetic_checkpoint.py"), ...args], {
        cwd: repoRoot,
        encoding: "utf8",
        env: { ...process.env, OMP_NUM_THREADS: "1" }
    });
    assert.equal(r.status, 0, `synthetic_checkpoint.py ${args.join(" ")} failed:\n${r.stderr.slice(-3000)}`);
}

/** A Dream-Coder-v0-Instruct-7B-shaped checkpoint in a new folder named as the repository is, under `parent`. */
export function dreamCoderCheckpoint(parent: string): string {
    const dir = join(mkdtempSync(join(parent, "checkpoint-")), "Dream-Coder-v0-Instruct-7B");
    writeSyntheticCheckpoint(["--shape", "dream-coder-7b", "--out", dir]);
    return dir;
}

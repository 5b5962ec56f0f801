// Runs the bundled llama.cpp's convert_hf_to_gguf.py (the reference our converter must equal) with train/.venv's
// Python, through train/hf_to_gguf.py as train/export.py does: a synthetic or newly trained tokenizer's pre-tokenizer
// hash is unknown to the converter's table, so the architecture's class answers get_vocab_base_pre with the name
// given; and a tokenizer with DreamOn's <|expand|> and <|delete|> gets their ids declared
// (diffusion.expand_token_id, diffusion.delete_token_id). The two changes, made at run time.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./test-models";

export const PYTHON = join(repoRoot, "train", ".venv", "bin", "python");
export const LLAMA_CPP = join(repoRoot, "native", "build", "llama.cpp");

export interface PythonConvertOptions {
    /** The checkpoint's architecture (the converter finds it in config.json; hf_to_gguf.py patches both classes). */
    arch: "dream" | "llada";
    outType?: "auto" | "f32" | "f16" | "bf16";
    /** The pre-tokenizer name get_vocab_base_pre answers. */
    preTokenizer: string;
    vocabOnly?: boolean;
}

export async function pythonConvert(dir: string, outFile: string, o: PythonConvertOptions): Promise<void> {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run the install command (bash scripts/setup.sh)`);
    const argv = [dir, "--outfile", outFile, "--outtype", o.outType ?? "auto", ...(o.vocabOnly ? ["--vocab-only"] : [])];
    try {
        await promisify(execFile)(PYTHON, [join(repoRoot, "train", "hf_to_gguf.py"), "--pre", o.preTokenizer, ...argv], {
            cwd: repoRoot,
            maxBuffer: 1 << 28,
            env: { ...process.env, OMP_NUM_THREADS: "1" }
        });
    } catch (e) {
        const err = e as Error & { stderr?: string };
        throw new Error(`convert_hf_to_gguf.py failed on ${dir}:\n${(err.stderr ?? err.message).slice(-3000)}`);
    }
}

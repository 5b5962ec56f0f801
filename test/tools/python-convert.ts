// Runs the bundled llama.cpp's convert_hf_to_gguf.py (the reference our converter must equal) with train/.venv's
// Python. A synthetic or newly trained tokenizer's pre-tokenizer hash is unknown to the converter's table, so, as
// train/export.py does, the architecture's class answers get_vocab_base_pre with the name given: the one change,
// made at run time.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./test-models";

export const PYTHON = join(repoRoot, "train", ".venv", "bin", "python");
export const LLAMA_CPP = join(repoRoot, "native", "build", "llama.cpp");

/** The Python class convert_hf_to_gguf.py uses for each architecture: its module and name. */
const CLASSES = { dream: ["conversion.dream", "DreamModel"], llada: ["conversion.llada", "LLaDAModel"] } as const;

export interface PythonConvertOptions {
    arch: keyof typeof CLASSES;
    outType?: "auto" | "f32" | "f16" | "bf16";
    /** The pre-tokenizer name get_vocab_base_pre answers. */
    preTokenizer: string;
    vocabOnly?: boolean;
}

export async function pythonConvert(dir: string, outFile: string, o: PythonConvertOptions): Promise<void> {
    if (!existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: run the install command (bash scripts/setup.sh)`);
    const [module, cls] = CLASSES[o.arch];
    const argv = [dir, "--outfile", outFile, "--outtype", o.outType ?? "auto", ...(o.vocabOnly ? ["--vocab-only"] : [])];
    const code = [
        "import sys, runpy",
        `sys.path.insert(0, ${JSON.stringify(LLAMA_CPP)}); sys.path.insert(1, ${JSON.stringify(join(LLAMA_CPP, "gguf-py"))})`,
        `from ${module} import ${cls}`,
        `${cls}.get_vocab_base_pre = lambda self, tokenizer: ${JSON.stringify(o.preTokenizer)}`,
        `sys.argv = ['convert_hf_to_gguf.py', *${JSON.stringify(argv)}]`,
        `runpy.run_path(${JSON.stringify(join(LLAMA_CPP, "convert_hf_to_gguf.py"))}, run_name='__main__')`
    ].join("\n");
    try {
        await promisify(execFile)(PYTHON, ["-c", code], { cwd: repoRoot, maxBuffer: 1 << 28, env: { ...process.env, OMP_NUM_THREADS: "1" } });
    } catch (e) {
        const err = e as Error & { stderr?: string };
        throw new Error(`convert_hf_to_gguf.py failed on ${dir}:\n${(err.stderr ?? err.message).slice(-3000)}`);
    }
}

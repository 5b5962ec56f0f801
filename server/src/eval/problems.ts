// The HumanEval problem sets, read from the copies in data/humaneval/ (MIT, OpenAI; see SOURCE.md there).
// Every problem becomes the same shape: the text before the hole, the hole's ground truth, the text after
// it, and the tests. Plain HumanEval is completion: the prompt is the prefix, the whole body is the hole.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

export const DATA_DIR = join(__dirname, "..", "..", "..", "..", "data", "humaneval");

export const PROBLEM_SETS = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
    humaneval: "HumanEval.jsonl.gz"
} as const;
export type ProblemSet = keyof typeof PROBLEM_SETS;

export interface Problem {
    set: ProblemSet;
    taskId: string;
    entryPoint: string;
    prefix: string;
    /** The hole's ground truth (the canonical solution's span). */
    truth: string;
    suffix: string;
    /** Defines check(candidate). */
    test: string;
}

interface Record {
    task_id: string;
    entry_point: string;
    prompt: string;
    suffix?: string;
    canonical_solution: string;
    test: string;
}

export function isProblemSet(name: string): name is ProblemSet {
    return Object.hasOwn(PROBLEM_SETS, name);
}

export function loadProblems(set: ProblemSet, dataDir = DATA_DIR): Problem[] {
    const path = join(dataDir, PROBLEM_SETS[set]);
    let raw: Buffer;
    try {
        raw = readFileSync(path);
    } catch (e) {
        throw new Error(`missing data file ${path} for the ${set} set (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the sets ship in the package's data/humaneval/`);
    }
    const lines = gunzipSync(raw).toString("utf8").split("\n").filter((l) => l.trim() !== "");
    return lines.map((line, i) => {
        const r = JSON.parse(line) as Record;
        for (const key of ["task_id", "entry_point", "prompt", "canonical_solution", "test"] as const) {
            if (typeof r[key] !== "string") throw new Error(`${path}: line ${i + 1} has no ${key}`);
        }
        return { set, taskId: r.task_id, entryPoint: r.entry_point, prefix: r.prompt, truth: r.canonical_solution, suffix: r.suffix ?? "", test: r.test };
    });
}

/** The program that passes when the completion is right: prefix + completion + suffix + tests + check(entry point). */
export function programFor(problem: Problem, completion: string): string {
    return `${problem.prefix}${completion}${problem.suffix}\n\n${problem.test}\n\ncheck(${problem.entryPoint})\n`;
}

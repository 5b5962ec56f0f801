// The problem sets. HumanEval and HumanEval-Infilling (data/humaneval/, MIT, OpenAI; see SOURCE.md there): a
// completion passes when the problem's tests pass. The held-out Python spans of the shipped model's corpus
// (data/mini-py/, made by train/spans.py): a completion passes when the whole filled file still parses.
// Every problem becomes the same shape: the text before the hole, the hole's ground truth, the text after it,
// and how to check it. Plain HumanEval is completion: the prompt is the prefix, the whole body is the hole.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";

export const DATA_DIR = join(__dirname, "..", "..", "..", "..", "data");

export const PROBLEM_SETS = {
    "single-line": "humaneval/HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "humaneval/HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span-light": "humaneval/HumanEval-RandomSpanInfillingLight.jsonl.gz",
    humaneval: "humaneval/HumanEval.jsonl.gz",
    "py-lines": "mini-py/spans.jsonl.gz",
    "py-token": "mini-py/spans.jsonl.gz"
} as const;
export type ProblemSet = keyof typeof PROBLEM_SETS;

/** The held-out spans' files, which the parse check fills. */
const SPAN_FILES = "mini-py/files.jsonl.gz";

export type Check =
    /** The problem's tests define check(candidate); run them on the entry point. */
    | { kind: "tests"; entryPoint: string; test: string }
    /** The whole file, this hole filled, must parse: what comes before and after the hole in the file. */
    | { kind: "parse"; fileBefore: string; fileAfter: string };

export interface Problem {
    set: ProblemSet;
    taskId: string;
    prefix: string;
    /** The hole's ground truth (the canonical solution's span). */
    truth: string;
    suffix: string;
    check: Check;
    /** The set's trivial filler (its most frequent training line or token), for the baseline; absent for HumanEval. */
    trivial?: string;
}

interface HumanEvalRecord {
    task_id: string;
    entry_point: string;
    prompt: string;
    suffix?: string;
    canonical_solution: string;
    test: string;
}

interface SpanRecord {
    task_id: string;
    set: string;
    file: string;
    start: number;
    end: number;
    prompt: string;
    canonical_solution: string;
    suffix: string;
    trivial: string;
}

export function isProblemSet(name: string): name is ProblemSet {
    return Object.hasOwn(PROBLEM_SETS, name);
}

function readJsonl<T>(dataDir: string, file: string, set: string): { path: string; records: T[] } {
    const path = join(dataDir, file);
    let raw: Buffer;
    try {
        raw = readFileSync(path);
    } catch (e) {
        throw new Error(
            `missing data file ${path} for the ${set} set (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the sets ship in the package's data/`
        );
    }
    const lines = gunzipSync(raw)
        .toString("utf8")
        .split("\n")
        .filter((l) => l.trim() !== "");
    return { path, records: lines.map((line) => JSON.parse(line) as T) };
}

export function loadProblems(set: ProblemSet, dataDir = DATA_DIR): Problem[] {
    if (set === "py-lines" || set === "py-token") return loadSpans(set, dataDir);
    const { path, records } = readJsonl<HumanEvalRecord>(dataDir, PROBLEM_SETS[set], set);
    return records.map((r, i) => {
        for (const key of ["task_id", "entry_point", "prompt", "canonical_solution", "test"] as const) {
            if (typeof r[key] !== "string") throw new Error(`${path}: line ${i + 1} has no ${key}`);
        }
        return {
            set,
            taskId: r.task_id,
            prefix: r.prompt,
            truth: r.canonical_solution,
            suffix: r.suffix ?? "",
            check: { kind: "tests", entryPoint: r.entry_point, test: r.test }
        };
    });
}

function loadSpans(set: "py-lines" | "py-token", dataDir: string): Problem[] {
    const files = new Map(readJsonl<{ path: string; text: string }>(dataDir, SPAN_FILES, set).records.map((f) => [f.path, f.text]));
    const { path, records } = readJsonl<SpanRecord>(dataDir, PROBLEM_SETS[set], set);
    return records
        .filter((r) => r.set === set)
        .map((r) => {
            const text = files.get(r.file);
            if (text === undefined || text.slice(r.start, r.end) !== r.canonical_solution)
                throw new Error(`${path}: ${r.task_id} does not match ${r.file} in ${SPAN_FILES}`);
            return {
                set,
                taskId: r.task_id,
                prefix: r.prompt,
                truth: r.canonical_solution,
                suffix: r.suffix,
                trivial: r.trivial,
                check: { kind: "parse", fileBefore: text.slice(0, r.start), fileAfter: text.slice(r.end) }
            };
        });
}

/**
 * The program that passes when the completion is right: prefix + completion + suffix + tests + check(entry
 * point); for a span, Python's parser reading the whole filled file (a JSON string is a Python string literal).
 */
export function programFor(problem: Problem, completion: string): string {
    const c = problem.check;
    if (c.kind === "parse") return `import ast\nast.parse(${JSON.stringify(c.fileBefore + completion + c.fileAfter)})\n`;
    return `${problem.prefix}${completion}${problem.suffix}\n\n${c.test}\n\ncheck(${c.entryPoint})\n`;
}

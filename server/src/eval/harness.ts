// The evaluation: every problem under every decoding configuration, one loaded model, each completion run
// against the problem's tests in the sandbox. Records (one per problem and configuration) can be appended to a
// JSONL file as they finish, so an interrupted run resumes where it stopped; the summary is computed from
// the records alone.
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { cutWindow } from "../contextWindow";
import { REFERENCE_CONFIG, type DecodingConfig } from "../cli/decodingConfig";
import { decodeParams, trainedRoom } from "../jobs/denoise";
import type { DecodeParams } from "../runtime/native";
import type { DiffusionModel, Segment, StepEvent } from "../runtime/runtime";
import { DEFAULT_SETTINGS, type Settings } from "../../../common/settings";
import { programFor, type Problem, type ProblemSet } from "./problems";
import { DEFAULT_LIMITS, runPython, type Outcome, type RunResult, type SandboxLimits } from "./sandbox";

/**
 * How many tokens the hole gets. "truth": as many as the ground truth has in the model's tokenizer, decoded
 * to the end (no early stop) — the model is told the answer's length, as in Dream's infilling evaluation.
 * "fixed": the same budget for every hole, and after the first end-of-text the rest of the hole is
 * end-of-text (early stop) — what the editor does with a model of fixed-length holes, where the length is unknown.
 * "variable": the hole starts at `start` masks and the model grows and shrinks it (DreamOn's expand and delete), up
 * to VARIABLE_MAX_TOKENS — what the editor does with a model that has those tokens.
 */
export type HolePolicy = { kind: "truth" } | { kind: "fixed"; tokens: number } | { kind: "variable"; start: number };

/** A variable-length hole's start when the policy names none: DreamOn's. */
export const VARIABLE_START_TOKENS = 4;
/** The most tokens a variable-length hole may grow to: more than the sets' answers need. */
export const VARIABLE_MAX_TOKENS = 64;

export function parseHolePolicy(text: string): HolePolicy {
    if (text === "truth") return { kind: "truth" };
    const m = /^fixed:(\d+)$/.exec(text);
    if (m && Number(m[1]) >= 1) return { kind: "fixed", tokens: Number(m[1]) };
    const v = /^variable(?::(\d+))?$/.exec(text);
    if (v && (v[1] === undefined || (Number(v[1]) >= 1 && Number(v[1]) < VARIABLE_MAX_TOKENS))) {
        return { kind: "variable", start: v[1] === undefined ? VARIABLE_START_TOKENS : Number(v[1]) };
    }
    throw new Error(
        `bad hole policy "${text}": truth (the ground truth's token count), fixed:N (N tokens, early stop at end-of-text) ` +
            `or variable[:START] (START masks, 1 to ${VARIABLE_MAX_TOKENS - 1}, that the model grows and shrinks)`
    );
}

export function describeHolePolicy(policy: HolePolicy): string {
    switch (policy.kind) {
        case "truth":
            return "truth: each hole has the ground truth's token count, decoded without early stop";
        case "fixed":
            return `fixed:${policy.tokens}: each hole has ${policy.tokens} tokens, early stop at the first end-of-text`;
        case "variable":
            return `variable:${policy.start}: each hole starts at ${policy.start} tokens and the model grows or shrinks it, up to ${VARIABLE_MAX_TOKENS}`;
    }
}

export interface Completion {
    text: string;
    /** The hole's size in tokens (a variable-length hole's as it ended). */
    budget: number;
    forwardPasses: number;
    ms: number;
    /** Variable-length holes: the expand and delete tokens the model revealed. */
    expands?: number;
    deletes?: number;
}

/** Where completions come from: the model under a configuration, or a stand-in (canonical, empty) for checks. */
export type Completer = (problem: Problem, config: DecodingConfig) => Promise<Completion>;

/**
 * The decoder's parameters for a hole of `budget` tokens: greedy, one step per token (Dream's setting; a
 * threshold or an entropy bound then reveals more per step), no threshold, the product's default algorithm and
 * block length, except where the configuration names them. `earlyStop` fills the rest of the hole with
 * end-of-text after the first one (the fixed-budget policy).
 */
export function configParams(config: DecodingConfig, budget: number, earlyStop: boolean): DecodeParams {
    const settings: Settings = { ...DEFAULT_SETTINGS, steps: 0, temperature: 0, confidenceThreshold: 0, ...config.settings };
    const params: DecodeParams = { ...decodeParams(settings, budget), ...config.decoder, earlyStop };
    // block-length=N without a cache: exact passes, LLaDA's block schedule (the settings use it in cached modes only).
    if (settings.cache === "none" && config.settings.blockLength) Object.assign(params, { schedule: "block", blockLength: settings.blockLength });
    return params;
}

/**
 * The model fills the hole of prefix + hole + suffix, the base (non-chat) format. Text that does not fit the
 * model's trained context with the hole is cut to whole lines around it, as the editor's requests are (the
 * tests still run on the whole program).
 */
export function modelCompleter(model: DiffusionModel, policy: HolePolicy): Completer {
    const { expandToken, deleteToken } = model.info;
    if (policy.kind === "variable" && expandToken < 0) {
        throw new Error(`${basename(model.file.path)} has no expand and delete tokens: the variable hole policy needs a model that has them`);
    }
    return async (problem, config) => {
        const budget =
            policy.kind === "fixed" ? policy.tokens : policy.kind === "variable" ? VARIABLE_MAX_TOKENS : Math.max(1, model.tokenize(problem.truth).length);
        const text = problem.prefix + problem.suffix;
        const at = problem.prefix.length;
        const win = cutWindow(text, at, at, trainedRoom(model, budget), (piece) => model.tokenize(piece).length);
        const hole: Segment = policy.kind === "variable" ? { hole: policy.start, maxLength: budget } : { hole: budget };
        const segments: Segment[] = [text.slice(win.start, at), hole];
        if (win.end > at) segments.push(text.slice(at, win.end));
        let expands = 0;
        let deletes = 0;
        const started = performance.now();
        const r = await model.decode(segments, {
            ...configParams(config, budget, policy.kind === "fixed"),
            ...(policy.kind === "variable"
                ? {
                      onStep: (e: StepEvent) => {
                          // Chosen reveals only: the decoder's own fills (the deletes after a hole's first delete)
                          // come with a NaN confidence.
                          e.tokens.forEach((t, k) => {
                              if (Number.isNaN(e.confidences[k])) return;
                              if (t === expandToken) expands++;
                              else if (t === deleteToken) deletes++;
                          });
                      }
                  }
                : {})
        });
        const ms = performance.now() - started;
        const c: Completion = { text: r.holes[0].text, budget: r.holes[0].length, forwardPasses: r.forwardPasses, ms };
        return policy.kind === "variable" ? { ...c, expands, deletes } : c;
    };
}

/** Completions that need no model; "trivial" is the baseline the held-out spans are measured against. */
export const SUBSTITUTES = {
    canonical: "the ground truth itself (checks the harness)",
    empty: "nothing at all",
    trivial: "the set's most frequent training line or token (py-lines, py-token)"
} as const;
export type Substitute = keyof typeof SUBSTITUTES;

/** The stand-ins of SUBSTITUTES. No forward pass. */
export function substituteCompleter(kind: Substitute): Completer {
    return async (problem) => {
        if (kind === "trivial" && problem.trivial === undefined)
            throw new Error(`the ${problem.set} set has no trivial filler: --substitute trivial is for py-lines and py-token`);
        const text = kind === "canonical" ? problem.truth : kind === "trivial" ? problem.trivial! : "";
        return { text, budget: 0, forwardPasses: 0, ms: 0 };
    };
}

export interface EvalRecord {
    config: string;
    set: ProblemSet;
    taskId: string;
    policy: string;
    completion: string;
    budget: number;
    passed: boolean;
    outcome: Outcome;
    /** The completion equals the ground truth, trailing whitespace aside. */
    exactMatch: boolean;
    forwardPasses: number;
    ms: number;
    /** Variable-length holes: the expand and delete tokens the model revealed. */
    expands?: number;
    deletes?: number;
    /** When it did not pass: the end of its output (the traceback, usually). */
    error?: string;
}

export interface EvalOptions {
    problems: Problem[];
    configs: DecodingConfig[];
    complete: Completer;
    /** Written into every record; a resume file made under another policy is refused. */
    policy: string;
    /** JSONL of finished records: read first (those are skipped), appended to as records finish. */
    resume?: string;
    limits?: SandboxLimits;
    onRecord?: (record: EvalRecord, done: number, total: number) => void;
}

const recordKey = (r: { config: string; taskId: string }) => `${r.config}\u0000${r.taskId}`;

/** Runs what is not in the resume file yet; returns every record of these problems and configurations. */
export async function runEval(options: EvalOptions): Promise<EvalRecord[]> {
    const { problems, configs, complete, policy } = options;
    const wanted = new Set(problems.flatMap((p) => configs.map((c) => recordKey({ config: c.name, taskId: p.taskId }))));
    const records = new Map<string, EvalRecord>();
    for (const r of options.resume ? readRecords(options.resume) : []) {
        if (r.policy !== policy) throw new Error(`${options.resume} was made with hole policy ${r.policy}, not ${policy}: use another file`);
        if (wanted.has(recordKey(r))) records.set(recordKey(r), r);
    }
    const total = wanted.size;
    for (const problem of problems) {
        // Configurations that agree produce the same program: run it once.
        const runs = new Map<string, Promise<RunResult>>();
        for (const config of configs) {
            const key = recordKey({ config: config.name, taskId: problem.taskId });
            if (records.has(key)) continue;
            const c = await complete(problem, config);
            let run = runs.get(c.text);
            if (!run) {
                run = runPython(programFor(problem, c.text), options.limits ?? DEFAULT_LIMITS);
                runs.set(c.text, run);
            }
            const result = await run;
            const record: EvalRecord = {
                config: config.name,
                set: problem.set,
                taskId: problem.taskId,
                policy,
                completion: c.text,
                budget: c.budget,
                passed: result.outcome === "passed",
                outcome: result.outcome,
                exactMatch: c.text.trimEnd() === problem.truth.trimEnd(),
                forwardPasses: c.forwardPasses,
                ms: c.ms
            };
            if (c.expands !== undefined) Object.assign(record, { expands: c.expands, deletes: c.deletes });
            if (!record.passed) record.error = `${result.outcome}: ${result.output.slice(-300)}`;
            records.set(key, record);
            if (options.resume) appendFileSync(options.resume, `${JSON.stringify(record)}\n`);
            options.onRecord?.(record, records.size, total);
        }
    }
    return [...records.values()];
}

function readRecords(path: string): EvalRecord[] {
    if (!existsSync(path)) return [];
    return readFileSync(path, "utf8")
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map((line, i) => {
            try {
                return JSON.parse(line) as EvalRecord;
            } catch {
                throw new Error(`${path}: line ${i + 1} is not JSON (a record cut short? remove that line to resume)`);
            }
        });
}

export interface ConfigSummary {
    config: string;
    problems: number;
    passed: number;
    passAt1: number;
    exactMatch: number;
    forwardPassesPerProblem: number;
    /** Hole tokens decided per forward pass; null without forward passes (a stand-in completer). */
    tokensPerPass: number | null;
    p50Ms: number;
    p95Ms: number;
    /** Share of problems whose completion equals the reference configuration's (none: exact decoding); null without it. */
    agreesWithExact: number | null;
    /** Variable-length holes: expand and delete tokens revealed per problem; null for fixed-length holes. */
    expandsPerProblem: number | null;
    deletesPerProblem: number | null;
}

/** Nearest-rank percentile (`p` in percent); 0 for no values. */
export function percentile(values: number[], p: number): number {
    if (values.length === 0) return 0;
    const sorted = [...values].sort((a, b) => a - b);
    return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export function summarize(records: EvalRecord[], configs: DecodingConfig[]): ConfigSummary[] {
    const exact = new Map(records.filter((r) => r.config === REFERENCE_CONFIG).map((r) => [r.taskId, r.completion]));
    return configs.map((c) => {
        const rows = records.filter((r) => r.config === c.name);
        const n = rows.length;
        const passes = rows.reduce((a, r) => a + r.forwardPasses, 0);
        const compared = rows.filter((r) => exact.has(r.taskId));
        return {
            config: c.name,
            problems: n,
            passed: rows.filter((r) => r.passed).length,
            passAt1: n ? rows.filter((r) => r.passed).length / n : 0,
            exactMatch: n ? rows.filter((r) => r.exactMatch).length / n : 0,
            forwardPassesPerProblem: n ? passes / n : 0,
            tokensPerPass: passes ? rows.reduce((a, r) => a + r.budget, 0) / passes : null,
            p50Ms: percentile(
                rows.map((r) => r.ms),
                50
            ),
            p95Ms: percentile(
                rows.map((r) => r.ms),
                95
            ),
            agreesWithExact: compared.length ? compared.filter((r) => r.completion === exact.get(r.taskId)).length / compared.length : null,
            expandsPerProblem: perProblem(rows, (r) => r.expands),
            deletesPerProblem: perProblem(rows, (r) => r.deletes)
        };
    });
}

/** The mean of a per-record count over records that have it; null when none has (fixed-length holes). */
function perProblem(rows: EvalRecord[], count: (r: EvalRecord) => number | undefined): number | null {
    const counted = rows.map(count).filter((n): n is number => n !== undefined);
    return counted.length ? counted.reduce((a, b) => a + b, 0) / counted.length : null;
}

export function markdownTable(summaries: ConfigSummary[]): string {
    const pct = (x: number) => `${(100 * x).toFixed(1)} %`;
    // Variable-length holes add what the model did to them.
    const variable = summaries.some((s) => s.expandsPerProblem !== null);
    const lines = [
        `| config | problems | pass@1 | exact match | forward passes / problem | tokens / pass | latency p50 | latency p95 | agrees with exact |${variable ? " expands / problem | deletes / problem |" : ""}`,
        `| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |${variable ? " ---: | ---: |" : ""}`
    ];
    const count = (x: number | null) => (x === null ? "—" : x.toFixed(1));
    for (const s of summaries) {
        lines.push(
            `| ${s.config} | ${s.problems} | ${pct(s.passAt1)} (${s.passed}/${s.problems}) | ${pct(s.exactMatch)} | ${s.forwardPassesPerProblem.toFixed(1)} | ` +
                `${s.tokensPerPass === null ? "—" : s.tokensPerPass.toFixed(2)} | ${s.p50Ms.toFixed(0)} ms | ${s.p95Ms.toFixed(0)} ms | ` +
                `${s.agreesWithExact === null ? "—" : pct(s.agreesWithExact)} |` +
                (variable ? ` ${count(s.expandsPerProblem)} | ${count(s.deletesPerProblem)} |` : "")
        );
    }
    return `${lines.join("\n")}\n`;
}

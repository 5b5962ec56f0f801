// `dream-coder eval`: load the problems and the model once, run every configuration, print what was run
// (model, sets, hole policy, sandbox), a progress bar on a terminal, the Markdown table, and write the JSON.
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { SingleBar } from "cli-progress";
import { ModelHost } from "../modelHost";
import type { Settings } from "../../../common/settings";
import { type DecodingConfig, parseDecodingConfigs } from "../cli/decodingConfig";
import {
    describeHolePolicy,
    markdownTable,
    modelCompleter,
    parseHolePolicy,
    runEval,
    substituteCompleter,
    summarize,
    type Completer,
    type Substitute
} from "./harness";
import { DATA_DIR, isProblemSet, loadProblems, PROBLEM_SETS } from "./problems";
import { PYTHON, sandboxIsolation } from "./sandbox";

export interface EvalFlags {
    sets: string;
    configs: DecodingConfig[];
    hole: string;
    limit?: number;
    resume?: string;
    json: string;
    dataDir?: string;
    substitute?: Substitute;
}

/** --configs: the shared grammar, less reuse, which a cache kept from an earlier request of the same document needs. */
export function parseEvalConfigs(list: string): DecodingConfig[] {
    return parseDecodingConfigs(list, { reuse: "eval decodes each problem once, so reuse would have no earlier request to keep a cache from" });
}

/** `settings` is undefined only with --substitute, which needs no model. */
export async function evalCommand(flags: EvalFlags, settings: Settings | undefined): Promise<void> {
    const configs = flags.configs;
    const policy = parseHolePolicy(flags.hole);
    const sets = flags.sets.split(",").map((s) => s.trim());
    for (const s of sets) if (!isProblemSet(s)) throw new Error(`"${s}" is not a problem set: ${Object.keys(PROBLEM_SETS).join(", ")}`);
    const problems = sets.filter(isProblemSet).flatMap((s) => loadProblems(s, flags.dataDir ?? DATA_DIR).slice(0, flags.limit));
    const isolation = sandboxIsolation();

    const host = new ModelHost();
    let complete: Completer;
    let modelName: string;
    if (flags.substitute) {
        complete = substituteCompleter(flags.substitute);
        modelName = `none (${flags.substitute} completions)`;
    } else {
        host.configure(settings!);
        const model = await host.model();
        complete = modelCompleter(model, policy);
        // The first decode of each mode pays one-time setup (buffers, the worker, caches): keep it out of the latencies.
        if (problems.length) for (const c of configs) await complete(problems[0], c);
        modelName = `${model.file.path} (${model.info.architecture}, ${model.info.description})`;
    }
    const header = [
        `model: ${modelName}`,
        `problems: ${problems.length} (${sets.join(", ")}${flags.limit ? `, at most ${flags.limit} per set` : ""})`,
        `configurations: ${configs.map((c) => c.name).join(", ")} (greedy, one step per hole token)`,
        `hole: ${describeHolePolicy(policy)}`,
        `tests: ${PYTHON}; sandbox: ${isolation.applied}`,
        ...(problems.some((p) => p.check.kind === "parse") ? ["pass@1 of py-lines and py-token: the whole filled file parses (Python's ast)"] : []),
        ...(isolation.notIsolated ? [`not isolated here: ${isolation.notIsolated}`] : [])
    ];
    process.stdout.write(`${header.join("\n")}\n\n`);

    const bar = process.stderr.isTTY
        ? new SingleBar({ format: "eval [{bar}] {value}/{total} {config} {task} {eta_formatted}", stream: process.stderr, hideCursor: true })
        : undefined;
    bar?.start(problems.length * configs.length, 0, { config: "", task: "" });
    const started = performance.now();
    try {
        const records = await runEval({
            problems,
            configs,
            complete,
            policy: flags.hole,
            resume: flags.resume,
            onRecord: (r, done) => bar?.update(done, { config: r.config, task: r.taskId })
        });
        bar?.stop();
        const summaries = summarize(records, configs);
        // Several sets: a table per set first, then all of them together.
        const perSet =
            sets.length > 1
                ? Object.fromEntries(
                      sets.map((set) => [
                          set,
                          summarize(
                              records.filter((r) => r.set === set),
                              configs
                          )
                      ])
                  )
                : undefined;
        for (const [set, rows] of Object.entries(perSet ?? {})) process.stdout.write(`${set}:\n\n${markdownTable(rows)}\n`);
        if (perSet) process.stdout.write(`all sets:\n\n`);
        process.stdout.write(markdownTable(summaries));
        process.stdout.write(`\n${records.length} records, ${((performance.now() - started) / 1000).toFixed(0)} s this run\n`);
        mkdirSync(dirname(flags.json), { recursive: true });
        writeFileSync(flags.json, `${JSON.stringify({ model: modelName, header, configs, summaries, perSet, records }, null, 2)}\n`);
        process.stderr.write(`results: ${flags.json}\n`);
    } finally {
        bar?.stop();
        await host.dispose();
    }
}

#!/usr/bin/env node
// dream-coder: the language server's jobs from a terminal. fill, complete, rewrite and sketch read a file and
// print a diff (or the completion), or change the file with --in-place; serve runs the same jobs behind HTTP;
// models lists and downloads the catalog; runtime builds the runtime for this machine; bench measures
// inline-completion latency through a real server process.
import { writeFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import manifest from "../../../package.json";
import { evalCommand, type EvalFlags, parseEvalConfigs } from "../eval/command";
import { SUBSTITUTES } from "../eval/harness";
import { PROBLEM_SETS } from "../eval/problems";
import { BUNDLED_MODEL_ID, CATALOG, catalogEntry, modelRoute } from "../../../common/catalog";
import { listCatalog, modelsDirectory } from "../modelPaths";
import { HoleParser } from "../holes";
import { InlineCompleter } from "../jobs/completion";
import type { Denoised, JobOptions } from "../jobs/denoise";
import { fillHoles } from "../jobs/fill";
import { rewriteSelection } from "../jobs/rewrite";
import { sketchBody } from "../jobs/sketch";
import { ModelHost } from "../modelHost";
import { DECLARED, readSettings, setSetting, settingFromText, type Settings } from "../../../common/settings";
import { applyEdits, lineEnding, type SpanEdit } from "../spanEdits";
import { serve } from "../serve/serve";
import { parseBenchConfigs, runLatencyBench } from "./bench";
import { integer } from "./argParsers";
import type { DecodingConfig } from "./decodingConfig";
import { readSource } from "./source";
import { generationOrder, JobProgress, PullProgressBar, unifiedDiff } from "./output";
import { convertedModelPath, convertFolder, DEFAULT_QUANTIZATION, parseQuantization, pullModel } from "../pull";
import { type PullProgress, QUANT_TYPES, type QuantType, RUNTIME_TARGETS, type RuntimeTarget } from "../../../common/protocol";
import { buildRuntime, RuntimeBuildError } from "../builder/build";
import { builtRuntime, runtimeDirectory } from "../builder/built";
import { checkPrerequisites } from "../builder/prerequisites";

const port = (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("expected a port from 0 to 65535");
    return n;
};

/** The flags that set a dreamCoder.* setting, and the setting (a dotted key is nested: holes.marker). */
const SETTING_FLAGS = {
    model: ["--models-dir <dir>", "modelsDirectory"],
    machine: [
        ["-t, --threads <n>", "threads"],
        ["--gpu-layers <n>", "gpuLayers"]
    ],
    decoding: [
        ["--steps <n>", "steps"],
        ["--algorithm <name>", "algorithm"],
        ["--temperature <x>", "temperature"],
        ["--top-p <x>", "topP"],
        ["--cache <mode>", "cache"],
        ["--block-length <n>", "blockLength"],
        ["--confidence-threshold <x>", "confidenceThreshold"],
        ["--context-tokens <n>", "contextTokens"],
        ["--start-tokens <n>", "holes.startTokens"]
    ],
    fill: [
        ["--marker <text>", "holes.marker"],
        ["--hole-tokens <n>", "holes.defaultTokens"]
    ],
    sketch: [["--tokens <n>", "sketch.tokens"]]
} as const satisfies Record<string, readonly [string, string] | readonly (readonly [string, string])[]>;
type FlagAndKey = readonly [string, string];
const flagList = (g: FlagAndKey | readonly FlagAndKey[]): readonly FlagAndKey[] =>
    typeof g[0] === "string" ? [g as FlagAndKey] : (g as readonly FlagAndKey[]);

/**
 * A flag for a setting, described by the setting's own declaration in package.json: its description, its name
 * and default, its choices. The value itself is checked, type and range included, where every setting is read.
 */
function settingOption(flag: string, key: string): Option {
    const d = DECLARED[key];
    // The plain description whole; of a longer Markdown one, its first sentence.
    const about = d.description ?? (d.markdownDescription ?? "").replace(/`/g, "").split(/(?<=\.)\s/)[0];
    const option = new Option(flag, `${about} [dreamCoder.${key}, default ${JSON.stringify(d.default)}]`);
    return d.enum ? option.choices(d.enum) : option.argParser((text: string) => settingFromText(key, text));
}

function withSettingOptions(cmd: Command, ...groups: (keyof typeof SETTING_FLAGS)[]): Command {
    for (const g of groups) for (const [flag, key] of flagList(SETTING_FLAGS[g])) cmd.addOption(settingOption(flag, key));
    return cmd;
}

const MODEL_OPTION = ["-m, --model <path|id>", `GGUF file or catalog id (default: $DREAM_CODER_MODEL, else the bundled ${BUNDLED_MODEL_ID})`] as const;

/** Options every job command takes; they map onto the dreamCoder.* settings. */
function withModelOptions(cmd: Command): Command {
    return withSettingOptions(cmd.option(...MODEL_OPTION), "model", "machine", "decoding").option(
        "--order",
        "print the generation order: tokens coloured by the step that revealed them"
    );
}

interface ModelFlags {
    model?: string;
    order?: boolean;
}

function settingsFrom(flags: ModelFlags, extra: Record<string, unknown> = {}): Settings {
    // With no model named, the small bundled one: every command works out of the box, and writes code.
    const raw: Record<string, unknown> = { model: flags.model || process.env.DREAM_CODER_MODEL || BUNDLED_MODEL_ID, ...extra };
    for (const [flag, key] of Object.values(SETTING_FLAGS).flatMap(flagList)) {
        const value = (flags as Record<string, unknown>)[new Option(flag).attributeName()];
        if (value !== undefined) setSetting(raw, key, value);
    }
    const { settings, problems } = readSettings(raw);
    // The server keeps the default for a wrong setting; a command line stops, before anything is loaded.
    if (problems.length) throw new InvalidArgumentError(problems.map((p) => p.message).join("\n"));
    return settings;
}

/** Runs a job with a progress bar, and prints the generation order if asked. */
async function runJob<T extends { denoised: Denoised | null }>(
    flags: ModelFlags,
    settings: Settings,
    job: (host: ModelHost, options: JobOptions) => Promise<T>
): Promise<T> {
    const progress = new JobProgress();
    const host = new ModelHost(
        (s) => progress.status(s),
        (message) => process.stderr.write(`dream-coder: ${message}\n`)
    );
    host.configure(settings);
    const interrupt = new AbortController();
    const onSigint = () => interrupt.abort();
    process.once("SIGINT", onSigint);
    try {
        const result = await job(host, { settings, signal: interrupt.signal, onPartial: (p) => progress.step(p.step, p.totalSteps) });
        progress.stop();
        if (flags.order && result.denoised) process.stdout.write(await generationOrder(result.denoised.trace));
        return result;
    } finally {
        progress.stop();
        process.off("SIGINT", onSigint);
        await host.dispose();
    }
}

/** Prints the diff, or writes the file with --in-place. */
function deliver(path: string, before: string, edits: SpanEdit[], inPlace: boolean | undefined): void {
    const after = applyEdits(before, edits);
    if (inPlace) {
        writeFileSync(path, after);
        process.stderr.write(`${path}: ${edits.length} edit${edits.length === 1 ? "" : "s"} applied\n`);
    } else {
        process.stdout.write(unifiedDiff(path, before, after));
    }
}

/** Where 0-based line `i` of `lines` (the text split at "\n") starts. */
function lineOffset(lines: string[], i: number): number {
    return lines.slice(0, i).reduce((a, l) => a + l.length + 1, 0);
}

/** LINE:COL (1-based, as editors show them) to an offset. */
function offsetOf(text: string, at: string): number {
    const m = /^(\d+):(\d+)$/.exec(at);
    if (!m) throw new InvalidArgumentError(`--at wants LINE:COLUMN, 1-based, not "${at}"`);
    const lines = text.split("\n");
    const line = Number(m[1]) - 1;
    const col = Number(m[2]) - 1;
    if (line < 0 || line >= lines.length || col < 0 || col > lines[line].length) throw new InvalidArgumentError(`${at} is outside the file`);
    return lineOffset(lines, line) + col;
}

/** START-END lines (1-based, inclusive) to offsets. */
function lineRange(text: string, range: string): [number, number] {
    const m = /^(\d+)-(\d+)$/.exec(range);
    const lines = text.split("\n");
    if (!m || Number(m[1]) < 1 || Number(m[2]) < Number(m[1]) || Number(m[2]) > lines.length) {
        throw new InvalidArgumentError(`--lines wants START-END within the file's ${lines.length} lines, not "${range}"`);
    }
    const start = lineOffset(lines, Number(m[1]) - 1);
    const end = Math.min(text.length, lineOffset(lines, Number(m[2])));
    return [start, end];
}

const program = new Command("dream-coder")
    .description("Diffusion code models (Dream-Coder, Dream, DiffuCoder, LLaDA) on your files, through a patched llama.cpp")
    .version(manifest.version)
    .showHelpAfterError();

withSettingOptions(
    withModelOptions(program.command("fill <file>").description("fill every hole marker (??? or ???:N tokens) jointly, in one denoising run")),
    "fill"
)
    .option("-i, --in-place", "change the file instead of printing a diff")
    .action(async (file: string, flags: ModelFlags & { inPlace?: boolean }) => {
        const text = readSource(file);
        const settings = settingsFrom(flags);
        const holes = new HoleParser(settings.holes.marker).parse(text);
        if (holes.length === 0) throw new InvalidArgumentError(`${file} has no hole marker (${settings.holes.marker})`);
        const r = await runJob(flags, settings, (host, options) => host.run((m) => fillHoles(m, text, holes, options)));
        deliver(file, text, r.edits, flags.inPlace);
    });

withModelOptions(program.command("complete <file>").description("the inline completion at a place: infill between the text before and after it"))
    .requiredOption("--at <line:col>", "where the cursor is (1-based)")
    .action(async (file: string, flags: ModelFlags & { at: string }) => {
        const text = readSource(file);
        const offset = offsetOf(text, flags.at);
        const settings = settingsFrom(flags);
        const r = await runJob(flags, settings, (host, options) => new InlineCompleter().complete(host, file, text, offset, options));
        process.stdout.write(`${r.text}\n`);
    });

withModelOptions(program.command("rewrite <file>").description("rewrite lines under an instruction; prints the span edits as a diff"))
    .requiredOption("--lines <start-end>", "the lines to rewrite (1-based, inclusive)")
    .requiredOption("--instruction <text>", "what to change")
    .addOption(
        new Option("--mode <mode>", "instruct: the model rewrites; remask: re-denoise unlikely tokens (experimental)")
            .choices(["instruct", "remask"])
            .default("instruct")
    )
    .option("--language <id>", "language id shown to the model (default: from the file name)")
    .option("-i, --in-place", "change the file instead of printing a diff")
    .action(
        async (file: string, flags: ModelFlags & { lines: string; instruction: string; mode: "instruct" | "remask"; language?: string; inPlace?: boolean }) => {
            const text = readSource(file);
            const [start, end] = lineRange(text, flags.lines);
            const settings = settingsFrom(flags);
            const languageId = flags.language ?? languageOf(file);
            const r = await runJob(flags, settings, (host, options) =>
                host.run((m) =>
                    rewriteSelection(
                        m,
                        { selection: text.slice(start, end), at: start, eol: lineEnding(text), instruction: flags.instruction, languageId, mode: flags.mode },
                        options
                    )
                )
            );
            deliver(file, text, r.edits, flags.inPlace);
        }
    );

withSettingOptions(
    withModelOptions(program.command("sketch <file>").description("draw a function body at a place after its signature and docstring")),
    "sketch"
)
    .requiredOption("--at <line:col>", "where the body goes (1-based)")
    .option("-i, --in-place", "change the file instead of printing a diff")
    .action(async (file: string, flags: ModelFlags & { at: string; inPlace?: boolean }) => {
        const text = readSource(file);
        const offset = offsetOf(text, flags.at);
        const settings = settingsFrom(flags);
        const r = await runJob(flags, settings, (host, options) => host.run((m) => sketchBody(m, text, offset, options)));
        deliver(file, text, [r.edit], flags.inPlace);
    });

const models = program.command("models").description("the model catalog: list, download (a GGUF, or a checkpoint converted here), convert a folder");
withSettingOptions(models.command("list"), "model").action((flags: { modelsDir?: string }) => {
    const settings = readSettings({ modelsDirectory: flags.modelsDir }).settings;
    for (const m of listCatalog(settings)) {
        const state = m.path ? `${m.bundled ? "bundled" : "downloaded"} ${m.path}` : m.bundled ? "missing from this installation" : "not downloaded";
        process.stdout.write(`${m.id.padEnd(26)} ${(m.sizeBytes / 1e9).toFixed(1).padStart(5)} GB  ${state}${m.recommended ? "  (recommended)" : ""}\n`);
        process.stdout.write(`    ${m.name}: ${modelRoute(m)}\n    ${m.known}\n`);
    }
    process.stdout.write(`\nModels directory: ${modelsDirectory(settings)}\n`);
});

const quantizationOption = () =>
    new Option("--quantization <type>", `the model file's type (${QUANT_TYPES.join(", ")}; F16/BF16: not quantized)`)
        .default(DEFAULT_QUANTIZATION)
        .argParser(parseQuantization);

/** Runs a model pipeline with its progress bar and prints the model file it made. Ctrl+C stops it between two reads
 * or tensors: what it finished is kept for the next run. */
async function runPipeline(pipeline: (o: { signal: AbortSignal; onProgress: (p: PullProgress) => void }) => Promise<string>): Promise<void> {
    const interrupt = new AbortController();
    process.once("SIGINT", () => interrupt.abort());
    const bar = new PullProgressBar();
    try {
        process.stdout.write(`${await pipeline({ signal: interrupt.signal, onProgress: (p) => bar.update(p) })}\n`);
    } finally {
        bar.stop();
    }
}

withSettingOptions(
    models
        .command("pull <id>")
        .description(
            `download a catalog model (${CATALOG.filter((m) => !m.bundled)
                .map((m) => m.id)
                .join(", ")}): its GGUF, or its checkpoint converted and quantized here; an interrupted run resumes. A gated repository needs HF_TOKEN.`
        )
        .addOption(quantizationOption())
        .option("--keep-checkpoint", "keep the downloaded checkpoint (in the models directory as ID-checkpoint)"),
    "model",
    "machine"
).action(async (id: string, flags: { modelsDir?: string; threads?: string; quantization: QuantType; keepCheckpoint?: boolean }) => {
    const entry = catalogEntry(id);
    if (!entry) throw new InvalidArgumentError(`"${id}" is not in the catalog: ${CATALOG.map((m) => m.id).join(", ")}`);
    const settings = settingsFrom(flags as ModelFlags);
    await runPipeline((o) =>
        pullModel(entry, settings, { ...o, quantization: flags.quantization, keepCheckpoint: flags.keepCheckpoint, threads: settings.threads || undefined })
    );
});
withSettingOptions(
    models
        .command("convert <folder>")
        .description("convert a Hugging Face checkpoint folder (config.json, tokenizer, .safetensors) of a Dream or LLaDA model to a GGUF, without Python")
        .addOption(quantizationOption())
        .option("-o, --out <file>", "the GGUF to write (default: FOLDER-TYPE.gguf in the models directory)"),
    "model",
    "machine"
).action(async (folder: string, flags: { modelsDir?: string; threads?: string; quantization: QuantType; out?: string }) => {
    const settings = settingsFrom(flags as ModelFlags);
    const target = flags.out ? resolve(flags.out) : convertedModelPath(folder, flags.quantization, settings);
    const staging = join(dirname(target), ".partial", basename(target, ".gguf"));
    await runPipeline((o) => convertFolder(folder, target, staging, { ...o, quantization: flags.quantization, threads: settings.threads || undefined }));
});

const runtime = program
    .command("runtime")
    .description("the runtime built for this machine: patched llama.cpp and the addon compiled here, with a GPU backend (docs/building.md)");
runtime
    .command("build")
    .description(
        "build the runtime for this machine from the source the package carries, into ~/.cache/dream-coder/runtime (needs CMake, a C/C++ compiler, and the GPU backend's SDK); it replaces the one built before"
    )
    .addOption(
        new Option("--gpu <backend>", "cpu (no GPU), vulkan, cuda, or metal (macOS)")
            .choices(RUNTIME_TARGETS)
            .default(process.platform === "darwin" ? "metal" : "cpu")
    )
    .option("-j, --jobs <n>", "parallel compile jobs (default: this machine's cores)", integer(1))
    .option("--verbose", "print CMake's and the compilers' output")
    .action(async (flags: { gpu: RuntimeTarget; jobs?: number; verbose?: boolean }) => {
        try {
            await runPipeline(async (o) => {
                const onOutput = flags.verbose ? (line: string) => process.stderr.write(`${line}\n`) : undefined;
                return (await buildRuntime({ gpu: flags.gpu, jobs: flags.jobs, ...o, onOutput })).file;
            });
        } catch (e) {
            // Each missing prerequisite on its own line.
            if (e instanceof RuntimeBuildError && e.reason === "prerequisites") throw new Error(e.problems.join("\n"));
            throw e;
        }
    });
runtime
    .command("targets")
    .description("which runtimes this machine can build, what each lacks, and the built one this version would use")
    .action(async () => {
        for (const gpu of RUNTIME_TARGETS) {
            const { problems } = await checkPrerequisites(gpu);
            process.stdout.write(`${gpu.padEnd(7)} ${problems.length ? "missing prerequisites" : "can be built here"}\n`);
            for (const p of problems) process.stdout.write(`    ${p}\n`);
        }
        const built = builtRuntime();
        process.stdout.write(`\nBuilt runtime: ${built ? `${built.gpu}, ${built.file}` : `none for this version (in ${runtimeDirectory()})`}\n`);
    });

withSettingOptions(
    program
        .command("serve")
        .description(
            "an HTTP server for editors and tools: llama-server's /infill, OpenAI's /v1/completions and /v1/chat/completions, and /dream/fill and /dream/rewrite"
        )
        .option(...MODEL_OPTION),
    "model",
    "machine",
    "decoding",
    "fill"
)
    .option("--host <address>", "the address to listen on; any but loopback needs an API key", "127.0.0.1")
    .option("--port <n>", "the port (0: a free one, printed)", port, 8012)
    .option("--api-key <key>", "the key clients must send (Authorization: Bearer KEY); default $DREAM_CODER_API_KEY, which ps does not show")
    .option("--queue <n>", "requests that may wait while one runs; one more is answered 503", integer(0), 16)
    .option("--timeout <seconds>", "the longest a request may take, waiting included; then it is stopped and answered 504", integer(1), 300)
    .option("--max-body <bytes>", "the largest request body; a larger one is answered 413", integer(1024), 1 << 20)
    .option("--max-text <chars>", "the most characters of text one request may ask the model to read; more is answered 413", integer(1), 1 << 18)
    .action(async (flags: ModelFlags & { host: string; port: number; apiKey?: string; queue: number; timeout: number; maxBody: number; maxText: number }) => {
        const settings = settingsFrom(flags);
        const log = (line: string) => process.stderr.write(`dream-coder: ${line}\n`);
        const serving = await serve({
            settings,
            host: flags.host,
            port: flags.port,
            apiKey: flags.apiKey ?? (process.env.DREAM_CODER_API_KEY || undefined),
            queue: flags.queue,
            timeoutSeconds: flags.timeout,
            maxBodyBytes: flags.maxBody,
            maxTextChars: flags.maxText,
            log
        });
        process.stdout.write(`dream-coder: serving ${serving.modelId} on ${serving.url}\n`);
        const stop = () => void serving.close().then(() => process.exit(0));
        process.once("SIGINT", stop);
        process.once("SIGTERM", stop);
        try {
            await serving.loaded;
        } catch (e) {
            await serving.close();
            throw e;
        }
        log(`${serving.modelId} is loaded`);
    });

withModelOptions(program.command("bench").description("inline-completion latency as a user feels it: a scripted typing session through a real server process"))
    .option("--file <path>", "the source file to type (default: this package's server/src/holes.ts)")
    .option("--bursts <n>", "typing bursts", integer(1), 30)
    .addOption(
        new Option(
            "--compare <configurations>",
            "decoding configurations to measure side by side, one server each, e.g. none,dual,dual+reuse,dual+confidence-threshold=0.9 (reuse: dreamCoder.cacheReuse, each document's cache kept between requests)"
        )
            .argParser(parseBenchConfigs)
            .default(parseBenchConfigs("none,dual,dual+reuse"), "none,dual,dual+reuse")
    )
    .option("--json <path>", "where to write the results", "bench-results/lsp-latency.json")
    .action(async (flags: ModelFlags & { file?: string; bursts: number; json: string; compare: DecodingConfig[] }) => {
        await runLatencyBench(settingsFrom(flags), { ...flags, configs: flags.compare });
    });

withSettingOptions(
    program
        .command("eval")
        .description(
            "HumanEval infilling and held-out Python spans: pass@1, exact match, forward passes and latency per decoding configuration, tests run sandboxed"
        )
        .option(...MODEL_OPTION),
    "model",
    "machine"
)
    .option("--sets <list>", `${Object.keys(PROBLEM_SETS).join(", ")}`, "single-line")
    .addOption(
        new Option("--configs <list>", "decoding configurations, e.g. none,dual,dual+confidence-threshold=0.9,dual+entropy-bound=1,block-length=16")
            .argParser(parseEvalConfigs)
            .default(parseEvalConfigs("none,dual"), "none,dual")
    )
    .option(
        "--hole <policy>",
        "truth: the ground truth's token count; fixed:N: N tokens, early stop; variable[:START]: START tokens (4) that a model with expand and delete tokens grows and shrinks",
        "truth"
    )
    .option("--limit <n>", "the first N problems of each set", integer(1))
    .option("--resume <file.jsonl>", "finished problems: skipped if there, appended as they finish")
    .option("--json <path>", "where to write the results", "bench-results/eval.json")
    .option("--data-dir <dir>", "where the problem files are (default: the package's data/)")
    .addOption(
        new Option(
            "--substitute <kind>",
            `no model: every completion is ${Object.entries(SUBSTITUTES)
                .map(([k, v]) => `${k}: ${v}`)
                .join("; ")}`
        ).choices(Object.keys(SUBSTITUTES))
    )
    .action(async (flags: EvalFlags & ModelFlags) => {
        await evalCommand(flags, flags.substitute ? undefined : settingsFrom(flags));
    });

function languageOf(file: string): string {
    const ext = file.slice(file.lastIndexOf(".") + 1);
    const known: Record<string, string> = {
        py: "python",
        ts: "typescript",
        js: "javascript",
        rs: "rust",
        go: "go",
        c: "c",
        cpp: "cpp",
        java: "java",
        rb: "ruby",
        sh: "shellscript"
    };
    return known[ext] ?? ext;
}

// `dream-coder ... | head` closes stdout early: that is not an error.
process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
});

program.parseAsync().catch((e: Error) => {
    process.stderr.write(`dream-coder: ${e.message}\n`);
    process.exitCode = 1;
});

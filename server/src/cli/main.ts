#!/usr/bin/env node
// dream-coder: the language server's jobs from a terminal. fill, complete, rewrite and sketch read a file and
// print a diff (or the completion), or change the file with --in-place; models lists and downloads the
// catalog; bench measures inline-completion latency through a real server process.
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import manifest from "../../../package.json";
import { evalCommand, type EvalFlags } from "../eval/command";
import { SUBSTITUTES } from "../eval/harness";
import { PROBLEM_SETS } from "../eval/problems";
import { CATALOG, catalogEntry, catalogPath, downloadModel, listCatalog, modelsDirectory } from "../catalog";
import { HoleParser } from "../holes";
import { InlineCompleter } from "../jobs/completion";
import type { Denoised, JobOptions } from "../jobs/denoise";
import { fillHoles } from "../jobs/fill";
import { rewriteSelection } from "../jobs/rewrite";
import { sketchBody } from "../jobs/sketch";
import { ModelHost } from "../modelHost";
import type { CacheMode } from "../runtime/native";
import { readSettings, type Settings } from "../settings";
import { applyEdits, lineEnding, type SpanEdit } from "../spanEdits";
import { runLatencyBench } from "./bench";
import { DownloadProgress, generationOrder, JobProgress, unifiedDiff } from "./output";

const integer = (min: number) => (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
    return n;
};
const decimal = (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new InvalidArgumentError("expected a number");
    return n;
};

/** Options every job command takes; they map onto the dreamCoder.* settings. */
function withModelOptions(cmd: Command): Command {
    return cmd
        .option("-m, --model <path|id>", "GGUF file or catalog id (default: $DREAM_CODER_MODEL)")
        .option("--models-dir <dir>", "where catalog models are downloaded")
        .option("-t, --threads <n>", "CPU threads (0: chosen from the machine)", integer(0))
        .option("--gpu-layers <n>", "layers to offload in a GPU build (-1: all)", integer(-1))
        .option("--steps <n>", "denoising steps at most (0: one per token)", integer(0))
        .addOption(new Option("--algorithm <name>", "which masked token to reveal first").choices(["origin", "maskgit_plus", "topk_margin", "entropy"]))
        .option("--temperature <x>", "0: greedy", decimal)
        .option("--top-p <x>", "nucleus sampling", decimal)
        .addOption(new Option("--cache <mode>", "none: exact; prefix / dual: KV cache, block by block (default dual)").choices(["none", "prefix", "dual"]))
        .option("--block-length <n>", "tokens per block in the cached modes", integer(1))
        .option("--threshold <x>", "reveal every token of the block above this confidence per step (0: off)", decimal)
        .option("--context-tokens <n>", "document text shown around the cursor", integer(64))
        .option("--order", "print the generation order: tokens coloured by the step that revealed them");
}

interface ModelFlags {
    model?: string;
    modelsDir?: string;
    threads?: number;
    gpuLayers?: number;
    steps?: number;
    algorithm?: string;
    temperature?: number;
    topP?: number;
    cache?: string;
    blockLength?: number;
    threshold?: number;
    contextTokens?: number;
    order?: boolean;
}

function settingsFrom(flags: ModelFlags, extra: Record<string, unknown> = {}): Settings {
    const model = flags.model ?? process.env.DREAM_CODER_MODEL ?? "";
    if (!model)
        throw new InvalidArgumentError(`no model: pass --model with a GGUF file or one of ${CATALOG.map((m) => m.id).join(", ")}, or set DREAM_CODER_MODEL`);
    const { settings, problems } = readSettings({
        model,
        modelsDirectory: flags.modelsDir,
        threads: flags.threads,
        gpuLayers: flags.gpuLayers,
        steps: flags.steps,
        algorithm: flags.algorithm,
        temperature: flags.temperature,
        topP: flags.topP,
        cache: flags.cache,
        blockLength: flags.blockLength,
        confidenceThreshold: flags.threshold,
        contextTokens: flags.contextTokens,
        ...extra
    });
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
        const result = await job(host, { settings, signal: interrupt.signal, onPartial: (p) => progress.step(p.step, p.scheduleSteps) });
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

/** The file's text. Only UTF-8 is read, so that writing it back keeps every byte the jobs did not change. */
function readSource(path: string): string {
    let bytes: Buffer;
    try {
        bytes = readFileSync(path);
    } catch (e) {
        throw new InvalidArgumentError(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
    }
    try {
        // ignoreBOM keeps a byte-order mark in the text, so that it is written back too.
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
        throw new InvalidArgumentError(`${path} is not UTF-8 text; dream-coder reads and writes UTF-8 only, so it leaves the file alone`);
    }
}

const program = new Command("dream-coder")
    .description("Diffusion code models (Dream-Coder, Dream, DiffuCoder, LLaDA) on your files, through a patched llama.cpp")
    .version(manifest.version)
    .showHelpAfterError();

withModelOptions(program.command("fill <file>").description("fill every hole marker (??? or ???:N tokens) jointly, in one denoising run"))
    .option("--marker <text>", "the hole marker", "???")
    .option("--hole-tokens <n>", "tokens for a marker without a size", integer(1))
    .option("-i, --in-place", "change the file instead of printing a diff")
    .action(async (file: string, flags: ModelFlags & { marker: string; holeTokens?: number; inPlace?: boolean }) => {
        const text = readSource(file);
        const settings = settingsFrom(flags, { holes: { marker: flags.marker, defaultTokens: flags.holeTokens } });
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

withModelOptions(program.command("sketch <file>").description("draw a function body at a place after its signature and docstring"))
    .requiredOption("--at <line:col>", "where the body goes (1-based)")
    .option("--tokens <n>", "the body's budget", integer(1))
    .option("-i, --in-place", "change the file instead of printing a diff")
    .action(async (file: string, flags: ModelFlags & { at: string; tokens?: number; inPlace?: boolean }) => {
        const text = readSource(file);
        const offset = offsetOf(text, flags.at);
        const settings = settingsFrom(flags, { sketch: { tokens: flags.tokens } });
        const r = await runJob(flags, settings, (host, options) => host.run((m) => sketchBody(m, text, offset, options)));
        deliver(file, text, [r.edit], flags.inPlace);
    });

const models = program.command("models").description("the model catalog");
models
    .command("list")
    .option("--models-dir <dir>", "where catalog models are downloaded")
    .action((flags: { modelsDir?: string }) => {
        const settings = readSettings({ modelsDirectory: flags.modelsDir }).settings;
        for (const m of listCatalog(settings)) {
            process.stdout.write(
                `${m.id.padEnd(26)} ${(m.sizeBytes / 1e9).toFixed(1).padStart(5)} GB  ${m.path ? `downloaded ${m.path}` : "not downloaded"}${m.recommended ? "  (recommended)" : ""}\n    ${m.name} · ${m.uri} · from ${m.checkpoint}\n`
            );
        }
        process.stdout.write(`\nModels directory: ${modelsDirectory(settings)}\n`);
    });
models
    .command("pull <id>")
    .description(`download a catalog model (${CATALOG.map((m) => m.id).join(", ")}); an interrupted download resumes`)
    .option("--models-dir <dir>", "where catalog models are downloaded")
    .action(async (id: string, flags: { modelsDir?: string }) => {
        const entry = catalogEntry(id);
        if (!entry) throw new InvalidArgumentError(`"${id}" is not in the catalog: ${CATALOG.map((m) => m.id).join(", ")}`);
        const settings = readSettings({ modelsDirectory: flags.modelsDir }).settings;
        const bar = new DownloadProgress();
        const interrupt = new AbortController();
        process.once("SIGINT", () => interrupt.abort());
        const path = await downloadModel(entry.uri, modelsDirectory(settings), basename(catalogPath(entry, settings)), {
            signal: interrupt.signal,
            onProgress: (p) => bar.update(p.downloadedBytes, p.totalBytes)
        });
        bar.stop();
        process.stdout.write(`${path}\n`);
    });

withModelOptions(program.command("bench").description("inline-completion latency as a user feels it: a scripted typing session through a real server process"))
    .option("--file <path>", "the source file to type (default: this package's server/src/holes.ts)")
    .option("--bursts <n>", "typing bursts", integer(1), 30)
    .option(
        "--compare <modes>",
        "cache modes to measure side by side, one server each; +reuse keeps each document's cache between requests (e.g. none,dual,dual+reuse)",
        "none,dual,dual+reuse"
    )
    .option("--json <path>", "where to write the results", "bench-results/lsp-latency.json")
    .action(async (flags: ModelFlags & { file?: string; bursts: number; json: string; compare: string }) => {
        const modes = flags.compare.split(",").map((name) => {
            const [cache, reuse, ...rest] = name.trim().split("+");
            if (!["none", "prefix", "dual"].includes(cache) || (reuse !== undefined && (reuse !== "reuse" || cache === "none")) || rest.length) {
                throw new InvalidArgumentError(`--compare: "${name}" is not a cache mode (none, prefix, dual, prefix+reuse or dual+reuse)`);
            }
            return { cache: cache as CacheMode, reuse: reuse === "reuse" };
        });
        await runLatencyBench(settingsFrom(flags), { ...flags, modes });
    });

program
    .command("eval")
    .description("HumanEval infilling: pass@1, exact match, forward passes and latency per decoding configuration, tests run sandboxed")
    .option("-m, --model <path|id>", "GGUF file or catalog id (default: $DREAM_CODER_MODEL)")
    .option("--models-dir <dir>", "where catalog models are downloaded")
    .option("-t, --threads <n>", "CPU threads (0: chosen from the machine)", integer(0))
    .option("--gpu-layers <n>", "layers to offload in a GPU build (-1: all)", integer(-1))
    .option("--sets <list>", `${Object.keys(PROBLEM_SETS).join(", ")}`, "single-line")
    .option("--configs <list>", "decoding configurations, e.g. exact,dual,dual+threshold=0.9,dual+entropy=1,block=16", "exact,dual")
    .option("--hole <policy>", "truth: the ground truth's token count; fixed:N: N tokens, early stop", "truth")
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

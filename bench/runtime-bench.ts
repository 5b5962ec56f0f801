// npm run bench: the runtime's decoding latency per mode on generated dream models. What it measures, how, and
// every option are its help, declared with the program at the end of this file: `node out/bench/runtime-bench.js --help`.
import { execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { DecodeCancelledError, DiffusionModel, type DecodeOptions, type StepEvent } from "../server/src/runtime/runtime";
import { describeRuntime } from "../server/src/runtime/native";
import { BUNDLED_MODEL_ID } from "../common/catalog";
import { resolveModelPath } from "../server/src/modelPaths";
import { integer } from "../server/src/cli/argParsers";
import { type DecodingConfig, parseDecodingConfig, parseDecodingConfigs, REFERENCE_CONFIG } from "../server/src/cli/decodingConfig";
import { quantizedTestModel, repoRoot, testModel, type QuantType, type TestModelOptions } from "../test/tools/test-models";
import { SHAPES, writeBenchModel, writeQwen2Twin } from "./bench-model";

const SMALL: TestModelOptions = { arch: "dream", embd: 256, layers: 4, heads: 4, headsKv: 4, ff: 1024, vocab: 4096, context: 8192, type: "f16", seed: 11 };
type BenchShape = keyof typeof SHAPES;
/** bench/bench-model.ts's shapes: random Q4_0 weights, written once into .cache/models (7b: 4.3 GB). */
function benchShape(shape: BenchShape): TestModelOptions & { shape: BenchShape } {
    const s = SHAPES[shape];
    return { arch: "dream", embd: s.embd, layers: s.layers, heads: s.heads, headsKv: s.headsKv, ff: s.ff, vocab: s.vocab, context: s.context, shape };
}
// The quantized rows: the small model through llama-quantize, as users run real models. `path`: a file of
// --model-file's, measured as it is.
const MODELS: Record<string, TestModelOptions & { quant?: QuantType; shape?: BenchShape; path?: string }> = {
    small: SMALL,
    "small-Q4_K_M": { ...SMALL, quant: "Q4_K_M" },
    "small-Q8_0": { ...SMALL, quant: "Q8_0" },
    vocab152k: { ...SMALL, vocab: 151936 },
    // The bundled trained model: the one whose confidences mean something, so the threshold and entropy rows
    // show how many tokens a step reveals on code. Its trained context (512) limits the context column.
    mini: { arch: "dream", context: 512 },
    // Not in the default set: Dream-Coder 7B's shape (the GPU benchmark's model; hours of CPU for the full grid) and
    // bench-model.ts's small shape, which goes the same way through the code in seconds.
    "7b": benchShape("7b"),
    "bench-small": benchShape("small")
};

function benchModelPath(shape: BenchShape): string {
    const path = join(repoRoot, ".cache", "models", `bench-${shape}-dream.gguf`);
    if (!existsSync(path)) {
        mkdirSync(dirname(path), { recursive: true });
        console.error(`writing ${path} (bench/bench-model.ts, --size ${shape})`);
        writeBenchModel(path, "dream", SHAPES[shape]);
    }
    return path;
}

function modelPath(name: string): string {
    if (name === "mini") return resolveModelPath({ model: BUNDLED_MODEL_ID, modelsDirectory: "" });
    const { quant, shape, path, ...options } = MODELS[name];
    if (path) return path;
    if (shape) return benchModelPath(shape);
    return quant ? quantizedTestModel(quant, options) : testModel(options);
}
/** The modes measured unless --modes names others: exact, both caches, a threshold, an entropy bound, reuse. */
const DEFAULT_MODES = "none,prefix,dual,dual+confidence-threshold=0.9,dual+entropy-bound=1,dual+reuse";

interface Cell {
    model: string;
    threads: number;
    adaptiveThreads: boolean;
    context: number;
    hole: number;
    /** A decoding configuration as --modes writes it (the child process reads it again). */
    mode: string;
    cacheType: "f32" | "f16";
    maxSteps: number; // 0: run to the end
    file?: string; // model "file": the GGUF of --model-file
    gpuLayers?: number;
    reductions: "auto" | "on" | "off"; // deviceReductions
}

interface CellResult extends Cell {
    forwardPasses: number; // the decoder's steps; with a threshold or entropy bound, fewer than the hole's tokens
    fullPasses: number;
    forwardMsPerStep: number;
    sampleMsPerStep: number;
    copiedBytesPerStep?: number; // undefined: an addon that does not report it
    threadsUsed?: number; // the timed decode's threads (adaptiveThreads: as the machine's load allowed); undefined when stopped early
    msPerStep: number;
    totalMs: number;
    estimated: boolean;
    tokensPerSecond: number;
    peakRssMb: number;
    load: number; // the machine's 1-minute load average when the cell ended (other work on the cores)
    busyBefore?: number; // share of the cores busy (with other work) just before the cell started
    cpuMs: number; // the process's CPU time (user + system, all threads) over the decode
    runs?: number; // runs of the cell; the one with the lowest total is reported
    tokens: number[];
    equalToExact?: number;
    /** dual+reuse: the same request fresh (no cache kept), in the same process: its total and the share of equal tokens. */
    freshMs?: number;
    equalToFresh?: number;
    reusedTokens?: number;
    positions?: number;
    /** dual+reuse: the tokens before the first one the edit changed (what an autoregressive prompt cache keeps). */
    editedAt?: number;
}

function paramsFor(cell: Cell): DecodeOptions {
    const { settings, decoder } = parseDecodingConfig(cell.mode);
    const { cache, cacheReuse, ...named } = settings;
    // One token a step (steps = hole), blocks of 32, greedy, the decoder's order (maskgit_plus; the entropy bound's
    // EB-sampler ranks by it too): the same schedule for every mode, exact included, but what the mode names.
    return {
        steps: cell.hole,
        schedule: "block",
        blockLength: 32,
        temperature: 0,
        cacheType: cell.cacheType,
        deviceReductions: cell.reductions === "auto" ? "auto" : cell.reductions === "on",
        cache,
        ...named,
        ...decoder,
        ...(cacheReuse ? { reuseKey: "file:///bench.ts" } : {})
    };
}

/** This repository's server sources, repeated as needed: real code for the reuse cells' edits to find. */
function codeText(): string {
    const dir = join(repoRoot, "server", "src");
    return readdirSync(dir)
        .filter((f) => f.endsWith(".ts"))
        .sort()
        .map((f) => readFileSync(join(dir, f), "utf8"))
        .join("\n");
}

/**
 * dual+reuse: the request after a one-line edit. The previous request (same document key) fills the cache;
 * then a line a quarter into the window gets a few more characters, which moves every later token, and the
 * request is timed, then decoded again without reuse for its time and tokens.
 */
async function reuseAfterEdit(model: DiffusionModel, cell: Cell, options: DecodeOptions, onStep: (e: StepEvent) => void) {
    let text = codeText();
    while (model.tokenize(text).length < cell.context) text += `\n${text}`;
    const ids = model.tokenize(text).subarray(0, cell.context);
    const before = model.detokenize(ids.subarray(0, cell.context / 2));
    const after = model.detokenize(ids.subarray(cell.context / 2));
    const previous = model.layout([before, { hole: cell.hole }, after]);
    await model.decodeLayout(previous, options);
    const line = before.indexOf("\n", Math.floor(before.length / 4));
    const edited = `${before.slice(0, line)} // edited${before.slice(line)}`;
    const layout = model.layout([edited, { hole: cell.hole }, after]);
    const reused = await model.decodeLayout(layout, { ...options, onStep });
    const fresh = await model.decodeLayout(layout, { ...options, reuseKey: undefined });
    const equal = reused.holes[0].tokens.filter((t, i) => t === fresh.holes[0].tokens[i]).length;
    let editedAt = 0;
    while (editedAt < layout.tokens.length && layout.tokens[editedAt] === previous.tokens[editedAt]) editedAt++;
    return {
        tokens: reused.holes[0].tokens,
        full: reused.fullPasses,
        totalMs: reused.totalMs,
        threadsUsed: reused.threads,
        extra: {
            freshMs: fresh.totalMs,
            equalToFresh: equal / reused.holes[0].tokens.length,
            reusedTokens: reused.reusedTokens,
            positions: layout.tokens.length,
            editedAt
        }
    };
}

function fillerText(model: DiffusionModel, tokens: number): string {
    const filler = "    total = total + values[index] * weights[index]\n";
    let text = filler;
    while (model.tokenize(text).length < tokens) text += filler;
    return text;
}

async function writePrompt(file: string, tokens: number, path: string, gpuLayers: number): Promise<void> {
    const model = await DiffusionModel.load(file, { threads: 2, gpuLayers });
    const prompt = model.detokenize(model.tokenize(fillerText(model, tokens)).subarray(0, tokens));
    writeFileSync(path, prompt);
    // llama-diffusion-cli puts the prompt through the chat template: print the length it will see.
    const chat = await model.formatChat([{ role: "user", content: prompt }]);
    process.stdout.write(`${model.tokenize(chat, { parseSpecial: true }).length}\n`);
    await model.dispose();
}

/** The fixed filler text of exactly `context` tokens around the hole, decoded (stopped after maxSteps if set). */
async function decodeFiller(model: DiffusionModel, cell: Cell, onStep: (e: StepEvent) => void, events: StepEvent[]) {
    const text = fillerText(model, cell.context);
    // Fixed text of exactly `context` tokens around the hole: half before, half after.
    const ids = model.tokenize(text).subarray(0, cell.context);
    const layout = model.layout([model.detokenize(ids.subarray(0, cell.context / 2)), { hole: cell.hole }, model.detokenize(ids.subarray(cell.context / 2))]);
    const controller = new AbortController();
    const started = performance.now();
    try {
        const r = await model.decodeLayout(layout, {
            ...paramsFor(cell),
            signal: controller.signal,
            onStep: (e) => {
                onStep(e);
                if (cell.maxSteps > 0 && events.length >= cell.maxSteps) controller.abort();
            }
        });
        return { tokens: r.holes[0].tokens, full: r.fullPasses, totalMs: r.totalMs, threadsUsed: r.threads, extra: {} };
    } catch (e) {
        if (!(e instanceof DecodeCancelledError)) throw e;
        return { tokens: [], full: events.filter((x) => x.full).length, totalMs: performance.now() - started, threadsUsed: undefined, extra: {} };
    }
}

async function runCell(cell: Cell): Promise<CellResult> {
    const model = await DiffusionModel.load(cell.file ?? modelPath(cell.model), {
        threads: cell.threads,
        adaptiveThreads: cell.adaptiveThreads,
        gpuLayers: cell.gpuLayers ?? 0
    });
    // In the editor the load is sampled all along; here the process has just started: give it a second.
    if (cell.adaptiveThreads) await new Promise((r) => setTimeout(r, 1000));
    const events: StepEvent[] = [];
    const onStep = (e: StepEvent) => events.push(e);
    const cpu0 = process.cpuUsage();
    const { tokens, full, totalMs, threadsUsed, extra } = parseDecodingConfig(cell.mode).settings.cacheReuse
        ? await reuseAfterEdit(model, cell, paramsFor(cell), onStep)
        : await decodeFiller(model, cell, onStep, events);
    const cpu = process.cpuUsage(cpu0);
    await model.dispose();
    const n = events.length;
    const forward = events.reduce((a, e) => a + e.forwardMs, 0) / n;
    const sample = events.reduce((a, e) => a + e.sampleMs, 0) / n;
    const copied = events[0]?.copiedBytes === undefined ? undefined : events.reduce((a, e) => a + e.copiedBytes, 0) / n;
    const estimated = tokens.length === 0;
    const passes = estimated ? cell.hole : n;
    const total = estimated ? (totalMs / n) * passes : totalMs;
    return {
        ...cell,
        threadsUsed,
        forwardPasses: passes,
        fullPasses: estimated ? passes : full,
        forwardMsPerStep: forward,
        sampleMsPerStep: sample,
        copiedBytesPerStep: copied,
        msPerStep: total / passes,
        totalMs: total,
        estimated,
        tokensPerSecond: cell.hole / (total / 1000),
        peakRssMb: process.resourceUsage().maxRSS / 1024,
        load: loadavg()[0],
        cpuMs: (cpu.user + cpu.system) / 1000,
        tokens,
        ...extra
    };
}

// --vs-ar: llama-bench, llama.cpp's autoregressive benchmark, on each model's qwen2 twin (the same file and tensor
// bytes, another architecture name: bench-model.ts's writeQwen2Twin), for the editor's two request kinds.
const LLAMA_BENCH = join(repoRoot, "native", "build", "cmake", "bin", "llama-bench");

/** One test as `llama-bench -o json` prints it: the fields read here (the JSON keeps them all). */
interface LlamaBenchTest {
    model_type: string;
    n_prompt: number;
    n_gen: number;
    n_depth: number;
    samples_ns: number[];
    avg_ns: number;
    [field: string]: unknown;
}

interface ArRow {
    model: string;
    threads: number;
    adaptiveThreads: boolean;
    context: number;
    hole: number;
    request: "fresh" | "edit"; // edit: the request after a one-line edit
    mode: string; // our cell's
    oursMs: number;
    oursEstimated: boolean;
    /** The autoregressive request: `prompt` tokens read with `depth` tokens already in its cache, then `hole` generated. */
    prompt: number;
    depth: number;
    arMs: number; // the fastest llama-bench run (as --repeat keeps our fastest cell)
    ratio: number; // oursMs / arMs
    busyBefore?: number;
    llamaBench: { args: string[]; tests: LlamaBenchTest[] }; // one test a run
}

/** --vs-ar's value: off, or the mode whose fresh cell is compared (the edit is each reuse mode's). */
function vsArMode(v: string): string {
    if (v === "off") return v;
    return parseDecodingConfig(v, { reuse: "--vs-ar names the mode of the fresh request; the request after an edit is each reuse mode's" }).name;
}

/** The qwen2 twin of a dream GGUF, written once into .cache/models/twins (again when the model is newer). */
async function twinPath(file: string): Promise<string> {
    const key = createHash("sha256").update(resolve(file)).digest("hex").slice(0, 8);
    const path = join(repoRoot, ".cache", "models", "twins", `${basename(file, ".gguf")}-${key}.qwen2.gguf`);
    if (!existsSync(path) || statSync(path).mtimeMs < statSync(file).mtimeMs) {
        mkdirSync(dirname(path), { recursive: true });
        await writeQwen2Twin(file, path);
    }
    return path;
}

/**
 * One autoregressive request timed by llama-bench: `prompt` tokens read after `depth` already cached (-d: filled
 * untimed), then `gen` generated, as one test (-pg). Same threads and GPU layers as ours, flash attention off as in
 * our runtime; the KV cache is llama-bench's F16 (it has no F32). Timed as our cells are: no warm-up run (a fresh
 * request is the first decode after loading the model, an edited one follows the depth's), each of `runs` runs
 * in a process of its own, the fastest kept.
 */
function llamaBench(bin: string, twin: string, prompt: number, gen: number, depth: number, threads: number, gpuLayers: number, runs: number) {
    const args = ["-m", twin, "-p", "0", "-n", "0", "-pg", `${prompt},${gen}`, "-d", String(depth), "-t", String(threads), "-ngl", String(gpuLayers)];
    args.push("-fa", "off", "--no-warmup", "-r", "1", "-o", "json");
    const tests: LlamaBenchTest[] = [];
    for (let k = 0; k < runs; k++) {
        let json: string;
        try {
            json = execFileSync(bin, args, { encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "pipe"] });
        } catch (e) {
            throw new Error(`${bin} ${args.join(" ")} failed: ${String((e as { stderr?: string }).stderr || e).slice(-2000)}`);
        }
        const printed = JSON.parse(json) as LlamaBenchTest[];
        const test = printed[0];
        if (printed.length !== 1 || test.n_prompt !== prompt || test.n_gen !== gen || test.n_depth !== depth || test.samples_ns?.length !== 1) {
            throw new Error(`llama-bench printed no pp${prompt}+tg${gen} test at depth ${depth}: ${json.slice(0, 2000)}`);
        }
        tests.push(test);
    }
    return { args, tests, ms: Math.min(...tests.map((t) => t.samples_ns[0])) / 1e6 };
}

/** The share of CPU time the whole machine spent busy over `ms` (Linux /proc/stat; 0 elsewhere). */
function busyShare(ms: number): number {
    if (!existsSync("/proc/stat")) return 0;
    const read = () => readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const a = read();
    execFileSync("sleep", [String(ms / 1000)]);
    const b = read();
    const d = b.map((v, i) => v - a[i]);
    const total = d.reduce((x, y) => x + y, 0);
    return total > 0 ? 1 - (d[3] + (d[4] ?? 0)) / total : 0;
}

/** Waits (up to `maxS` seconds) until other work leaves the cores nearly idle; returns the last busy share seen. */
function waitIdle(maxS: number): number {
    const until = Date.now() + maxS * 1000;
    let busy = busyShare(1000);
    while (busy > 0.15 && Date.now() < until) busy = busyShare(2000);
    return busy;
}

/** llama-bench's name for the request: pp1024 + tg16, pp900 @ d124 + tg16. */
function arRequest(a: ArRow): string {
    return `pp${a.prompt}${a.depth ? ` @ d${a.depth}` : ""} + tg${a.hole}`;
}

/** The options as commander hands them to main(); a list left out takes --quick's default or the full grid's. */
interface BenchOptions {
    quick?: boolean;
    threads?: { threads: number; adaptiveThreads: boolean }[];
    models: string[];
    holes?: number[];
    contexts?: number[];
    modes: DecodingConfig[];
    exactMaxSteps: number;
    exactMaxContext: number;
    out: string;
    waitIdle: number;
    repeat: number;
    exactRepeat: number;
    cacheType: "f32" | "f16";
    compete: number;
    reductions: Cell["reductions"][];
    modelFile?: string;
    gpuLayers: number;
    vsAr?: string;
    llamaBench: string;
}

/** A comma-separated list, each entry read by `parse`. */
const listOf =
    <T>(parse: (entry: string) => T) =>
    (v: string): T[] =>
        v.split(",").filter(Boolean).map(parse);

const threadsEntry = (v: string) => {
    const m = /^(a?)([1-9]\d*)$/.exec(v);
    if (!m) throw new InvalidArgumentError(`--threads takes counts, "aN" for adaptive up to N, or a list, not ${v}`);
    return { threads: Number(m[2]), adaptiveThreads: m[1] === "a" };
};

async function main(opts: BenchOptions): Promise<void> {
    const { quick, modelFile, gpuLayers, modes, cacheType, exactMaxSteps, exactMaxContext, out, repeat, exactRepeat } = opts;
    const { reductions, compete, waitIdle: idleWait, llamaBench: llamaBenchBin } = opts;
    const threads = opts.threads ?? (quick ? [{ threads: 2, adaptiveThreads: false }] : [1, 2].map((n) => ({ threads: n, adaptiveThreads: false })));
    const fixedThreads = threads.filter((t) => !t.adaptiveThreads).map((t) => t.threads);
    if (modelFile) MODELS.file = { arch: "dream", path: modelFile };
    const models = modelFile ? ["file"] : opts.models;
    const holes = opts.holes ?? (quick ? [32] : [32, 128]);
    const contexts = opts.contexts ?? (quick ? [256, 2048] : [256, 1024, 2048, 4096]);
    const vsArExplicit = opts.vsAr !== undefined;
    let arMode = opts.vsAr === "off" ? undefined : (opts.vsAr ?? "dual");
    const reuseModes = modes.filter((c) => c.settings.cacheReuse).map((c) => c.name);
    // On by default where there is something to compare and llama-bench to compare it with; asked for, it must run.
    if (arMode && !modes.some((c) => c.name === arMode) && reuseModes.length === 0) {
        if (vsArExplicit) throw new Error(`--vs-ar ${arMode} compares the ${arMode} cell and the reuse cells (dual+reuse), and --modes has none of them`);
        arMode = undefined;
    }
    if (arMode && !existsSync(llamaBenchBin)) {
        if (vsArExplicit) throw new Error(`--vs-ar needs llama-bench: no ${llamaBenchBin} (--llama-bench PATH)`);
        console.error(`no ${llamaBenchBin}: the comparison with the autoregressive twins (--vs-ar) is left out`);
        arMode = undefined;
    }
    for (const m of models) modelPath(m); // generate before timing anything
    const twins = new Map<string, string>();
    for (const m of arMode ? models : []) {
        try {
            twins.set(m, await twinPath(modelPath(m)));
        } catch (e) {
            if (vsArExplicit) throw e;
            console.error(`${m}: no autoregressive twin, so no comparison: ${(e as Error).message}`);
        }
    }

    // Unreferenced, so that they do not keep the benchmark alive when it is done; killed as it exits.
    const hogs = Array.from({ length: compete }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
    for (const h of hogs) h.unref();
    process.on("exit", () => {
        for (const h of hogs) h.kill();
    });

    const rows: CellResult[] = [];
    const arRows: ArRow[] = [];
    for (const model of models)
        for (const t of threads)
            for (const context of contexts)
                for (const hole of holes) {
                    const limit = MODELS[model].context;
                    if (limit !== undefined && context + hole > limit) continue;
                    const exacts = new Map<Cell["reductions"], CellResult>();
                    for (const config of modes)
                        for (const red of reductions) {
                            const mode = config.name;
                            // Without a cache every step is a full pass: the exact-mode limits.
                            const exactMode = config.settings.cache === "none";
                            const big = (MODELS[model].vocab ?? 0) > 4096 && context > exactMaxContext;
                            const maxSteps = exactMode ? (big ? Math.min(exactMaxSteps || 4, 4) : exactMaxSteps) : 0;
                            const cell: Cell = {
                                model,
                                ...t,
                                context,
                                hole,
                                mode,
                                cacheType,
                                maxSteps,
                                gpuLayers,
                                file: modelFile || undefined,
                                reductions: red
                            };
                            let r: CellResult | undefined;
                            const runs = exactMode ? exactRepeat : repeat;
                            for (let k = 0; k < runs; k++) {
                                const busyBefore = idleWait > 0 ? waitIdle(idleWait) : undefined;
                                const json = execFileSync(process.execPath, [__filename, "cell", JSON.stringify(cell)], {
                                    encoding: "utf8",
                                    maxBuffer: 1 << 26
                                });
                                const run = JSON.parse(json) as CellResult;
                                run.busyBefore = busyBefore;
                                if (!r || run.totalMs < r.totalMs) r = run;
                            }
                            r = r!;
                            r.runs = runs;
                            const busyBefore = r.busyBefore;
                            if (mode === REFERENCE_CONFIG) exacts.set(red, r);
                            const exact = exacts.get(red);
                            // A reuse cell decodes another text (the edited one): nothing to compare.
                            if (exact && !exact.estimated && r.tokens.length && !config.settings.cacheReuse) {
                                r.equalToExact = r.tokens.filter((tok, i) => tok === exact!.tokens[i]).length / r.tokens.length;
                            }
                            rows.push(r);
                            console.error(
                                `${model} t${t.adaptiveThreads ? "a" : ""}${t.threads} ctx ${context} hole ${hole} ${mode} reductions ${red}: ${r.estimated ? "~" : ""}${r.totalMs.toFixed(0)} ms, ${r.msPerStep.toFixed(2)} ms/step, busy before ${busyBefore === undefined ? "-" : `${(busyBefore * 100).toFixed(0)}%`}`
                            );
                        }
                    const twin = twins.get(model);
                    if (arMode && twin) {
                        const ours = (mode: string) =>
                            rows.find(
                                (r) =>
                                    r.model === model &&
                                    r.threads === t.threads &&
                                    r.adaptiveThreads === t.adaptiveThreads &&
                                    r.context === context &&
                                    r.hole === hole &&
                                    r.mode === mode &&
                                    r.reductions === reductions[0]
                            );
                        const fresh = ours(arMode);
                        // Fresh: the whole context read, then the hole generated. After the edit, a prompt cache keeps the
                        // tokens before the edited one; the rest of the (edited) context is read again, then the hole.
                        const requests: { request: ArRow["request"]; r: CellResult; prompt: number; depth: number }[] = [];
                        if (fresh) requests.push({ request: "fresh", r: fresh, prompt: context, depth: 0 });
                        for (const edit of reuseModes.map(ours)) {
                            if (edit) requests.push({ request: "edit", r: edit, prompt: edit.positions! - hole - edit.editedAt!, depth: edit.editedAt! });
                        }
                        for (const q of requests) {
                            const busyBefore = idleWait > 0 ? waitIdle(idleWait) : undefined;
                            const ar = llamaBench(llamaBenchBin, twin, q.prompt, hole, q.depth, t.threads, gpuLayers, q.r.runs ?? 1);
                            const row: ArRow = {
                                model,
                                threads: t.threads,
                                adaptiveThreads: t.adaptiveThreads,
                                context,
                                hole,
                                request: q.request,
                                mode: q.r.mode,
                                oursMs: q.r.totalMs,
                                oursEstimated: q.r.estimated,
                                prompt: q.prompt,
                                depth: q.depth,
                                arMs: ar.ms,
                                ratio: q.r.totalMs / ar.ms,
                                busyBefore,
                                llamaBench: { args: ar.args, tests: ar.tests }
                            };
                            arRows.push(row);
                            console.error(
                                `${model} t${t.adaptiveThreads ? "a" : ""}${t.threads} ctx ${context} hole ${hole} ${q.request}: autoregressive ${arRequest(row)} ${ar.ms.toFixed(0)} ms, ours (${q.r.mode}) ${q.r.totalMs.toFixed(0)} ms`
                            );
                        }
                    }
                }

    const fmt = (v: number, d = 2) => v.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
    const describe = (m: string) =>
        m === "file"
            ? `file = ${modelFile}, ${gpuLayers} GPU layers`
            : m === "mini"
              ? `mini = ${modelPath("mini")} (trained, Q8_0; contexts up to ${MODELS.mini.context} tokens with the hole)`
              : `${m} = dream, ${MODELS[m].layers} layers, width ${MODELS[m].embd}, vocabulary ${MODELS[m].vocab}, ${MODELS[m].shape ? "random Q4_0 (bench-model.ts)" : (MODELS[m].quant ?? MODELS[m].type)}`;
    console.log(`runtime ${describeRuntime()}; models: ${models.map(describe).join("; ")}`);
    console.log(
        `steps = hole (one token a step), blocks of 32, greedy maskgit_plus, unless the mode names another; KV cache ${cacheType}; = exact: the share of hole tokens equal to the ${REFERENCE_CONFIG} mode's` +
            (compete ? `; ${compete} competing process(es) spinning on the CPU throughout` : "")
    );
    console.log("");
    console.log(
        "| model | threads | context | hole | mode | reductions | forward passes | full passes | copied KB/step | forward ms/step | sampling ms/step | ms/step | total ms | CPU ms | tokens/s | peak RSS MB | = exact | busy before |"
    );
    console.log("|---|--:|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (const r of rows) {
        const copied = r.copiedBytesPerStep === undefined ? "–" : fmt(r.copiedBytesPerStep / 1024, r.copiedBytesPerStep < 10240 ? 2 : 0);
        console.log(
            `| ${r.model} | ${r.adaptiveThreads ? `≤${r.threads}: ${r.threadsUsed ?? "–"}` : r.threads} | ${r.context} | ${r.hole} | ${r.mode} | ${r.reductions} | ${r.forwardPasses} | ${r.fullPasses} | ${copied} | ` +
                `${fmt(r.forwardMsPerStep)} | ${fmt(r.sampleMsPerStep)} | ` +
                `${fmt(r.msPerStep)} | ${r.estimated ? "~" : ""}${fmt(r.totalMs, 0)} | ${r.estimated ? "–" : fmt(r.cpuMs, 0)} | ${fmt(r.tokensPerSecond)} | ${fmt(r.peakRssMb, 0)} | ` +
                `${r.equalToExact === undefined ? "–" : `${(r.equalToExact * 100).toFixed(0)}%`} | ${r.busyBefore === undefined ? "–" : `${(r.busyBefore * 100).toFixed(0)}%`} |`
        );
    }
    // The issue's targets, as ratios within this run.
    const find = (model: string, t: number, context: number, hole: number, mode: string) =>
        rows.find(
            (r) =>
                r.model === model &&
                r.threads === t &&
                !r.adaptiveThreads &&
                r.context === context &&
                r.hole === hole &&
                r.mode === mode &&
                r.reductions === reductions[0]
        );
    console.log("");
    for (const model of models)
        for (const t of fixedThreads)
            for (const hole of holes)
                for (const [context, target] of [
                    [2048, 15],
                    [4096, 25]
                ]) {
                    const e = find(model, t, context, hole, REFERENCE_CONFIG),
                        d = find(model, t, context, hole, "dual");
                    if (e && d)
                        console.log(
                            `${model}, ${t} thread(s), hole ${hole}, context ${context}: dual-cache step = 1/${fmt(e.msPerStep / d.msPerStep, 1)} of an exact step (target ≤ 1/${target})`
                        );
                }
    const configOf = new Map(modes.map((c) => [c.name, c]));
    const withThreshold = modes.filter((c) => c.settings.cache === "dual" && c.settings.confidenceThreshold && !c.settings.cacheReuse);
    for (const t of fixedThreads)
        for (const model of models)
            for (const c of withThreshold) {
                const e = find(model, t, 2048, 32, REFERENCE_CONFIG),
                    d = find(model, t, 2048, 32, c.name);
                if (e && d)
                    console.log(
                        `${model}, ${t} thread(s), hole 32, context 2048: ${c.name} total ${fmt(e.totalMs / d.totalMs, 1)}× faster than exact (target ≥ 20×)`
                    );
            }
    for (const r of rows.filter((x) => configOf.get(x.mode)!.settings.cacheReuse)) {
        console.log(
            `${r.model}, ${r.threads} thread(s), context ${r.context}, hole ${r.hole}: after a one-line edit, reuse ${fmt(r.totalMs, 0)} ms vs fresh ${fmt(r.freshMs!, 0)} ms = ` +
                `${fmt(r.freshMs! / r.totalMs, 1)}× faster (target ≥ 5×), ${r.reusedTokens} of ${r.positions} positions kept, ${fmt(100 * r.equalToFresh!, 0)}% of tokens equal to fresh (target ≥ 95%)`
        );
    }
    // Several tokens a step: a threshold or an entropy bound, against the same cache one token a step.
    const revealsMore = (c: DecodingConfig) => Boolean(c.settings.confidenceThreshold || c.decoder.entropyBound);
    for (const r of rows.filter((x) => x.model === "mini" && revealsMore(configOf.get(x.mode)!))) {
        const cache = configOf.get(r.mode)!.settings.cache;
        const plain = find("mini", r.threads, r.context, r.hole, cache);
        console.log(
            `mini, ${r.threads} thread(s), context ${r.context}, hole ${r.hole}, ${r.mode}: ${fmt(r.hole / r.forwardPasses)} tokens per step` +
                (plain ? `, ${fmt(plain.totalMs / r.totalMs, 1)}× faster than ${cache} one token a step` : "") +
                (r.equalToExact === undefined ? "" : `, ${fmt(100 * r.equalToExact, 0)}% of tokens equal to exact`)
        );
    }
    for (const r of rows.filter((x) => x.model === "vocab152k" && configOf.get(x.mode)!.settings.cache !== "none")) {
        console.log(
            `vocab152k, ${r.threads} thread(s), context ${r.context}, hole ${r.hole}, ${r.mode}, reductions ${r.reductions}: sampling ${fmt((100 * r.sampleMsPerStep) / (r.forwardMsPerStep + r.sampleMsPerStep), 1)}% of step time (target < 10%)`
        );
    }
    if (arMode && arRows.length) {
        console.log("");
        console.log(
            `Against the autoregressive twin: llama-bench ${llamaBenchBin} on the same weights as qwen2, the same threads, flash attention off, KV cache F16, ` +
                `no warm-up; fresh: the context read, then the hole generated; after a one-line edit: a prompt cache keeps the tokens before the edited one, ` +
                `the rest is read again, then the hole generated. Each side the fastest of as many runs (--repeat), each in a process of its own.`
        );
        console.log("");
        console.log(
            "| model | threads | context | hole | request | ours | ours ms | autoregressive (llama-bench) | autoregressive ms | ours / autoregressive |"
        );
        console.log("|---|--:|--:|--:|---|---|--:|---|--:|--:|");
        for (const a of arRows) {
            console.log(
                `| ${a.model} | ${a.adaptiveThreads ? `≤${a.threads}` : a.threads} | ${a.context} | ${a.hole} | ${a.request === "fresh" ? "fresh" : "after a one-line edit"} | ${a.mode} | ` +
                    `${a.oursEstimated ? "~" : ""}${fmt(a.oursMs, 0)} | ${arRequest(a)} | ${fmt(a.arMs, 0)} | ${fmt(a.ratio)} |`
            );
        }
    }
    mkdirSync(dirname(out), { recursive: true });
    const vsArJson = arMode ? { mode: arMode, llamaBench: llamaBenchBin, twins: Object.fromEntries(twins), rows: arRows } : undefined;
    writeFileSync(
        out,
        JSON.stringify(
            { date: new Date().toISOString(), argv: process.argv.slice(2), compete, runtime: describeRuntime(), models: MODELS, rows, vsAr: vsArJson },
            null,
            2
        )
    );
    console.log(`wrote ${out}`);
}

/** The GGUF to measure instead of generated models, and where its layers run: the bench's and write-prompt's. */
const modelFileOption = () => new Option("--model-file <file>", 'measure this GGUF (the rows\' model is "file") instead of generated ones');
const gpuLayersOption = () =>
    new Option("--gpu-layers <n>", "layers offloaded in a GPU build (scripts/bench-gpu.sh: 999, all)").argParser(integer(-1)).default(0);

/** A failure of the bench's own, after commander has read the options: the error and exit status 1. */
function exitOnError(e: unknown): never {
    console.error(e);
    process.exit(1);
}

const program = new Command("runtime-bench")
    .description(
        "Decoding latency per mode (--modes: exact, prefix cache, dual cache, dual cache + confidence threshold, dual cache + entropy bound, dual cache reused from the previous request after a one-line edit) on generated dream models, one token a step (steps = hole, blocks of 32, greedy maskgit_plus). " +
            "Each (model, threads, context, hole, mode) cell runs in a child process of its own, so that its peak memory (max RSS) is its own. Prints a Markdown table and writes JSON. Not a test: the numbers depend on the machine."
    )
    .enablePositionalOptions()
    .option("--quick", "2 threads, hole 32, contexts 256 and 2,048: a few minutes (npm run bench -- --quick)")
    .option(
        "--threads <list>",
        'CPU threads, comma-separated (default: 1,2; --quick: 2); an entry "aN" loads the model as the server\'s default does (adaptiveThreads): up to N, fewer while other processes keep the cores busy, and the threads column shows "≤N: used"',
        listOf(threadsEntry)
    )
    .addOption(
        new Option(
            "--models <list>",
            `models, comma-separated, of ${Object.keys(MODELS).join(", ")}; bench-small and 7b are bench/bench-model.ts's shapes (random Q4_0 weights), written once into .cache/models: 7b is Dream-Coder 7B's shape, 4.3 GB, hours of CPU for the whole grid (for it: --models 7b --modes dual,dual+reuse --contexts 1024 --holes 16 --threads N)`
        )
            .argParser(
                listOf((m) => {
                    if (!MODELS[m]) throw new InvalidArgumentError(`unknown model ${m}: ${Object.keys(MODELS).join(", ")}`);
                    return m;
                })
            )
            .default(["small", "small-Q4_K_M", "vocab152k", "mini"], "small,small-Q4_K_M,vocab152k,mini")
    )
    .option("--holes <list>", "hole lengths in tokens, comma-separated (default: 32,128; --quick: 32)", listOf(integer(1)))
    .option("--contexts <list>", "tokens of text around the hole, half before, half after (default: 256,1024,2048,4096; --quick: 256,2048)", listOf(integer(1)))
    .addOption(
        new Option(
            "--modes <list>",
            "decoding configurations, comma-separated, in the grammar of dream-coder eval --configs and bench --compare (none: exact, every step a full pass; dual+reuse: the request after a one-line edit, with the cache its previous request left, against the same request fresh)"
        )
            .argParser((list) => parseDecodingConfigs(list))
            .default(parseDecodingConfigs(DEFAULT_MODES), DEFAULT_MODES)
    )
    .option(
        "--exact-max-steps <n>",
        "exact-mode (cache none) cells stop after N steps: ms/step is measured on those, the total extrapolated (marked ~), no token share (0: to the end)",
        integer(0),
        0
    )
    .option(
        "--exact-max-context <n>",
        "on a model with a vocabulary over 4,096, exact-mode cells above N tokens of context run at most 4 steps (the 151,936-token model's exact steps copy context × 151,936 logits)",
        integer(0),
        1024
    )
    .option("--out <file>", "where to write the JSON", join(repoRoot, "bench-results", "runtime.json"))
    .option(
        "--wait-idle <s>",
        'before each cell, wait up to S seconds for the cores to be idle (< 15% busy) and report how busy they were ("busy before"): on a shared machine other work inflates every figure',
        integer(0),
        0
    )
    .option("--repeat <n>", "runs of each cached-mode cell, the fastest kept", integer(1), 1)
    .option("--exact-repeat <n>", "runs of each exact-mode (cache none) cell, the fastest kept", integer(1), 1)
    .addOption(new Option("--cache-type <type>", "the KV cache's type (f16: llama-bench's, for --vs-ar)").choices(["f32", "f16"]).default("f32"))
    .option(
        "--compete <n>",
        "processes spinning on the CPU while the cells run: a user's machine is rarely idle, and ggml's threads meet at a barrier after every op, so one of them descheduled stalls the others",
        integer(0),
        0
    )
    .addOption(
        new Option(
            "--reductions <list>",
            "greedy steps with llama.cpp's device row reductions (on: 20 bytes a row copied out, native/patches/0002), with the full logits rows copied out and scanned on the host (off), or as users get them (auto: on where the logits are on a GPU); a list runs each side by side; the \"copied KB/step\" column is what a step reads out of llama.cpp's output buffer"
        )
            .argParser(
                listOf((v) => {
                    if (v !== "auto" && v !== "on" && v !== "off") throw new InvalidArgumentError(`--reductions takes auto, on, off or a list, not ${v}`);
                    return v as Cell["reductions"];
                })
            )
            .default(["auto"], "auto")
    )
    .addOption(modelFileOption())
    .addOption(gpuLayersOption())
    .addOption(
        new Option(
            "--vs-ar [mode]",
            "llama.cpp's llama-bench times the same requests on each model's autoregressive twin (the same GGUF renamed qwen2: the very same tensors, run causally one token at a time; written once into .cache/models/twins) with the same threads and GPU layers, and a second table gives our time over its time for the editor's two request kinds: fresh (the MODE cell, default dual, against reading the context, then generating the hole: llama-bench -pg CONTEXT,HOLE) and after a one-line edit (each reuse cell, e.g. dual+reuse, against a prompt cache that keeps the tokens before the first one the edit changed and reads the rest of the edited context again: -pg REST,HOLE -d KEPT). On by default where llama-bench is found and --modes has MODE or a reuse mode; asked for, it must run; off: none. llama-bench runs as our cells do: without a warm-up run, as many times as the cell (--repeat), each in a process of its own, the fastest kept; flash attention off as in our runtime, its KV cache F16 (it has no F32: --cache-type f16 for ours)"
        )
            .preset("dual")
            .argParser(vsArMode)
    )
    .option("--llama-bench <path>", "the llama-bench that --vs-ar runs", LLAMA_BENCH)
    .action((opts: BenchOptions) => main(opts).catch(exitOnError));

program
    .command("write-prompt")
    .description(
        "write the filler text the cells decode, cut to TOKENS tokens of the model, to PATH, print its length in tokens once in the model's chat template (the prompt llama-diffusion-cli gets), and exit"
    )
    .argument("<tokens>", "tokens of the model's", integer(1))
    .argument("<path>", "the file to write")
    .addOption(modelFileOption().makeOptionMandatory())
    .addOption(gpuLayersOption())
    .action((tokens: number, path: string, opts: { modelFile: string; gpuLayers: number }) =>
        writePrompt(opts.modelFile, tokens, path, opts.gpuLayers).catch(exitOnError)
    );

// One cell, in the process the bench starts for it (so that its peak memory is its own).
program.command("cell <json>", { hidden: true }).action((json: string) =>
    runCell(JSON.parse(json) as Cell).then((r) => {
        process.stdout.write(JSON.stringify(r));
    }, exitOnError)
);

program.parse();

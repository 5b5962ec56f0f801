// Makes a catalog model's file present: a community GGUF downloaded as it is, or the authors' Hugging Face checkpoint
// downloaded, converted to GGUF (server/src/convert/) and quantized by libllama (runtime/quantize.ts) — all on the
// user's machine, without Python. Work in progress lives in a hidden staging folder of the models directory, so a
// cancelled or failed run leaves nothing that looks like a model, and the next run resumes from the files it finished.
import { existsSync } from "node:fs";
import { mkdir, readFile, rename, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { CatalogEntry } from "../../common/catalog";
import { catalogPath, modelsDirectory } from "./modelPaths";
import { CheckpointError } from "./convert/checkpointError";
import { checkpointArchitecture, convertCheckpoint, readCheckpointConfig } from "./convert/convert";
import { checkpointFiles, downloadRepoFile, ensureFreeSpace, formatBytes, HubError, type HubFile, listRepoFiles } from "./hub/hub";
import { BITS_PER_WEIGHT, type PullProgress, QUANT_TYPES, type QuantType } from "../../common/protocol";
import { quantizationOf, quantizeModel } from "./runtime/quantize";
import type { Settings } from "../../common/settings";

export type { PullProgress };

export interface PullOptions {
    /** The model file's type: Q4_K_M unless asked; F16 and BF16 are the converter's output as it is. */
    quantization?: QuantType;
    /** Keep the downloaded checkpoint (in the models directory, as ID-checkpoint) instead of deleting it. */
    keepCheckpoint?: boolean;
    /** A Hugging Face access token, for gated or private repositories (else HF_TOKEN or the Hugging Face CLI's token). */
    token?: string;
    threads?: number;
    signal?: AbortSignal;
    onProgress?: (p: PullProgress) => void;
}

export const DEFAULT_QUANTIZATION: QuantType = "Q4_K_M";
/** Types the converter writes itself: no quantization pass. */
const UNQUANTIZED: readonly QuantType[] = ["F16", "BF16"];

/** Parses a quantization name as a user types it (q8_0, Q4_K_M); a sentence listing the choices otherwise. */
export function parseQuantization(name: string): QuantType {
    const type = QUANT_TYPES.find((t) => t === name.toUpperCase());
    if (!type) throw new Error(`"${name}" is not a quantization this converter writes: use one of ${QUANT_TYPES.join(", ")}.`);
    return type;
}

/** Reports a pipeline's stages as one sequence: stage i of n, with the fraction done inside it. */
class Stages {
    constructor(
        private readonly names: readonly string[],
        private readonly onProgress?: (p: PullProgress) => void
    ) {}

    report(stage: number, fraction: number, detail: string): void {
        this.onProgress?.({
            stage: stage + 1,
            stages: this.names.length,
            title: this.names[stage],
            fraction: Math.max(0, Math.min(1, fraction)),
            detail
        });
    }
}

/** Model files a pipeline of this process is making: a second request for one would share its staging folder. */
const inProgress = new Set<string>();

/** Downloads (and if needed converts) a catalog model into the models directory; resolves to the model file. */
export async function pullModel(entry: CatalogEntry, settings: Pick<Settings, "modelsDirectory">, options: PullOptions = {}): Promise<string> {
    const target = catalogPath(entry, settings);
    if (entry.bundled) return target;
    if (inProgress.has(target)) throw new Error(`${entry.name} is already being downloaded: wait for that download to finish, or cancel it first.`);
    inProgress.add(target);
    try {
        return await pullInto(entry, target, settings, options);
    } finally {
        inProgress.delete(target);
    }
}

async function pullInto(entry: CatalogEntry, target: string, settings: Pick<Settings, "modelsDirectory">, options: PullOptions): Promise<string> {
    const quantization = options.quantization ?? DEFAULT_QUANTIZATION;
    // There already, of the type asked for (a file of another type is replaced once the new one is complete).
    if ((await quantizationOf(target)) === quantization) return target;
    if (entry.gguf && quantization === DEFAULT_QUANTIZATION) {
        try {
            return await downloadGguf(entry, target, options);
        } catch (e) {
            // Gone, or no longer public (the Hub answers 401 for a repository that does not exist, to a request without a token).
            const gone = e instanceof HubError && (e.reason === "not-found" || e.reason === "unauthorized");
            if (!gone || !entry.checkpoint) throw e;
            options.onProgress?.({
                stage: 0,
                stages: 3,
                title: "Converting instead",
                fraction: 0,
                detail: `${entry.gguf.repo}/${entry.gguf.file} cannot be downloaded (${(e as Error).message}); converting the authors' checkpoint ${entry.checkpoint.repo} on this machine instead.`
            });
        }
    }
    if (!entry.checkpoint) throw new Error(`${entry.name} has no checkpoint to convert.`);
    const staging = join(modelsDirectory(settings), ".partial", entry.id);
    return pullCheckpoint(entry.checkpoint.repo, entry.checkpoint.revision, staging, target, {
        ...options,
        quantization,
        kept: join(modelsDirectory(settings), `${entry.id}-checkpoint`)
    });
}

async function downloadGguf(entry: CatalogEntry, target: string, options: PullOptions): Promise<string> {
    const source = entry.gguf!;
    const stages = new Stages([`Downloading ${source.file}`], options.onProgress);
    const hub = { token: options.token, signal: options.signal };
    const { files } = await listRepoFiles(source.repo, "main", hub);
    const file = files.find((f) => f.path === source.file);
    if (!file) throw new HubError(`${source.repo} has no file ${source.file}.`, "not-found");
    await mkdir(join(target, ".."), { recursive: true });
    await ensureFreeSpace(join(target, ".."), file.size - (await partialBytes(target)), `${entry.name} (${formatBytes(file.size)})`);
    await downloadRepoFile(source.repo, "main", file, target, {
        ...hub,
        onProgress: (done) => stages.report(0, done / file.size, `${formatBytes(done)} of ${formatBytes(file.size)}`)
    });
    return target;
}

/** What a staging folder was made from: a resumed run must be downloading the same commit. */
interface StagingSource {
    repo: string;
    commit: string;
}

/**
 * Downloads a checkpoint from the Hub into `staging`, converts and quantizes it into `target`, then deletes the
 * staging folder (moving the checkpoint to `kept` when asked to keep it).
 */
export async function pullCheckpoint(
    repo: string,
    revision: string,
    staging: string,
    target: string,
    options: PullOptions & { quantization: QuantType; kept: string }
): Promise<string> {
    const hub = { token: options.token, signal: options.signal };
    const stages = new Stages(["Downloading the checkpoint", "Converting to GGUF", `Quantizing to ${options.quantization}`], options.onProgress);
    stages.report(0, 0, `listing ${repo}`);
    const listing = await listRepoFiles(repo, revision, hub);
    const files = checkpointFiles(listing.files);
    const config = files.find((f) => f.path === "config.json");
    if (!config) throw new CheckpointError(`${repo} has no config.json: it is not a Hugging Face model checkpoint that can be converted.`);
    if (!files.some((f) => f.path.endsWith(".safetensors"))) {
        throw new CheckpointError(`${repo} has no .safetensors weights (only other formats): it cannot be converted here.`);
    }

    const checkpoint = join(staging, "checkpoint");
    await useStaging(staging, { repo, commit: listing.commit });
    await mkdir(checkpoint, { recursive: true });
    // The configuration first: an architecture the runtime cannot run is refused before gigabytes are downloaded.
    await downloadRepoFile(repo, listing.commit, config, join(checkpoint, "config.json"), hub);
    checkpointArchitecture(await readCheckpointConfig(checkpoint));

    const converted = join(staging, "converted.gguf");
    const total = files.reduce((n, f) => n + f.size, 0);
    const convertedDone = existsSync(converted);
    let onDisk = 0;
    for (const f of files) onDisk += await partialBytes(join(checkpoint, f.path));
    // Peak disk use: the checkpoint and its conversion (about the checkpoint's size) side by side, then the
    // conversion and the quantized file (the checkpoint deleted, unless kept).
    const quantized = UNQUANTIZED.includes(options.quantization) ? 0 : (total * BITS_PER_WEIGHT[options.quantization]) / 16;
    const peak = Math.max(total + total, total + quantized + (options.keepCheckpoint ? total : 0));
    const have = onDisk + (convertedDone ? total : 0);
    await ensureFreeSpace(
        staging,
        peak - have,
        `${repo} (a ${formatBytes(total)} checkpoint, its ${formatBytes(total)} conversion and the ${options.quantization} model file)`
    );

    if (!convertedDone) {
        let done = 0;
        for (const f of files) {
            const dest = join(checkpoint, f.path);
            if (!(await isComplete(dest, f))) {
                const before = done;
                await downloadRepoFile(repo, listing.commit, f, dest, {
                    ...hub,
                    onProgress: (bytes) => stages.report(0, (before + bytes) / total, `${formatBytes(before + bytes)} of ${formatBytes(total)}`)
                });
            }
            done += f.size;
            stages.report(0, done / total, `${formatBytes(done)} of ${formatBytes(total)}`);
        }
        await convert(checkpoint, converted, options.quantization, stages, options.signal, 1);
    }
    if (options.keepCheckpoint && existsSync(checkpoint)) {
        await rm(options.kept, { recursive: true, force: true });
        await rename(checkpoint, options.kept);
    } else if (!options.keepCheckpoint) {
        await rm(checkpoint, { recursive: true, force: true });
    }
    await finishModel(converted, target, options, stages, 2);
    await removeStaging(staging);
    return target;
}

/**
 * Converts a checkpoint folder on this machine into `target` (quantized unless F16/BF16 is asked for). The
 * conversion goes to a staging folder first; the folder itself is only read.
 */
export async function convertFolder(dir: string, target: string, staging: string, options: PullOptions = {}): Promise<string> {
    const quantization = options.quantization ?? DEFAULT_QUANTIZATION;
    const stages = new Stages(["Converting to GGUF", `Quantizing to ${quantization}`], options.onProgress);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    try {
        // The converter checks the folder (config.json, the architecture) before it writes anything.
        const converted = join(staging, "converted.gguf");
        await convert(dir, converted, quantization, stages, options.signal);
        await finishModel(converted, target, { ...options, quantization }, stages, 1);
    } finally {
        await removeStaging(staging);
    }
    return target;
}

/** Converts a checkpoint folder as stage `stage`: to F16 or BF16 when that is the type asked for, else to what the
 * checkpoint holds (auto), which the quantizer then reads. */
async function convert(dir: string, converted: string, quantization: QuantType, stages: Stages, signal: AbortSignal | undefined, stage = 0) {
    await convertCheckpoint(dir, converted, {
        outType: UNQUANTIZED.includes(quantization) ? (quantization.toLowerCase() as "f16" | "bf16") : "auto",
        signal,
        onProgress: (p) => stages.report(stage, p.bytesDone / p.bytesTotal, `tensor ${p.tensorsDone} of ${p.tensorsTotal}`)
    });
}

/** Quantizes the converted file into the model file, or moves it there when no quantization is asked for. */
async function finishModel(converted: string, target: string, options: PullOptions & { quantization: QuantType }, stages: Stages, stage: number) {
    await mkdir(join(target, ".."), { recursive: true });
    if (UNQUANTIZED.includes(options.quantization)) {
        await rename(converted, target);
        return;
    }
    await quantizeModel(converted, target, {
        type: options.quantization,
        threads: options.threads,
        signal: options.signal,
        onProgress: (p) => stages.report(stage, p.tensorsDone / p.tensorsTotal, `tensor ${p.tensorsDone} of ${p.tensorsTotal}`)
    });
}

/** Makes `staging` hold work from `source` only: work left by a run of another repository or commit is deleted. */
async function useStaging(staging: string, source: StagingSource): Promise<void> {
    const stamp = join(staging, "source.json");
    const previous = existsSync(stamp) ? await readFile(stamp, "utf8").catch(() => "") : "";
    if (previous !== JSON.stringify(source)) {
        await rm(staging, { recursive: true, force: true });
        await mkdir(staging, { recursive: true });
        await writeFile(stamp, JSON.stringify(source));
    }
}

/** Deletes a staging folder, and the folder of staging folders once it is empty. */
async function removeStaging(staging: string): Promise<void> {
    await rm(staging, { recursive: true, force: true });
    await rmdir(dirname(staging)).catch(() => undefined);
}

/** Bytes already on disk for a download to `path`: the finished file, or its .part. */
async function partialBytes(path: string): Promise<number> {
    for (const p of [path, `${path}.part`]) {
        const s = await stat(p).catch(() => null);
        if (s) return s.size;
    }
    return 0;
}

async function isComplete(path: string, file: HubFile): Promise<boolean> {
    const s = await stat(path).catch(() => null);
    return s !== null && s.size === file.size;
}

/** Where a converted folder's model goes by default: the models directory, named after the folder and the type. */
export function convertedModelPath(dir: string, quantization: QuantType, settings: Pick<Settings, "modelsDirectory">): string {
    return join(modelsDirectory(settings), `${basename(dir.replace(/[/\\]+$/, ""))}-${quantization.toLowerCase()}.gguf`);
}

// Pulling a catalog model as a user does, through the dream-coder command, from a local stand-in of the Hugging Face
// Hub (test/tools/hub-stand-in.ts) serving synthetic checkpoints laid out as the real ones: the checkpoint route
// (download, convert, quantize) ends with a model that fills a hole; each failure is a sentence naming its cause and
// fix, with nothing left that looks like a model; an interrupted run resumes; a GGUF that is gone falls back to the
// checkpoint; a local folder converts.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { stripVTControlCharacters } from "node:util";
import { readGgufHeader } from "../../server/src/runtime/ggufHeader";
import { type HubStandIn, type HubStandInRepo, startHubStandIn } from "../tools/hub-stand-in";
import { dreamCoderCheckpoint } from "../tools/checkpoints";
import { repoRoot, testModel } from "../tools/test-models";

const CLI = join(repoRoot, "out", "server", "src", "cli", "main.js");
const DREAM_CODER = "Dream-org/Dream-Coder-v0-Instruct-7B";
const SHARD = "model-00001-of-00002.safetensors";
/** llama_ftype numbers in general.file_type. */
const FILE_TYPE = { Q4_K_M: 15, Q8_0: 7 };

interface Run {
    status: number | null;
    stdout: string;
    stderr: string;
}

/** Runs the CLI without blocking this process: the stand-in in it must keep answering. `onStart` may signal it. */
function cli(args: string[], env: Record<string, string> = {}, onStart?: (kill: (signal: NodeJS.Signals) => void) => void): Promise<Run> {
    return new Promise((resolve) => {
        const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, HF_TOKEN: "", HF_TOKEN_PATH: join(scratch, "no-token"), ...env } });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        onStart?.((signal) => child.kill(signal));
        child.on("close", (status) => resolve({ status, stdout: stripVTControlCharacters(stdout), stderr: stripVTControlCharacters(stderr) }));
    });
}

const scratch = mkdtempSync(join(tmpdir(), "dream-coder-pull-"));
const tmp = (name: string) => mkdtempSync(join(scratch, `${name}-`));

/** The checkpoint with another config.json: what a repository of an architecture the runtime cannot run looks like. */
function withConfig(dir: string, change: (config: Record<string, unknown>) => void): string {
    const copy = join(tmp("changed"), "checkpoint");
    cpSync(dir, copy, { recursive: true });
    const config = JSON.parse(readFileSync(join(copy, "config.json"), "utf8"));
    change(config);
    writeFileSync(join(copy, "config.json"), JSON.stringify(config));
    return copy;
}

async function withHub<T>(repos: Record<string, HubStandInRepo>, body: (hub: HubStandIn) => Promise<T>): Promise<T> {
    const hub = await startHubStandIn({ repos });
    try {
        return await body(hub);
    } finally {
        await hub.close();
    }
}

/** What a models directory holds that a user (or listCatalog) would take for a model. */
function models(dir: string): string[] {
    return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".gguf")) : [];
}

async function fileType(path: string): Promise<number> {
    const header = await readGgufHeader(path, statSync(path).size);
    return Number(header.metadata.get("general.file_type"));
}

/** The model fills a hole through the CLI: a diff with the hole's line changed and no marker left. */
async function fillsAHole(model: string): Promise<void> {
    const file = join(tmp("fill"), "mean.py");
    writeFileSync(file, "def mean(xs):\n    return ???:6\n");
    const r = await cli(["fill", file, "--model", model, "--threads", "1"]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^- {4}return \?\?\?:6$/m);
    assert.match(r.stdout, /^\+ {4}return /m);
}

describe("dream-coder models pull and convert, against a local Hub", { timeout: 600_000 }, () => {
    let checkpoint: string;
    before(() => {
        checkpoint = dreamCoderCheckpoint(scratch);
    });
    after(() => {
        if (process.env.DREAM_CODER_KEEP_TEST_FILES !== "1") rmSync(scratch, { recursive: true, force: true });
    });

    it("pulls Dream-Coder 7B Instruct as its checkpoint: downloaded, converted, quantized to Q4_K_M; the model fills a hole", async () => {
        await withHub({ [DREAM_CODER]: { dir: checkpoint } }, async (hub) => {
            const dir = tmp("models");
            const r = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir, "--threads", "1"], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 0, r.stderr);
            const path = join(dir, "dream-coder-7b-instruct.gguf");
            assert.equal(r.stdout.trim(), path);
            // The stages, one line each on a non-terminal.
            assert.match(r.stderr, /1\/3 Downloading the checkpoint\n2\/3 Converting to GGUF\n3\/3 Quantizing to Q4_K_M/);
            assert.deepEqual(readdirSync(dir), ["dream-coder-7b-instruct.gguf"], "the checkpoint and the staging folder are gone");
            assert.equal(await fileType(path), FILE_TYPE.Q4_K_M);
            // Every file once, at the commit the listing named; the weights from the storage host.
            const downloads = hub.requests.filter((q) => q.file && q.status < 300);
            const files = downloads.map((q) => q.file);
            assert.equal(new Set(files).size, files.length, `each file downloaded once: ${files.join(", ")}`);
            assert.ok(files.includes(SHARD) && files.includes("config.json") && files.includes("tokenizer.json"));

            const asked = hub.requests.length;
            const again = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir, "--threads", "1"], { HF_ENDPOINT: hub.endpoint });
            assert.equal(again.status, 0, again.stderr);
            assert.equal(again.stdout.trim(), path);
            assert.equal(hub.requests.length, asked, "a model that is there is not downloaded again");
            await fillsAHole(path);
        });
    });

    it("an architecture the runtime cannot run is refused before any weights are downloaded", async () => {
        const qwen = withConfig(checkpoint, (c) => {
            c.architectures = ["Qwen2ForCausalLM"];
            c.model_type = "qwen2";
        });
        await withHub({ [DREAM_CODER]: { dir: qwen } }, async (hub) => {
            const dir = tmp("models");
            const r = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 1);
            assert.match(r.stderr, /Qwen2ForCausalLM/);
            assert.match(r.stderr, /DreamModel/, "says which architectures can be converted");
            assert.deepEqual(
                hub.requests.filter((q) => q.file?.endsWith(".safetensors")),
                [],
                "no weights requested"
            );
            assert.deepEqual(models(dir), []);
        });
    });

    it("a gated repository says how to log in, and downloads with HF_TOKEN", async () => {
        const token = "hf_standInTokenForTheTests0123";
        await withHub({ [DREAM_CODER]: { dir: checkpoint, gated: true, token } }, async (hub) => {
            const dir = tmp("models");
            const refused = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir], { HF_ENDPOINT: hub.endpoint });
            assert.equal(refused.status, 1);
            assert.match(refused.stderr, /gated/);
            assert.match(refused.stderr, /accept the model's terms on its Hugging Face page/);
            assert.match(refused.stderr, /HF_TOKEN/);
            assert.deepEqual(models(dir), []);
            const r = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir, "--threads", "1"], {
                HF_ENDPOINT: hub.endpoint,
                HF_TOKEN: token
            });
            assert.equal(r.status, 0, r.stderr);
            assert.deepEqual(models(dir), ["dream-coder-7b-instruct.gguf"]);
        });
    });

    it("a file that arrives damaged is refused with a sentence, and nothing looks like a model", async () => {
        await withHub({ [DREAM_CODER]: { dir: checkpoint, faults: { [SHARD]: { corrupt: true } } } }, async (hub) => {
            const dir = tmp("models");
            const r = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 1);
            assert.match(r.stderr, /checksum|SHA-256/i);
            assert.match(r.stderr, new RegExp(SHARD.replace(/\./g, "\\.")));
            assert.deepEqual(models(dir), []);
        });
    });

    it("interrupted during the download, it leaves no model, and the next run resumes where it stopped", async () => {
        const slow = { slow: { chunkBytes: 64 << 10, delayMs: 20 } };
        await withHub({ [DREAM_CODER]: { dir: checkpoint, faults: { [SHARD]: [slow] } } }, async (hub) => {
            const dir = tmp("models");
            const shardBytes = () => hub.requests.filter((q) => q.file === SHARD).reduce((n, q) => n + q.bytes, 0);
            const size = statSync(join(checkpoint, SHARD)).size;
            const first = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir], { HF_ENDPOINT: hub.endpoint }, (kill) => {
                const poll = setInterval(() => {
                    if (shardBytes() > size / 3) {
                        clearInterval(poll);
                        kill("SIGINT");
                    }
                }, 10);
            });
            assert.notEqual(first.status, 0, "the interrupted run fails");
            assert.match(first.stderr, /cancel/i);
            assert.deepEqual(models(dir), [], "nothing that looks like a model");
            const servedBefore = shardBytes();
            const r = await cli(["models", "pull", "dream-coder-7b-instruct", "--models-dir", dir, "--threads", "1"], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 0, r.stderr);
            const resumed = hub.requests.filter((q) => q.file === SHARD).at(-1)!;
            assert.match(resumed.range ?? "", /^bytes=[1-9]\d*-$/, "the shard resumes with a Range request");
            assert.ok(shardBytes() - servedBefore < size, "less than the whole shard again");
            assert.deepEqual(models(dir), ["dream-coder-7b-instruct.gguf"]);
        });
    });

    it("a disk too small for the checkpoint and its conversion is refused before the download, saying how much is needed", async (t) => {
        await withHub({ [DREAM_CODER]: { dir: checkpoint } }, async (hub) => {
            const disk = tmp("small-disk");
            const mountAndRun = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$1" "$2" models pull dream-coder-7b-instruct --models-dir "$0"';
            let r: Run | undefined;
            const tried: string[] = [];
            for (const flags of ["-Urm", "-m"]) {
                const attempt = await new Promise<Run>((resolve) => {
                    const child = spawn("unshare", [flags, "sh", "-c", mountAndRun, disk, process.execPath, CLI], {
                        env: { ...process.env, HF_ENDPOINT: hub.endpoint, HF_TOKEN: "", HF_TOKEN_PATH: join(scratch, "no-token") }
                    });
                    let stdout = "";
                    let stderr = "";
                    child.stdout.on("data", (d) => (stdout += d));
                    child.stderr.on("data", (d) => (stderr += d));
                    child.on("error", (e) => resolve({ status: null, stdout, stderr: String(e) }));
                    child.on("close", (status) => resolve({ status, stdout, stderr }));
                });
                if (/disk space|mount/.test(attempt.stderr) && !/mount:|unshare:/.test(attempt.stderr)) {
                    r = attempt;
                    break;
                }
                tried.push(`unshare ${flags}: ${attempt.stderr.trim().slice(0, 200)}`);
            }
            if (!r) return t.skip(`no small file system could be mounted here (${tried.join("; ")})`);
            assert.equal(r.status, 1, r.stderr);
            assert.match(r.stderr, /needs [\d.]+ MB of disk space in .*, but only 1\.0 MB is free there/);
            assert.match(r.stderr, /choose a models directory on another/);
            assert.deepEqual(
                hub.requests.filter((q) => q.file?.endsWith(".safetensors")),
                [],
                "no weights requested"
            );
        });
    });

    it("a community GGUF is downloaded as it is; when it is gone, the checkpoint is converted instead, and the user is told", async () => {
        const gguf = tmp("gguf-repo");
        copyFileSync(testModel({ arch: "dream" }), join(gguf, "Dream-org_Dream-v0-Instruct-7B-Q4_K_M.gguf"));
        await withHub({ "bartowski/Dream-org_Dream-v0-Instruct-7B-GGUF": { dir: gguf } }, async (hub) => {
            const dir = tmp("models");
            const r = await cli(["models", "pull", "dream-7b-instruct", "--models-dir", dir], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 0, r.stderr);
            assert.deepEqual(models(dir), ["dream-7b-instruct.gguf"]);
            assert.equal(statSync(join(dir, "dream-7b-instruct.gguf")).size, statSync(join(gguf, "Dream-org_Dream-v0-Instruct-7B-Q4_K_M.gguf")).size);
            assert.doesNotMatch(r.stderr, /Convert/);
        });
        await withHub({ "Dream-org/Dream-v0-Instruct-7B": { dir: checkpoint } }, async (hub) => {
            const dir = tmp("models");
            const r = await cli(["models", "pull", "dream-7b-instruct", "--models-dir", dir, "--threads", "1"], { HF_ENDPOINT: hub.endpoint });
            assert.equal(r.status, 0, r.stderr);
            assert.match(
                r.stderr,
                /Dream-org_Dream-v0-Instruct-7B-Q4_K_M\.gguf cannot be downloaded .*converting the authors' checkpoint Dream-org\/Dream-v0-Instruct-7B/
            );
            assert.deepEqual(models(dir), ["dream-7b-instruct.gguf"]);
            assert.equal(await fileType(join(dir, "dream-7b-instruct.gguf")), FILE_TYPE.Q4_K_M);
        });
    });

    it("models convert turns a checkpoint folder into a GGUF of the type asked for, and leaves the folder as it was", async () => {
        const out = join(tmp("converted"), "dream-coder-q8.gguf");
        const before = readdirSync(checkpoint).sort();
        const r = await cli(["models", "convert", checkpoint, "--quantization", "q8_0", "--out", out, "--threads", "1"]);
        assert.equal(r.status, 0, r.stderr);
        assert.equal(r.stdout.trim(), out);
        assert.match(r.stderr, /1\/2 Converting to GGUF\n2\/2 Quantizing to Q8_0/);
        assert.equal(await fileType(out), FILE_TYPE.Q8_0);
        assert.deepEqual(readdirSync(checkpoint).sort(), before);
        assert.deepEqual(readdirSync(join(out, "..")), ["dream-coder-q8.gguf"], "no staging left");
        await fillsAHole(out);

        const bad = await cli(["models", "convert", checkpoint, "--quantization", "Q3_X"]);
        assert.equal(bad.status, 1);
        assert.match(bad.stderr, /"Q3_X" is not a quantization this converter writes: use one of Q4_K_M, /);
        const notCheckpoint = await cli(["models", "convert", tmp("empty")]);
        assert.equal(notCheckpoint.status, 1);
        assert.match(notCheckpoint.stderr, /has no config\.json: give the folder of a Hugging Face checkpoint/);
    });
});

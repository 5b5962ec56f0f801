// The Hugging Face Hub client against the local stand-in that behaves as the Hub does: listing, downloads from the
// Hub and from the storage host an LFS file redirects to, resume, and each failure a user can meet, which must end
// in a sentence naming its cause and fix, with no file under the final name.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { checkpointFiles, downloadRepoFile, type HubError, type HubFile, listRepoFiles } from "../../server/src/hub/hub";
import { type HubStandIn, type HubStandInRepo, startHubStandIn } from "../tools/hub-stand-in";

const SHARD_1 = "model-00001-of-00002.safetensors";
const SHARD_2 = "model-00002-of-00002.safetensors";
/** Retries without the real waits. */
const FAST = { retryDelaysMs: [5, 10, 20] };

delete process.env.HF_TOKEN;
delete process.env.HF_ENDPOINT;
// Not this machine's Hugging Face CLI login, if it has one.
process.env.HF_TOKEN_PATH = join(tmpdir(), "dream-coder-hub-test-no-token");

/** A checkpoint folder as a Dream repository holds it: LFS shards, small config and tokenizer files, files a conversion does not need. */
function checkpointDir(): string {
    const dir = mkdtempSync(join(tmpdir(), "hub-repo-"));
    const files: Record<string, Buffer | string> = {
        "config.json": JSON.stringify({ architectures: ["DreamModel"], model_type: "Dream" }),
        "generation_config.json": "{}",
        "tokenizer_config.json": JSON.stringify({ model_max_length: 32768 }),
        "vocab.json": JSON.stringify(Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`tok${i}`, i]))), // over the LFS threshold
        "merges.txt": "#version: 0.2\nĠ t\n",
        [SHARD_1]: randomBytes(3_000_000),
        [SHARD_2]: randomBytes(1_000_000),
        "model.safetensors.index.json": JSON.stringify({ weight_map: {} }),
        "README.md": "# test model\n",
        "modeling_dream.py": "class DreamModel: pass\n",
        "pytorch_model.bin": randomBytes(1000),
        ".gitattributes": "*.safetensors filter=lfs diff=lfs merge=lfs -text\n",
        "figures/logo.png": randomBytes(500),
        "onnx/model.safetensors": randomBytes(100)
    };
    for (const [path, data] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), data);
    }
    return dir;
}

const source = checkpointDir();

async function withHub(repos: Record<string, Partial<HubStandInRepo>>, run: (hub: HubStandIn) => Promise<void>): Promise<void> {
    const hub = await startHubStandIn({
        repos: Object.fromEntries(Object.entries(repos).map(([name, repo]) => [name, { dir: source, ...repo }])),
        treePageSize: 4,
        lfsThreshold: 256 * 1024
    });
    try {
        await run(hub);
    } finally {
        await hub.close();
    }
}

async function fileOf(hub: HubStandIn, repo: string, path: string): Promise<HubFile> {
    const { files } = await listRepoFiles(repo, "main", { endpoint: hub.endpoint });
    const file = files.find((f) => f.path === path);
    assert.ok(file, `${path} is listed`);
    return file;
}

function outDir(): string {
    return mkdtempSync(join(tmpdir(), "hub-download-"));
}

/** Asserts the promise rejects with a HubError of `reason` whose message matches every pattern; returns it. */
async function rejectsWith(promise: Promise<unknown>, reason: HubError["reason"], ...patterns: RegExp[]): Promise<HubError> {
    const error = await promise.then(
        () => assert.fail(`expected a HubError "${reason}"`),
        (e: unknown) => e as HubError
    );
    assert.equal(error.constructor.name, "HubError", String(error));
    assert.equal(error.reason, reason, error.message);
    for (const p of patterns) assert.match(error.message, p);
    assert.doesNotMatch(error.message.slice(0, -1), /\n/, "one sentence on one line");
    return error;
}

function storageRequests(hub: HubStandIn, path: string) {
    return hub.requests.filter((r) => r.server === "storage" && r.file === path);
}

test("lists a repository over several pages and downloads its checkpoint files, the LFS ones from the storage host", async () => {
    await withHub({ "org/model": {} }, async (hub) => {
        process.env.HF_ENDPOINT = hub.endpoint; // the default endpoint
        const { commit, files } = await listRepoFiles("org/model", "main").finally(() => delete process.env.HF_ENDPOINT);
        assert.match(commit, /^[0-9a-f]{40}$/);
        assert.ok(hub.requests.filter((r) => r.url.includes("/tree/")).length > 2, "the tree came in pages linked by the Link header");
        assert.equal(files.length, readdirSync(source, { recursive: true }).filter((p) => statSync(join(source, String(p))).isFile()).length);
        const byPath = new Map(files.map((f) => [f.path, f]));
        assert.equal(byPath.get(SHARD_1)?.size, 3_000_000);
        assert.match(byPath.get(SHARD_1)?.sha256 ?? "", /^[0-9a-f]{64}$/);
        assert.ok(byPath.get("vocab.json")?.sha256, "a file over the LFS threshold is an LFS file");
        assert.equal(byPath.get("config.json")?.sha256, undefined, "a small file is a plain git file");

        const wanted = checkpointFiles(files);
        assert.deepEqual(
            wanted.map((f) => f.path).sort(),
            [
                "README.md",
                "config.json",
                "generation_config.json",
                "merges.txt",
                SHARD_1,
                SHARD_2,
                "model.safetensors.index.json",
                "tokenizer_config.json",
                "vocab.json"
            ].sort()
        );
        const out = outDir();
        for (const f of wanted) {
            const progress: number[] = [];
            await downloadRepoFile("org/model", commit, f, join(out, f.path), { endpoint: hub.endpoint, onProgress: (b) => progress.push(b) });
            assert.ok(readFileSync(join(out, f.path)).equals(readFileSync(join(source, f.path))), `${f.path} byte for byte`);
            assert.equal(progress.at(-1), f.size);
        }
        assert.deepEqual(readdirSync(out).sort(), wanted.map((f) => f.path).sort(), "no .part left");
        assert.deepEqual(
            storageRequests(hub, SHARD_1).map((r) => [r.status, r.bytes]),
            [[200, 3_000_000]]
        );
        assert.equal(storageRequests(hub, "config.json").length, 0, "a small file comes from the Hub itself");
    });
});

test("checkpointFiles keeps the config, tokenizer, safetensors and model card at the top level only", () => {
    const f = (path: string): HubFile => ({ path, size: 1, oid: "0" });
    const listing = [
        "config.json",
        "tokenizer.model",
        "chat_template.jinja",
        "added_tokens.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "model.safetensors"
    ]
        .concat(["consolidated.pt", "model.pth", "pytorch_model.bin", ".gitattributes", "assets/fig.png", "modeling_llada.py", "original/model.safetensors"])
        .map(f);
    assert.deepEqual(
        checkpointFiles(listing).map((x) => x.path),
        ["config.json", "tokenizer.model", "chat_template.jinja", "added_tokens.json", "special_tokens_map.json", "tokenizer.json", "model.safetensors"]
    );
});

test("a gated repository asks for its terms and a token, and the storage host never gets the token", async () => {
    await withHub({ "org/gated": { gated: true, token: "hf_right" } }, async (hub) => {
        const shard = await fileOf(hub, "org/gated", SHARD_2); // the listing is open, as on the Hub
        const out = outDir();
        const dest = join(out, SHARD_2);
        const login = [
            /gated/,
            /accept the model's terms on its Hugging Face page/,
            /give Dream-Coder an access token \("Dream-Coder: Set Hugging Face Token…" in the editor, HF_TOKEN/
        ];
        await rejectsWith(downloadRepoFile("org/gated", "main", shard, dest, { endpoint: hub.endpoint }), "unauthorized", /HTTP 401/, ...login);
        await rejectsWith(
            downloadRepoFile("org/gated", "main", shard, dest, { endpoint: hub.endpoint, token: "hf_wrong" }),
            "unauthorized",
            /HTTP 403/,
            /the access token given has not been granted access to it/,
            ...login
        );
        assert.deepEqual(readdirSync(out), [], "nothing written, not even an empty .part");

        await downloadRepoFile("org/gated", "main", shard, dest, { endpoint: hub.endpoint, token: "hf_right" });
        assert.ok(readFileSync(dest).equals(readFileSync(join(source, SHARD_2))));
        const forShard = hub.requests.filter((r) => r.file === SHARD_2 && r.status !== 401 && r.status !== 403);
        assert.deepEqual(
            forShard.map((r) => [r.server, r.status, r.authorization]),
            [
                ["hub", 302, "Bearer hf_right"],
                ["storage", 200, undefined]
            ]
        );

        process.env.HF_TOKEN = "hf_right"; // the token's default
        try {
            await downloadRepoFile("org/gated", "main", await fileOf(hub, "org/gated", "config.json"), join(out, "config.json"), { endpoint: hub.endpoint });
        } finally {
            delete process.env.HF_TOKEN;
        }
        assert.ok(existsSync(join(out, "config.json")));

        // Else the token the Hugging Face CLI saved ("hf auth login").
        const saved = process.env.HF_TOKEN_PATH!;
        writeFileSync(saved, "hf_right\n");
        try {
            const merges = await fileOf(hub, "org/gated", "merges.txt");
            await downloadRepoFile("org/gated", "main", merges, join(out, "merges.txt"), { endpoint: hub.endpoint });
        } finally {
            rmSync(saved);
        }
        assert.ok(existsSync(join(out, "merges.txt")));
    });
});

test("a missing repository, revision or file is named", async () => {
    await withHub({ "org/model": {} }, async (hub) => {
        const endpoint = hub.endpoint;
        await rejectsWith(
            listRepoFiles("org/missing", "main", { endpoint }),
            "unauthorized",
            /org\/missing/,
            /HTTP 401/,
            /private or gated, or does not exist/
        );
        await rejectsWith(listRepoFiles("org/missing", "main", { endpoint, token: "hf_any" }), "not-found", /no Hugging Face repository org\/missing/, /check/);
        await rejectsWith(listRepoFiles("org/model", "v9", { endpoint }), "not-found", /org\/model has no revision "v9"/, /check the branch, tag or commit/);
        const out = outDir();
        const ghost: HubFile = { path: "missing.safetensors", size: 10, oid: "0", sha256: "0".repeat(64) };
        await rejectsWith(downloadRepoFile("org/model", "main", ghost, join(out, ghost.path), { endpoint }), "not-found", /has no file missing\.safetensors/);
        assert.deepEqual(readdirSync(out), []);
    });
});

test("a server error in the middle of a file is retried, and the download resumes where it broke off", async () => {
    const faults = { [SHARD_1]: [{ cutAt: 1_000_000 }, { status: 503 }], "config.json": { status: 502 } };
    await withHub({ "org/flaky": { faults } }, async (hub) => {
        const out = outDir();
        await downloadRepoFile("org/flaky", "main", await fileOf(hub, "org/flaky", SHARD_1), join(out, SHARD_1), { endpoint: hub.endpoint, ...FAST });
        assert.ok(readFileSync(join(out, SHARD_1)).equals(readFileSync(join(source, SHARD_1))));
        // The resume asks for what the .part lacks: up to the cut, less what the client had received but not yet written.
        const [first, failed, resumed] = storageRequests(hub, SHARD_1);
        const kept = Number(/^bytes=(\d+)-$/.exec(resumed.range ?? "")?.[1]);
        assert.ok(kept > 0 && kept <= 1_000_000, `resumed from ${resumed.range}`);
        assert.deepEqual(
            [first, failed, resumed].map((r) => [r.status, r.range, r.bytes]),
            [
                [200, undefined, 1_000_000],
                [503, resumed.range, 0],
                [206, resumed.range, 3_000_000 - kept]
            ]
        );
        assert.equal(storageRequests(hub, SHARD_1).length, 3);

        const config = await fileOf(hub, "org/flaky", "config.json");
        await rejectsWith(
            downloadRepoFile("org/flaky", "main", config, join(out, "config.json"), { endpoint: hub.endpoint, ...FAST }),
            "server",
            /HTTP 502 for config\.json from org\/flaky 4 times in a row/,
            /try again later/
        );
        assert.equal(existsSync(join(out, "config.json")), false);
    });
});

test("a file cut short every time fails, keeping what arrived for the next run", async () => {
    await withHub({ "org/cut": { faults: { [SHARD_2]: { cutAt: 400_000 } } } }, async (hub) => {
        const out = outDir();
        const dest = join(out, SHARD_2);
        await rejectsWith(
            downloadRepoFile("org/cut", "main", await fileOf(hub, "org/cut", SHARD_2), dest, { endpoint: hub.endpoint, ...FAST }),
            "network",
            /download of model-00002-of-00002\.safetensors from org\/cut broke off at \d{3}\.\d kB of 1\.0 MB 4 times in a row/,
            /check the network connection/
        );
        assert.equal(existsSync(dest), false);
        const kept = statSync(`${dest}.part`).size;
        assert.ok(kept > 0 && kept <= 400_000, `${kept} bytes kept`);
    });
});

test("wrong bytes fail the checksum, and the download is deleted", async () => {
    await withHub({ "org/bad": { faults: { [SHARD_2]: { corrupt: true }, "config.json": { corrupt: true } } } }, async (hub) => {
        const out = outDir();
        await rejectsWith(
            downloadRepoFile("org/bad", "main", await fileOf(hub, "org/bad", SHARD_2), join(out, SHARD_2), { endpoint: hub.endpoint }),
            "integrity",
            /model-00002-of-00002\.safetensors from org\/bad does not match the SHA-256 Hugging Face lists/,
            /deleted: run the download again/
        );
        await rejectsWith(
            downloadRepoFile("org/bad", "main", await fileOf(hub, "org/bad", "config.json"), join(out, "config.json"), { endpoint: hub.endpoint }),
            "integrity",
            /config\.json from org\/bad does not match the git checksum/
        );
        assert.deepEqual(readdirSync(out), []);
    });
});

test("a server that ignores Range sends the whole file, and the download starts over", async () => {
    await withHub({ "org/norange": { faults: { [SHARD_2]: { ignoreRange: true } } } }, async (hub) => {
        const out = outDir();
        const dest = join(out, SHARD_2);
        writeFileSync(`${dest}.part`, randomBytes(100_000)); // bytes that are not the file's: the restart must drop them
        await downloadRepoFile("org/norange", "main", await fileOf(hub, "org/norange", SHARD_2), dest, { endpoint: hub.endpoint });
        assert.ok(readFileSync(dest).equals(readFileSync(join(source, SHARD_2))));
        assert.deepEqual(
            storageRequests(hub, SHARD_2).map((r) => [r.range, r.status]),
            [["bytes=100000-", 200]]
        );
    });
});

test("a cancelled download keeps its .part, and the next run asks only for the rest", async () => {
    await withHub({ "org/slow": { faults: { [SHARD_1]: [{ slow: { chunkBytes: 64 * 1024, delayMs: 10 } }] } } }, async (hub) => {
        const shard = await fileOf(hub, "org/slow", SHARD_1);
        const out = outDir();
        const dest = join(out, SHARD_1);
        const cancel = new AbortController();
        await rejectsWith(
            downloadRepoFile("org/slow", "main", shard, dest, {
                endpoint: hub.endpoint,
                signal: cancel.signal,
                onProgress: (bytes) => bytes > 1_000_000 && cancel.abort()
            }),
            "cancelled",
            /download of model-00001-of-00002\.safetensors was cancelled; running it again resumes it from the 1\.\d MB already downloaded/
        );
        assert.equal(existsSync(dest), false);
        const kept = statSync(`${dest}.part`).size;
        assert.ok(kept > 1_000_000 && kept < shard.size, `${kept} bytes kept`);

        const before = storageRequests(hub, SHARD_1).length;
        await downloadRepoFile("org/slow", "main", shard, dest, { endpoint: hub.endpoint });
        assert.ok(readFileSync(dest).equals(readFileSync(join(source, SHARD_1))));
        assert.deepEqual(
            storageRequests(hub, SHARD_1)
                .slice(before)
                .map((r) => [r.range, r.status, r.bytes]),
            [[`bytes=${kept}-`, 206, shard.size - kept]]
        );
    });
});

test("an unreachable Hub says so", async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await rejectsWith(
        listRepoFiles("org/model", "main", { endpoint: `http://127.0.0.1:${port}`, ...FAST }),
        "network",
        new RegExp(`Could not reach 127\\.0\\.0\\.1:${port} \\(ECONNREFUSED, 4 tries\\)`),
        /check the internet connection/
    );
});

// A disk that fills up: a 1 MiB tmpfs mounted in a mount namespace of a child process (unshare: as an unprivileged
// user namespace, else as root), so that nothing stays mounted; the child downloads into it and reports back.
test("a full disk: ensureFreeSpace refuses, and a write that runs out of space says how much is needed and where", async (t) => {
    await withHub({ "org/model": {} }, async (hub) => {
        const shard = await fileOf(hub, "org/model", SHARD_1);
        const disk = mkdtempSync(join(tmpdir(), "hub-small-disk-"));
        const child = `
            const { downloadRepoFile, ensureFreeSpace } = require(${JSON.stringify(join(__dirname, "../../server/src/hub/hub.js"))});
            const { readdirSync, statSync } = require("node:fs");
            const { disk, endpoint, shard } = JSON.parse(process.env.HUB_CHILD);
            const report = {};
            const failure = (e) => ({ name: e.constructor.name, reason: e.reason, message: e.message });
            (async () => {
                await ensureFreeSpace(disk, 500000, "Downloading the test model").then(() => (report.smallFits = true), (e) => (report.small = failure(e)));
                await ensureFreeSpace(disk, shard.size, "Downloading the test model").then(() => {}, (e) => (report.refusal = failure(e)));
                await downloadRepoFile("org/model", "main", shard, disk + "/" + shard.path, { endpoint }).then(() => {}, (e) => (report.download = failure(e)));
                report.files = readdirSync(disk).map((f) => [f, statSync(disk + "/" + f).size]);
                console.log(JSON.stringify(report));
            })();`;
        const env = { ...process.env, HUB_CHILD: JSON.stringify({ disk, endpoint: hub.endpoint, shard }) };
        const mountAndRun = 'mount -t tmpfs -o size=1m tmpfs "$0" && exec "$1" -e "$2"';
        let stdout = "";
        const tried: string[] = [];
        for (const flags of ["-Urm", "-m"]) {
            const result = await run("unshare", [flags, "sh", "-c", mountAndRun, disk, process.execPath, child], env);
            stdout = result.stdout.trim();
            if (stdout) break;
            tried.push(`unshare ${flags}: ${result.stderr.trim()}`);
        }
        if (!stdout) return t.skip(`no small file system could be mounted here (${tried.join("; ")})`);
        const report = JSON.parse(stdout);
        assert.equal(report.smallFits, true, JSON.stringify(report));
        assert.equal(report.refusal?.reason, "disk", JSON.stringify(report));
        assert.match(report.refusal.message, new RegExp(`Downloading the test model needs 3\\.0 MB of disk space in ${disk}, but only 1\\.0 MB is free there`));
        assert.match(report.refusal.message, /free at least 2\.0 MB on that disk, or choose a models directory on another one/);
        assert.equal(report.download?.reason, "disk", JSON.stringify(report));
        assert.match(
            report.download.message,
            new RegExp(`The disk holding ${disk} is full: model-00001-of-00002\\.safetensors needs 2\\.0 MB more there \\(3\\.0 MB in all\\)`)
        );
        assert.match(report.download.message, /free that much, or choose a models directory on another disk/);
        assert.deepEqual(
            report.files.map(([name]: [string]) => name),
            [`${SHARD_1}.part`],
            "nothing under the final name; the .part stays to resume"
        );
    });
});

/** Runs a command without blocking this process (the stand-in in it must keep answering the child). */
function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        const child = spawn(command, args, { env });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        child.on("error", (e) => resolve({ stdout, stderr: String(e) }));
        child.on("close", () => resolve({ stdout, stderr }));
    });
}

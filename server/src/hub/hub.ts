// The Hugging Face Hub client that fetches a checkpoint: list a repository's files at a revision, download each
// one (a cut download resumes with a Range request; the redirect to the storage host is followed without the
// token; the size and the checksum the Hub lists are checked before the file takes its name), check free disk
// space first, and say in one sentence what went wrong and how to fix it. The Hub's behaviour followed here is the
// one huggingface_hub's own client expects (file_download.py, utils/_http.py, utils/_pagination.py).
import { createHash, type Hash } from "node:crypto";
import { createReadStream, readFileSync } from "node:fs";
import { type FileHandle, mkdir, open, rename, rm, stat, statfs } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { setTimeout as sleep } from "node:timers/promises";

export interface HubOptions {
    /** The Hub's address; default process.env.HF_ENDPOINT, else https://huggingface.co. */
    endpoint?: string;
    /** An access token for gated and private repositories; default process.env.HF_TOKEN, else the Hugging Face CLI's saved token. */
    token?: string;
    signal?: AbortSignal;
    /** The waits before each retry of a server error or a dropped connection; default 1, 2, 4 and 8 s. */
    retryDelaysMs?: readonly number[];
}

export interface HubFile {
    path: string;
    size: number;
    /** The SHA-256 of the content, for a file stored with LFS (the listing's lfs.oid). */
    sha256?: string;
    /** The git blob id (SHA-1); for an LFS file, the id of its pointer, not of its content. */
    oid: string;
}

export type HubErrorReason = "unauthorized" | "not-found" | "server" | "network" | "integrity" | "disk" | "cancelled";

/** A failure a user can act on: the message is one sentence naming the cause and the fix. */
export class HubError extends Error {
    constructor(
        message: string,
        readonly reason: HubErrorReason
    ) {
        super(message);
    }
}

const DEFAULT_ENDPOINT = "https://huggingface.co";
/** huggingface_hub's http_backoff waits 1 s and doubles up to 8 s. */
const DEFAULT_RETRY_DELAYS_MS = [1000, 2000, 4000, 8000];
const MAX_REDIRECTS = 10;
const TOKEN_SETTING =
    'give Dream-Coder an access token ("Dream-Coder: Set Hugging Face Token…" in the editor, HF_TOKEN or "hf auth login" for the command line)';

interface Session {
    endpoint: string;
    token: string | undefined;
    signal: AbortSignal | undefined;
    retryDelaysMs: readonly number[];
}

function session(options: HubOptions): Session {
    const endpoint = (options.endpoint || process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, "");
    return {
        endpoint,
        token: options.token || process.env.HF_TOKEN || savedToken(),
        signal: options.signal,
        retryDelaysMs: options.retryDelaysMs ?? DEFAULT_RETRY_DELAYS_MS
    };
}

/** The token the Hugging Face CLI saved ("hf auth login"): $HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token. */
function savedToken(): string | undefined {
    const path = process.env.HF_TOKEN_PATH || join(process.env.HF_HOME || join(homedir(), ".cache", "huggingface"), "token");
    try {
        return readFileSync(path, "utf8").trim() || undefined;
    } catch {
        return undefined;
    }
}

/** What a request is about, for the sentences that report its failure. */
interface Subject {
    repo: string;
    revision: string;
    /** The file being downloaded; absent while listing. */
    file?: HubFile;
}

/** A failure worth retrying (a 5xx, a dropped connection); `final` is what to say once the retries are spent. */
class TransientFailure extends Error {
    constructor(readonly final: HubError) {
        super(final.message);
    }
}

/**
 * The files of `repo` at `revision` (a branch, tag or commit), listed at the commit the revision points to, which
 * is returned too: pass it as the revision to downloadRepoFile so that every file comes from that one commit even
 * if the branch moves meanwhile.
 */
export async function listRepoFiles(repo: string, revision: string, options: HubOptions = {}): Promise<{ commit: string; files: HubFile[] }> {
    const s = session(options);
    const subject: Subject = { repo, revision };
    const api = `${s.endpoint}/api/models/${encodePath(repo)}`;
    const info = await getJson(s, `${api}/revision/${encodeURIComponent(revision)}`, subject);
    const commit = (info.body as { sha?: unknown } | null)?.sha;
    if (typeof commit !== "string") throw unreadableAnswer(subject);
    const files: HubFile[] = [];
    // The Hub pages long listings with a Link header, as GitHub does (huggingface_hub's utils/_pagination.py).
    let next: string | undefined = `${api}/tree/${encodeURIComponent(commit)}?recursive=true`;
    while (next) {
        const page = await getJson(s, next, subject);
        if (!Array.isArray(page.body)) throw unreadableAnswer(subject);
        for (const entry of page.body) {
            if (entry?.type !== "file") continue;
            if (typeof entry.path !== "string" || typeof entry.size !== "number" || typeof entry.oid !== "string") throw unreadableAnswer(subject);
            const sha256 = entry.lfs?.oid;
            files.push({ path: entry.path, size: entry.size, oid: entry.oid, ...(typeof sha256 === "string" ? { sha256 } : {}) });
        }
        next = nextPage(page.link, next);
    }
    return { commit, files };
}

/** The checkpoint files a conversion needs (config, tokenizer files, safetensors + index, model card) from a listing, in its order. */
export function checkpointFiles(files: HubFile[]): HubFile[] {
    return files.filter((f) => !f.path.includes("/") && (CHECKPOINT_FILE_NAMES.has(f.path) || f.path.endsWith(".safetensors")));
}

const CHECKPOINT_FILE_NAMES = new Set([
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "tokenizer.model",
    "model.safetensors.index.json",
    "README.md"
]);

/** Refuses (HubError "disk") when the disk holding `dir` has less than `bytesNeeded` free; `what` names the work, e.g. "Downloading Dream-Coder 7B". */
export async function ensureFreeSpace(dir: string, bytesNeeded: number, what: string): Promise<void> {
    const fs = await statfs(await nearestExisting(dir));
    const free = fs.bavail * fs.bsize;
    if (free >= bytesNeeded) return;
    throw new HubError(
        `${what} needs ${formatBytes(bytesNeeded)} of disk space in ${dir}, but only ${formatBytes(free)} is free there: ` +
            `free at least ${formatBytes(bytesNeeded - free)} on that disk, or choose a models directory on another one (dreamCoder.modelsDirectory).`,
        "disk"
    );
}

async function nearestExisting(dir: string): Promise<string> {
    for (let d = dir; ; d = dirname(d)) {
        try {
            await stat(d);
            return d;
        } catch (error) {
            if ((error as NodeJS.ErrnoException).code !== "ENOENT" || dirname(d) === d) throw error;
        }
    }
}

/**
 * Downloads one file of `repo` at `revision` to `dest`. It is written as dest + ".part" (an existing one is resumed
 * with a Range request) and renamed to `dest` only once its size and checksum match the listing: the SHA-256 of an
 * LFS file, the git blob id of another; a mismatch deletes the .part. A server error or a dropped connection is
 * retried, resuming from what was written. Cancelling leaves the .part for the next run to resume.
 */
export async function downloadRepoFile(
    repo: string,
    revision: string,
    file: HubFile,
    dest: string,
    options: HubOptions & { onProgress?: (bytesDone: number) => void } = {}
): Promise<void> {
    const s = session(options);
    const subject: Subject = { repo, revision, file };
    if (s.signal?.aborted) throw cancelled(subject, 0);
    const diskFailure = (error: unknown) => {
        throw error instanceof HubError ? error : writeFailure(error, `${dest}.part`, dest, file, 0);
    };
    await mkdir(dirname(dest), { recursive: true }).catch(diskFailure);
    const part = await PartFile.open(`${dest}.part`, file).catch(diskFailure);
    try {
        options.onProgress?.(part.written);
        const url = `${s.endpoint}/${encodePath(repo)}/resolve/${encodeURIComponent(revision)}/${encodePath(file.path)}`;
        let before = part.written;
        await retrying(
            s,
            () => (part.written < file.size ? downloadRest(s, url, subject, part, dest, options.onProgress) : Promise.resolve()),
            () => {
                const progressed = part.written > before;
                before = part.written;
                return progressed;
            },
            () => cancelled(subject, part.written)
        );
        if (part.digest() !== (file.sha256 ?? file.oid).toLowerCase()) {
            await part.close();
            await rm(part.path, { force: true });
            throw new HubError(
                `${file.path} from ${repo} does not match the ${file.sha256 ? "SHA-256" : "git checksum"} Hugging Face lists for it ` +
                    "(it was damaged on the way), so it was deleted: run the download again.",
                "integrity"
            );
        }
        await part.close();
        await rename(part.path, dest).catch(diskFailure);
    } catch (error) {
        // A failure before the first byte (a login, a missing file) leaves no empty .part behind.
        if (part.written === 0) {
            await part.close();
            await rm(part.path, { force: true });
        }
        throw error;
    } finally {
        await part.close();
    }
}

/** One request for the bytes `part` still lacks, appended as they arrive. */
async function downloadRest(s: Session, url: string, subject: Subject, part: PartFile, dest: string, onProgress?: (bytesDone: number) => void): Promise<void> {
    const file = subject.file!;
    const range: Record<string, string> = part.written > 0 ? { range: `bytes=${part.written}-` } : {};
    const response = await request(s, url, subject, range, () => brokeOff(s, subject, part.written, "the connection was cut"));
    if (response.status === 200 && part.written > 0) {
        await part.restart(); // the server ignored the Range header and sends the whole file
    } else if (response.status === 206) {
        const start = Number(/^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1]);
        if (start !== part.written) {
            await response.body?.cancel();
            await part.restart();
            throw new TransientFailure(brokeOff(s, subject, part.written, "a range the download did not ask for"));
        }
    } else if (response.status === 416) {
        // The server has fewer bytes than the .part holds: start over.
        await response.body?.cancel();
        await part.restart();
        throw new TransientFailure(brokeOff(s, subject, 0, "HTTP 416"));
    } else if (response.status !== 200) {
        throw await statusFailure(s, response, subject);
    }
    try {
        for await (const chunk of Readable.fromWeb(response.body as WebReadableStream<Uint8Array>) as AsyncIterable<Buffer>) {
            if (part.written + chunk.length > file.size) {
                await part.close();
                await rm(part.path, { force: true });
                throw new HubError(
                    `${file.path} from ${subject.repo} came out longer than the ${formatBytes(file.size)} Hugging Face lists for it, so it was deleted: ` +
                        "run the download again.",
                    "integrity"
                );
            }
            await part.append(chunk, dest);
            onProgress?.(part.written);
        }
    } catch (error) {
        if (error instanceof HubError || s.signal?.aborted) throw error;
        throw new TransientFailure(brokeOff(s, subject, part.written, "the connection was cut"));
    }
    if (part.written < file.size) throw new TransientFailure(brokeOff(s, subject, part.written, "the response ended early"));
}

function brokeOff(s: Session, subject: Subject, written: number, why: string): HubError {
    const file = subject.file!;
    return new HubError(
        `The download of ${file.path} from ${subject.repo} broke off at ${formatBytes(written)} of ${formatBytes(file.size)} ${tries(s)} times in a row (${why}): ` +
            "check the network connection and run it again; it resumes from there.",
        "network"
    );
}

/** The .part file being written, with the running checksum of what it holds. */
class PartFile {
    private hash: Hash;
    private handle: FileHandle | undefined;

    private constructor(
        readonly path: string,
        private readonly file: HubFile,
        handle: FileHandle,
        public written: number
    ) {
        this.handle = handle;
        this.hash = this.newHash();
    }

    static async open(path: string, file: HubFile): Promise<PartFile> {
        const handle = await open(path, "a"); // appends, also after a truncate to restart
        const part = new PartFile(path, file, handle, (await handle.stat()).size);
        if (part.written > file.size) await part.restart();
        else if (part.written > 0) for await (const chunk of createReadStream(path, { end: part.written - 1 })) part.hash.update(chunk as Buffer);
        return part;
    }

    /** An LFS file is checked by its SHA-256; another by its git blob id, the SHA-1 of "blob <size>\0" and the content. */
    private newHash(): Hash {
        return this.file.sha256 ? createHash("sha256") : createHash("sha1").update(`blob ${this.file.size}\0`);
    }

    async append(chunk: Buffer, dest: string): Promise<void> {
        for (let offset = 0; offset < chunk.length; ) {
            let bytesWritten: number;
            try {
                ({ bytesWritten } = await this.handle!.write(chunk, offset, chunk.length - offset));
            } catch (error) {
                throw writeFailure(error, this.path, dest, this.file, this.written);
            }
            this.hash.update(chunk.subarray(offset, offset + bytesWritten));
            offset += bytesWritten;
            this.written += bytesWritten;
        }
    }

    async restart(): Promise<void> {
        await this.handle!.truncate(0);
        this.written = 0;
        this.hash = this.newHash();
    }

    digest(): string {
        return this.hash.copy().digest("hex");
    }

    async close(): Promise<void> {
        const handle = this.handle;
        this.handle = undefined;
        await handle?.close();
    }
}

function writeFailure(error: unknown, part: string, dest: string, file: HubFile, written: number): HubError {
    const code = errorCode(error);
    if (code === "ENOSPC" || code === "EDQUOT") {
        return new HubError(
            `The disk holding ${dirname(dest)} is full: ${file.path} needs ${formatBytes(file.size - written)} more there (${formatBytes(file.size)} in all); ` +
                "free that much, or choose a models directory on another disk (dreamCoder.modelsDirectory), and run the download again, which resumes it.",
            "disk"
        );
    }
    return new HubError(`Could not write ${part} (${code}): choose a models directory you can write to (dreamCoder.modelsDirectory).`, "disk");
}

/** Runs `attempt` again after a TransientFailure, waiting between tries; a try that made progress starts the count over. */
async function retrying(s: Session, attempt: () => Promise<void>, progressed: () => boolean, onCancel: () => HubError): Promise<void> {
    for (let failures = 0; ; ) {
        try {
            return await attempt();
        } catch (error) {
            if (s.signal?.aborted) throw onCancel();
            if (!(error instanceof TransientFailure)) throw error;
            failures = progressed() ? 1 : failures + 1;
            if (failures > s.retryDelaysMs.length) throw error.final;
        }
        try {
            await sleep(s.retryDelaysMs[failures - 1], undefined, { signal: s.signal });
        } catch {
            throw onCancel();
        }
    }
}

async function getJson(s: Session, url: string, subject: Subject): Promise<{ body: unknown; link: string | null }> {
    let result: { body: unknown; link: string | null } | undefined;
    await retrying(
        s,
        async () => {
            const response = await request(s, url, subject, { accept: "application/json" }, (host, code) => connectionCut(s, host, subject, code));
            if (!response.ok) throw await statusFailure(s, response, subject);
            try {
                result = { body: await response.json(), link: response.headers.get("link") };
            } catch (error) {
                if (s.signal?.aborted) throw error;
                if (error instanceof SyntaxError) throw unreadableAnswer(subject);
                throw new TransientFailure(connectionCut(s, new URL(url).host, subject, errorCode(error)));
            }
        },
        () => false,
        () => cancelled(subject, 0)
    );
    return result!;
}

/**
 * GET `url`, following redirects by hand so that the token goes to the Hub only: the storage host an LFS file
 * redirects to gets no Authorization header (as in huggingface_hub's hf_hub_download, which drops it after the
 * HEAD's redirect). A failure to connect, or a connection `cut` before the headers arrive, is a TransientFailure.
 */
async function request(
    s: Session,
    url: string,
    subject: Subject,
    headers: Record<string, string>,
    cut: (host: string, code: string) => HubError
): Promise<Response> {
    const hub = new URL(s.endpoint).origin;
    let current = new URL(url);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
        let response: Response;
        try {
            response = await fetch(current, {
                // identity: the byte counts and ranges are the file's own, not those of a compressed body
                headers: { "accept-encoding": "identity", ...headers, ...(s.token && current.origin === hub ? { authorization: `Bearer ${s.token}` } : {}) },
                redirect: "manual",
                signal: s.signal
            });
        } catch (error) {
            if (s.signal?.aborted) throw error;
            const code = errorCode(error);
            throw new TransientFailure(CONNECTION_CUT.has(code) ? cut(current.host, code) : unreachable(s, current.host, subject, code));
        }
        const location = response.headers.get("location");
        if (response.status < 300 || response.status >= 400 || !location) return response;
        await response.body?.cancel();
        current = new URL(location, current);
    }
    throw new HubError(`Hugging Face redirected the request for ${what(subject)} more than ${MAX_REDIRECTS} times: try again later.`, "server");
}

/** The error for a response that is neither the content nor a redirect. */
async function statusFailure(s: Session, response: Response, subject: Subject): Promise<HubError | TransientFailure> {
    await response.body?.cancel();
    const status = response.status;
    const fromHub = new URL(response.url || s.endpoint).origin === new URL(s.endpoint).origin;
    if (status >= 500 || status === 429 || (!fromHub && (status === 401 || status === 403))) {
        // The storage host's 401/403 is an expired link, not a login: a retry asks the Hub for a fresh one.
        return new TransientFailure(
            new HubError(
                `Hugging Face answered HTTP ${status} for ${what(subject)} ${tries(s)} times in a row: the Hub or its file storage ` +
                    `is having trouble; try again later${subject.file ? ", the download resumes where it stopped" : ""}.`,
                "server"
            )
        );
    }
    const code = response.headers.get("x-error-code");
    const { repo, revision, file } = subject;
    const page = `${s.endpoint}/${repo}`;
    const login = `accept the model's terms on its Hugging Face page (${page}) and ${TOKEN_SETTING}`;
    if (code === "GatedRepo" && !s.token) {
        return new HubError(`${repo} is a gated model on Hugging Face and needs a login (HTTP ${status}): ${login}.`, "unauthorized");
    }
    if (code === "GatedRepo") {
        return new HubError(
            `${repo} is a gated model on Hugging Face, and the access token given has not been granted access to it (HTTP ${status}): ${login} of the account that accepted them.`,
            "unauthorized"
        );
    }
    if (status === 401 && !s.token) {
        // The Hub answers 401 to an anonymous request for a private, gated or missing repository alike.
        return new HubError(
            `Hugging Face did not find ${repo} without a login (HTTP 401): it is private or gated, or does not exist; check the name, and ${login}.`,
            "unauthorized"
        );
    }
    if (status === 401) {
        return new HubError(`Hugging Face refused the access token for ${repo} (HTTP 401: invalid or expired): ${login}.`, "unauthorized");
    }
    if (status === 403) {
        return new HubError(`Hugging Face refused ${repo} to this access token (HTTP 403: it is gated or private): ${login}.`, "unauthorized");
    }
    if (status === 404) {
        if (code === "RepoNotFound") {
            return new HubError(
                `There is no Hugging Face repository ${repo} that this access token can read (HTTP 404): check the model's name, and for a private repository, ${TOKEN_SETTING} that can read it.`,
                "not-found"
            );
        }
        if (code === "RevisionNotFound") {
            return new HubError(
                `The Hugging Face repository ${repo} has no revision "${revision}" (HTTP 404): check the branch, tag or commit name.`,
                "not-found"
            );
        }
        if (file) {
            return new HubError(
                `The Hugging Face repository ${repo} has no file ${file.path} at revision "${revision}" (HTTP 404): list its files again, they may have changed.`,
                "not-found"
            );
        }
        return new HubError(
            `Hugging Face has no repository ${repo} with a revision "${revision}" (HTTP 404): check the model's name and the revision.`,
            "not-found"
        );
    }
    return new HubError(`Hugging Face answered HTTP ${status} for ${what(subject)}: check the model's name and revision, or try again later.`, "server");
}

function unreachable(s: Session, host: string, subject: Subject, code: string): HubError {
    const env = process.env.HF_ENDPOINT ? ", and HF_ENDPOINT" : "";
    return new HubError(
        `Could not reach ${host} (${code}, ${tries(s)} tries) for ${what(subject)}: check the internet connection${env}, then try again.`,
        "network"
    );
}

/** node's fetch reports these (the cause's code) for a connection that was made and then cut; any other failure is one to connect. */
const CONNECTION_CUT = new Set(["ECONNRESET", "ECONNABORTED", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

function connectionCut(s: Session, host: string, subject: Subject, code: string): HubError {
    return new HubError(
        `The connection to ${host} was cut (${code}) ${tries(s)} times in a row, for ${what(subject)}: check the network connection, then try again.`,
        "network"
    );
}

function unreadableAnswer(subject: Subject): HubError {
    return new HubError(`Hugging Face's answer for ${what(subject)} is not in the form Dream-Coder reads: try again later, or report it.`, "server");
}

function cancelled(subject: Subject, written: number): HubError {
    if (!subject.file) return new HubError(`Listing the files of ${subject.repo} was cancelled.`, "cancelled");
    const resume = written > 0 ? `; running it again resumes it from the ${formatBytes(written)} already downloaded` : "";
    return new HubError(`The download of ${subject.file.path} was cancelled${resume}.`, "cancelled");
}

function tries(s: Session): number {
    return s.retryDelaysMs.length + 1;
}

function what(subject: Subject): string {
    return subject.file ? `${subject.file.path} from ${subject.repo}` : `the files of ${subject.repo} at "${subject.revision}"`;
}

/** node's fetch reports a connection failure as "fetch failed" with the system error as its cause. */
function errorCode(error: unknown): string {
    const e = error as { code?: unknown; cause?: { code?: unknown; message?: unknown }; message?: unknown };
    return String(e?.cause?.code ?? e?.code ?? e?.cause?.message ?? e?.message ?? error);
}

/** Each segment URL-encoded, the slashes kept (huggingface_hub's quote(path, safe="/")). */
function encodePath(path: string): string {
    return path.split("/").map(encodeURIComponent).join("/");
}

/** The rel="next" URL of a Link header, resolved against the page's URL. */
function nextPage(link: string | null, base: string): string | undefined {
    const target = link?.split(",").find((part) => /;\s*rel="?next"?/.test(part));
    const url = target && /<([^>]*)>/.exec(target)?.[1];
    return url ? new URL(url, base).href : undefined;
}

/** A size in the decimal units the Hub's pages use: "3.0 MB", "15.2 GB". */
export function formatBytes(bytes: number): string {
    if (bytes < 1e3) return `${bytes} bytes`;
    const [value, unit] = bytes < 1e6 ? [bytes / 1e3, "kB"] : bytes < 1e9 ? [bytes / 1e6, "MB"] : bytes < 1e12 ? [bytes / 1e9, "GB"] : [bytes / 1e12, "TB"];
    return `${value.toFixed(1)} ${unit}`;
}

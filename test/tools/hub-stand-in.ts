// A local stand-in for the Hugging Face Hub, on loopback: it serves repositories from folders the way the Hub does
// (the tree and revision APIs, `resolve` with LFS files redirected to a second server on another port standing in
// for the storage host, Range requests, the Hub's X-Error-Code and X-Linked-* headers, 401 for an anonymous request
// to a missing repository), and fails on request: a gated repository, a status, a connection cut at an offset,
// wrong bytes, a server that ignores Range, slow streaming. Every request is logged with the bytes it was sent.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { readdir, stat } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { join, relative, sep } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/** A way a file's content request fails (the request that would send its bytes: the storage host's for an LFS file, `resolve`'s for another). */
export type HubFault =
    /** Answer this HTTP status instead of the bytes. */
    | { status: number }
    /** Send the headers (the full length) and the bytes before this offset of the file, then cut the connection. */
    | { cutAt: number }
    /** Send the file with one byte changed (the same length). */
    | { corrupt: true }
    /** Answer a Range request with 200 and the whole file, as a server without range support does. */
    | { ignoreRange: true }
    /** Send `chunkBytes` at a time, `delayMs` apart. */
    | { slow: { chunkBytes: number; delayMs: number } };

export interface HubStandInRepo {
    /** The folder whose files (subfolders included) the repository holds. */
    dir: string;
    /** Downloads need `Authorization: Bearer <token>`: 401 without one, 403 with another; listing stays open, as on the Hub. */
    gated?: boolean;
    token?: string;
    /** The commit "main" points to; default: one derived from the files. */
    commit?: string;
    /**
     * Faults by file path. One fault applies to every content request for the file; a list applies to the first
     * requests in turn (the first request gets the first fault), after which the file is served normally.
     */
    faults?: Record<string, HubFault | HubFault[]>;
}

export interface HubStandInOptions {
    repos: Record<string, HubStandInRepo>;
    /** Tree entries per page before a Link header points to the next page; default 1000. */
    treePageSize?: number;
    /** Files larger than this are LFS files besides those the Hub's default .gitattributes names; default 10 MiB, the Hub's limit for plain git files. */
    lfsThreshold?: number;
}

export interface HubStandInRequest {
    server: "hub" | "storage";
    method: string;
    /** The path and query. */
    url: string;
    range?: string;
    authorization?: string;
    status: number;
    /** Body bytes sent, counted as they are written. */
    bytes: number;
    /** For a file request: the repository and the file's path. */
    repo?: string;
    file?: string;
}

export interface HubStandIn {
    /** The Hub's address: pass it as the endpoint (or HF_ENDPOINT). */
    endpoint: string;
    /** The storage host's address (another port: another origin). */
    storage: string;
    requests: HubStandInRequest[];
    close(): Promise<void>;
}

interface RepoFile {
    path: string;
    abs: string;
    size: number;
    /** The git blob id of the content, or of the LFS pointer for an LFS file. */
    oid: string;
    sha256: string;
    lfs: boolean;
}

interface Repo {
    name: string;
    spec: HubStandInRepo;
    commit: string;
    files: RepoFile[];
    /** Content requests so far, by file path, for the faults that apply in turn. */
    served: Map<string, number>;
}

/** The suffixes the Hub's default .gitattributes stores with LFS. */
const LFS_SUFFIXES = [".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".h5", ".msgpack", ".onnx", ".model", ".zip"];

export async function startHubStandIn(options: HubStandInOptions): Promise<HubStandIn> {
    const repos = new Map<string, Repo>();
    for (const [name, spec] of Object.entries(options.repos)) {
        const files = await readRepoFiles(spec.dir, options.lfsThreshold ?? 10 * 1024 * 1024);
        const commit = spec.commit ?? gitOid(files.map((f) => `${f.path} ${f.oid}\n`).join(""));
        repos.set(name, { name, spec, commit, files, served: new Map() });
    }
    const requests: HubStandInRequest[] = [];
    const pageSize = options.treePageSize ?? 1000;
    const hub = http.createServer((req, res) => void serveHub(req, res, log(req, res, "hub")).catch((e) => fail(res, e)));
    const storage = http.createServer((req, res) => void serveStorage(req, res, log(req, res, "storage")).catch((e) => fail(res, e)));
    const endpoint = await listen(hub);
    const storageOrigin = await listen(storage);

    function log(req: http.IncomingMessage, res: http.ServerResponse, server: "hub" | "storage"): HubStandInRequest {
        const entry: HubStandInRequest = { server, method: req.method ?? "GET", url: req.url ?? "/", status: 0, bytes: 0 };
        if (req.headers.range) entry.range = req.headers.range;
        if (req.headers.authorization) entry.authorization = req.headers.authorization;
        requests.push(entry);
        const writeHead = res.writeHead.bind(res) as (status: number, headers?: http.OutgoingHttpHeaders) => http.ServerResponse;
        res.writeHead = ((status: number, headers?: http.OutgoingHttpHeaders) => {
            entry.status = status;
            return writeHead(status, headers);
        }) as typeof res.writeHead;
        return entry;
    }

    async function serveHub(req: http.IncomingMessage, res: http.ServerResponse, entry: HubStandInRequest): Promise<void> {
        const url = new URL(req.url ?? "/", endpoint);
        const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
        if (parts[0] === "api" && parts[1] === "models") {
            const [, , owner, name, kind, revision, ...rest] = parts;
            const repo = findRepo(req, res, `${owner}/${name}`);
            if (!repo || !atRevision(res, repo, revision)) return;
            if (kind === "revision" && rest.length === 0) {
                return json(res, 200, {
                    _id: repo.commit.slice(0, 24),
                    id: repo.name,
                    modelId: repo.name,
                    sha: repo.commit,
                    private: false,
                    gated: repo.spec.gated ? "manual" : false,
                    disabled: false,
                    siblings: repo.files.map((f) => ({ rfilename: f.path }))
                });
            }
            if (kind === "tree") return tree(res, url, repo, rest.join("/"));
            return error(res, 404, "EntryNotFound", "Not found");
        }
        const [owner, name, kind, revision, ...rest] = parts;
        if (kind !== "resolve") return error(res, 404, undefined, "Not found");
        const repo = findRepo(req, res, `${owner}/${name}`);
        if (!repo || !atRevision(res, repo, revision)) return;
        const file = repo.files.find((f) => f.path === rest.join("/"));
        if (!file) return error(res, 404, "EntryNotFound", `${rest.join("/")} does not exist on "${revision}"`);
        entry.repo = repo.name;
        entry.file = file.path;
        if (repo.spec.gated) {
            const auth = req.headers.authorization;
            if (!auth) return error(res, 401, "GatedRepo", `Access to model ${repo.name} is restricted. You must be authenticated to access it.`);
            if (auth !== `Bearer ${repo.spec.token}`) {
                return error(res, 403, "GatedRepo", `Access to model ${repo.name} is restricted and you are not in the authorized list.`);
            }
        }
        const common = { "x-repo-commit": repo.commit, etag: `"${file.oid}"` };
        if (file.lfs) {
            const location = `${storageOrigin}/lfs/${file.sha256}?repo=${encodeURIComponent(repo.name)}&file=${encodeURIComponent(file.path)}`;
            res.writeHead(302, { ...common, location, "x-linked-size": file.size, "x-linked-etag": `"${file.sha256}"`, "content-length": 0 });
            return void res.end();
        }
        return content(req, res, entry, repo, file, common);
    }

    async function serveStorage(req: http.IncomingMessage, res: http.ServerResponse, entry: HubStandInRequest): Promise<void> {
        const url = new URL(req.url ?? "/", storageOrigin);
        const repo = repos.get(url.searchParams.get("repo") ?? "");
        const file = repo?.files.find((f) => f.path === url.searchParams.get("file") && url.pathname === `/lfs/${f.sha256}`);
        if (!repo || !file) return error(res, 404, undefined, "NoSuchKey");
        entry.repo = repo.name;
        entry.file = file.path;
        return content(req, res, entry, repo, file, { etag: `"${file.sha256}"` });
    }

    /** The file's bytes (a Range request gets 206), with the fault that applies to this request. */
    async function content(
        req: http.IncomingMessage,
        res: http.ServerResponse,
        entry: HubStandInRequest,
        repo: Repo,
        file: RepoFile,
        headers: http.OutgoingHttpHeaders
    ): Promise<void> {
        const fault = req.method === "GET" ? nextFault(repo, file.path) : undefined;
        if (fault && "status" in fault) return error(res, fault.status, undefined, `injected HTTP ${fault.status}`);
        let start = 0;
        let end = file.size - 1;
        const range = fault && "ignoreRange" in fault ? undefined : req.headers.range;
        if (range) {
            const m = /^bytes=(\d*)-(\d*)$/.exec(range);
            start = m?.[1] ? Number(m[1]) : m?.[2] ? file.size - Number(m[2]) : Number.NaN;
            end = m?.[1] && m[2] ? Math.min(Number(m[2]), file.size - 1) : file.size - 1;
            if (!(start >= 0 && start <= end)) {
                res.writeHead(416, { "content-range": `bytes */${file.size}` });
                return void res.end();
            }
        }
        res.writeHead(range ? 206 : 200, {
            ...headers,
            "content-type": "application/octet-stream",
            "content-length": end - start + 1,
            "accept-ranges": "bytes",
            ...(range ? { "content-range": `bytes ${start}-${end}/${file.size}` } : {})
        });
        res.flushHeaders(); // a cut before the first byte is then a response cut short, not a refused request
        if (req.method === "HEAD" || end < start) return void res.end();
        const slow = fault && "slow" in fault ? fault.slow : undefined;
        const cutAt = fault && "cutAt" in fault ? fault.cutAt : Number.POSITIVE_INFINITY;
        const corruptAt = fault && "corrupt" in fault ? Math.floor(file.size / 2) : -1;
        let offset = start;
        for await (const read of createReadStream(file.abs, { start, end, highWaterMark: slow?.chunkBytes ?? 64 * 1024 })) {
            let chunk = read as Buffer;
            if (corruptAt >= offset && corruptAt < offset + chunk.length) {
                chunk = Buffer.from(chunk);
                chunk[corruptAt - offset] ^= 0xff;
            }
            const cut = offset + chunk.length > cutAt;
            if (cut) chunk = chunk.subarray(0, Math.max(0, cutAt - offset));
            if (chunk.length > 0 && !(await send(res, chunk))) return;
            entry.bytes += chunk.length;
            offset += chunk.length;
            if (cut) return void res.socket?.destroy();
            if (slow) await sleep(slow.delayMs);
        }
        res.end();
    }

    function nextFault(repo: Repo, path: string): HubFault | undefined {
        const faults = repo.spec.faults?.[path];
        const n = repo.served.get(path) ?? 0;
        repo.served.set(path, n + 1);
        return Array.isArray(faults) ? faults[n] : faults;
    }

    /** The Hub answers an anonymous request for a missing repository with 401, as for a private one; 404 with a token. */
    function findRepo(req: http.IncomingMessage, res: http.ServerResponse, name: string): Repo | undefined {
        const repo = repos.get(name);
        if (!repo) error(res, req.headers.authorization ? 404 : 401, "RepoNotFound", "Repository not found");
        return repo;
    }

    function atRevision(res: http.ServerResponse, repo: Repo, revision: string | undefined): boolean {
        if (revision === "main" || revision === repo.commit) return true;
        error(res, 404, "RevisionNotFound", `Invalid rev id: ${revision}`);
        return false;
    }

    function tree(res: http.ServerResponse, url: URL, repo: Repo, under: string): void {
        const recursive = url.searchParams.get("recursive") === "true";
        const prefix = under ? `${under}/` : "";
        const entries: object[] = [];
        const dirs = new Set<string>();
        for (const f of repo.files) {
            if (!f.path.startsWith(prefix)) continue;
            const segments = f.path.slice(prefix.length).split("/");
            for (let i = 1; i < segments.length && (recursive || i === 1); i++) {
                const dir = prefix + segments.slice(0, i).join("/");
                if (!dirs.has(dir)) entries.push({ type: "directory", oid: gitOid(dir), size: 0, path: dir });
                dirs.add(dir);
            }
            if (!recursive && segments.length > 1) continue;
            const pointerSize = lfsPointer(f).length;
            entries.push({ type: "file", oid: f.oid, size: f.size, path: f.path, ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize } } : {}) });
        }
        const cursor = Number(url.searchParams.get("cursor") ?? 0);
        const page = entries.slice(cursor, cursor + pageSize);
        const headers: http.OutgoingHttpHeaders = {};
        if (cursor + pageSize < entries.length) {
            const next = new URL(url.pathname, endpoint);
            if (recursive) next.searchParams.set("recursive", "true");
            next.searchParams.set("cursor", String(cursor + pageSize));
            headers.link = `<${next.href}>; rel="next"`;
        }
        json(res, 200, page, headers);
    }

    return {
        endpoint,
        storage: storageOrigin,
        requests,
        close: async () => {
            for (const server of [hub, storage]) {
                server.closeAllConnections();
                await new Promise<void>((r) => server.close(() => r()));
            }
        }
    };
}

async function readRepoFiles(dir: string, lfsThreshold: number): Promise<RepoFile[]> {
    const files: RepoFile[] = [];
    for (const dirent of await readdir(dir, { recursive: true, withFileTypes: true })) {
        if (!dirent.isFile()) continue;
        const abs = join(dirent.parentPath, dirent.name);
        const path = relative(dir, abs).split(sep).join("/");
        const { size } = await stat(abs);
        const lfs = size > lfsThreshold || LFS_SUFFIXES.some((s) => path.endsWith(s));
        const sha256 = createHash("sha256");
        const sha1 = createHash("sha1").update(`blob ${size}\0`);
        for await (const chunk of createReadStream(abs)) {
            sha256.update(chunk as Buffer);
            sha1.update(chunk as Buffer);
        }
        const file = { path, abs, size, sha256: sha256.digest("hex"), lfs, oid: sha1.digest("hex") };
        if (lfs) file.oid = gitOid(lfsPointer(file));
        files.push(file);
    }
    return files.sort((a, b) => a.path.localeCompare(b.path));
}

function lfsPointer(file: { sha256: string; size: number }): string {
    return `version https://git-lfs.github.com/spec/v1\noid sha256:${file.sha256}\nsize ${file.size}\n`;
}

function gitOid(content: string): string {
    const bytes = Buffer.from(content);
    return createHash("sha1").update(`blob ${bytes.length}\0`).update(bytes).digest("hex");
}

/** Resolves false when the client went away before the chunk was handed to the socket. */
function send(res: http.ServerResponse, chunk: Buffer): Promise<boolean> {
    return new Promise((resolve) => {
        if (res.destroyed) return resolve(false);
        const onClose = () => resolve(false);
        res.once("close", onClose);
        res.write(chunk, (err) => {
            res.off("close", onClose);
            resolve(!err);
        });
    });
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers, "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
    res.end(text);
}

/** An error as the Hub sends it: X-Error-Code / X-Error-Message headers and {"error": ...}. */
function error(res: http.ServerResponse, status: number, code: string | undefined, message: string): void {
    json(res, status, { error: message }, { ...(code ? { "x-error-code": code } : {}), "x-error-message": message });
}

function fail(res: http.ServerResponse, e: unknown): void {
    if (res.headersSent) res.destroy();
    else error(res, 500, undefined, String(e));
}

function listen(server: http.Server): Promise<string> {
    return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));
}

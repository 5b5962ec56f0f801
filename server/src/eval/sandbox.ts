// Runs one untrusted Python program (a model's completion inside a problem and its tests) so that it can fail
// but harm nothing: a fresh directory, its own session and process group (setsid), CPU-time, wall-time,
// address-space, file-size and process limits, an empty environment, capped output, the whole group
// killed on time-out. As root it also gets its own network namespace (no network, loopback down), its own
// PID namespace (every process it starts dies with it, even one that escapes the group with setsid), private
// tmpfs mounts over /tmp, /var/tmp and /dev/shm, and runs as a user id of its own. Without root those are not isolated,
// and `sandboxIsolation().notIsolated` says so.
import { spawn, spawnSync } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SandboxLimits {
    cpuSeconds: number;
    wallMs: number;
    /** RLIMIT_AS: the most virtual memory the program may map. */
    memoryBytes: number;
    /** RLIMIT_FSIZE: the largest file it may write. */
    fileBytes: number;
    /** RLIMIT_NPROC: processes of its user (as root: of the run's own user id). */
    processes: number;
    /** stdout and stderr together; past this the group is killed. */
    outputBytes: number;
}

export const DEFAULT_LIMITS: SandboxLimits = {
    cpuSeconds: 10,
    wallMs: 20_000,
    memoryBytes: 1 << 30,
    fileBytes: 1 << 20,
    processes: 64,
    outputBytes: 64 << 10
};

export type Outcome = "passed" | "failed" | "timeout" | "output-limit";

export interface RunResult {
    outcome: Outcome;
    exitCode: number | null;
    signal: NodeJS.Signals | null;
    /** stdout and stderr interleaved, at most limits.outputBytes. */
    output: string;
    ms: number;
}

export interface Isolation {
    full: boolean;
    /** What the sandbox does, in words. */
    applied: string;
    /** What it cannot isolate here; empty when full. */
    notIsolated: string;
}

/** Debian's interpreter when there (setup installs it); another system's python3 from PATH otherwise. */
export const PYTHON = existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
/**
 * As root each run gets a user id no account has (and group nogroup): it owns nothing outside its directory,
 * and the process limit, which counts a user's processes machine-wide, counts only this run's — a fork bomb
 * in one run cannot starve another (as it would if every run were nobody).
 */
function runUid(): number {
    return 1_000_000 + Math.floor(Math.random() * 1_000_000_000);
}
const NOGROUP = 65534;
const PRIVATE_TMP = 'for d in /tmp /var/tmp /dev/shm; do if [ -d $d ]; then mount -t tmpfs -o size=16m,mode=1777 tmpfs $d || exit 125; fi; done; exec "$@"';

let probed: Isolation | undefined;

/** Whether this process can build the full sandbox (root, unshare, setpriv), probed once. */
export function sandboxIsolation(): Isolation {
    if (probed) return probed;
    if (spawnSync("prlimit", ["--version"]).status !== 0) throw new Error("the sandbox needs prlimit (util-linux): apt-get install util-linux");
    const full =
        process.getuid?.() === 0 &&
        spawnSync("setpriv", ["--version"]).status === 0 &&
        spawnSync("unshare", ["--net", "--pid", "--fork", "--kill-child", "--mount", "--", "sh", "-c", PRIVATE_TMP, "probe", "true"]).status === 0;
    const common = "fresh directory, own process group killed on time-out, CPU/wall/address-space/file-size/process limits, capped output, empty environment";
    probed = full
        ? { full, applied: `${common}; no network (own network namespace), own PID namespace, private /tmp, a user id of its own`, notIsolated: "" }
        : { full, applied: common, notIsolated: "network, other processes and files of this user, /tmp (run as root for namespaces and a user of its own)" };
    return probed;
}

/** Runs `program` with python3 -I under the limits; resolves when the program and everything it started are gone. */
export function runPython(program: string, limits: SandboxLimits = DEFAULT_LIMITS): Promise<RunResult> {
    const isolation = sandboxIsolation();
    const dir = mkdtempSync(join(tmpdir(), "dream-coder-eval-"));
    const uid = runUid();
    const limited = [
        "prlimit",
        `--cpu=${limits.cpuSeconds}`,
        `--as=${limits.memoryBytes}`,
        `--fsize=${limits.fileBytes}`,
        `--nproc=${limits.processes}`,
        "--core=0",
        "--",
        // The program comes on stdin: with a private /tmp the directory's path no longer leads to it, but the
        // working directory still does.
        ...(isolation.full ? ["setpriv", `--reuid=${uid}`, `--regid=${NOGROUP}`, "--clear-groups", "--"] : []),
        PYTHON,
        "-I",
        "-"
    ];
    const [command, ...args] = isolation.full
        ? ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount", "--", "sh", "-c", PRIVATE_TMP, "sandbox", ...limited]
        : limited;
    if (isolation.full) chownSync(dir, uid, NOGROUP);
    const started = performance.now();
    return new Promise((resolve, reject) => {
        const child = spawn(command, args, { cwd: dir, detached: true, env: { PATH: "/usr/bin:/bin", LC_ALL: "C.UTF-8" }, stdio: ["pipe", "pipe", "pipe"] });
        const chunks: Buffer[] = [];
        let size = 0;
        let stoppedFor: Outcome | undefined;
        const killGroup = () => {
            try {
                process.kill(-child.pid!, "SIGKILL");
            } catch {
                // the group is already gone
            }
        };
        const stop = (why: Outcome) => {
            stoppedFor ??= why;
            killGroup();
        };
        const timer = setTimeout(() => stop("timeout"), limits.wallMs);
        const collect = (data: Buffer) => {
            if (size >= limits.outputBytes) return;
            chunks.push(data.subarray(0, limits.outputBytes - size));
            size += data.length;
            if (size >= limits.outputBytes) stop("output-limit");
        };
        child.stdout.on("data", collect);
        child.stderr.on("data", collect);
        // A program that exits before reading all of itself closes the pipe: that is its failure, not ours.
        child.stdin.on("error", () => undefined);
        child.stdin.end(program);
        // Whatever is left of the group once the program is done (a child it forked) goes with it; a process
        // that left the group (possible without the PID namespace) must not hold the result back by keeping
        // the pipes open.
        child.on("exit", () => {
            killGroup();
            setTimeout(() => {
                child.stdout.destroy();
                child.stderr.destroy();
            }, 200).unref();
        });
        child.on("error", (e) => {
            clearTimeout(timer);
            rmSync(dir, { recursive: true, force: true });
            reject(new Error(`cannot start ${command}: ${e.message}`));
        });
        child.on("close", (exitCode, signal) => {
            clearTimeout(timer);
            rmSync(dir, { recursive: true, force: true });
            resolve({
                outcome: stoppedFor ?? (exitCode === 0 ? "passed" : "failed"),
                exitCode,
                signal,
                output: Buffer.concat(chunks).toString("utf8"),
                ms: performance.now() - started
            });
        });
    });
}

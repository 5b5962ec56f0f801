import * as fs from "node:fs";
import * as net from "node:net";

/** A free loopback port, chosen by binding port 0. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const server = net.createServer();
        server.unref();
        server.on("error", reject);
        server.listen(0, "127.0.0.1", () => {
            const address = server.address();
            const port = typeof address === "object" && address ? address.port : 0;
            server.close(() => (port ? resolve(port) : reject(new Error("no port"))));
        });
    });
}

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
        setTimeout(resolve, ms);
    });
}

/** Races a promise against a timer; the timer is always cleared. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
        return await Promise.race([
            promise,
            new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
            })
        ]);
    } finally {
        clearTimeout(timer);
    }
}

/** Runs a cleanup step, bounded in time, never throwing. */
export async function bestEffort(what: string, fn: () => Promise<unknown> | unknown, ms = 10_000): Promise<void> {
    try {
        await withTimeout(Promise.resolve().then(fn), ms, what);
    } catch (err) {
        console.error(`e2e cleanup: ${what}: ${(err as Error).message}`);
    }
}

export function timestamp(): string {
    return new Date().toISOString().replace(/[:.]/g, "-");
}

/** Pids of live processes whose command line mentions `text` (Linux /proc); for leak checks. */
export function processesMentioning(text: string): number[] {
    const pids: number[] = [];
    for (const entry of fs.readdirSync("/proc")) {
        if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
        try {
            const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, "utf8");
            if (cmdline.includes(text)) pids.push(Number(entry));
        } catch {
            // exited meanwhile
        }
    }
    return pids;
}

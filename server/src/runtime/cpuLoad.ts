// How many cores other programs keep busy, so that a request runs on the cores they leave free. ggml's threads
// meet at a barrier after every op: with more threads than free cores, one descheduled thread stalls the rest.
// Measured on 2 cores (docs/benchmarks.md, "A busy machine"): against one spinning process a 2-thread dual-cache
// step was 1.2-1.5x slower than a 1-thread one, against two about 2x; on idle cores 2 threads were 1.6x faster.
import { availableParallelism, cpus } from "node:os";

/** CPU time (ms) every core spent busy, and this process's own share of it, at a moment. */
export interface CpuSample {
    at: number;
    busyMs: number;
    ownMs: number;
    cpus: number;
}

export function readCpu(): CpuSample {
    let busyMs = 0;
    const all = cpus();
    for (const { times } of all) busyMs += times.user + times.nice + times.sys + times.irq;
    const own = process.cpuUsage();
    return { at: performance.now(), busyMs, ownMs: (own.user + own.system) / 1000, cpus: all.length };
}

/** The span the load is averaged over: long enough to smooth a scheduler tick, short enough to follow a build starting. */
const WINDOW_MS = 1000;
const INTERVAL_MS = 250;

export class CpuLoad {
    private readonly samples: CpuSample[] = [];
    private timer: NodeJS.Timeout | undefined;

    constructor(
        private readonly read: () => CpuSample = readCpu,
        private readonly cores = availableParallelism()
    ) {
        this.take();
    }

    /** Starts sampling (every 250 ms, not keeping the process alive). Until the first sample is 125 ms old, the
     *  machine counts as idle. */
    start(): void {
        if (this.timer) return;
        this.timer = setInterval(() => this.take(), INTERVAL_MS);
        this.timer.unref();
    }

    stop(): void {
        clearInterval(this.timer);
        this.timer = undefined;
    }

    take(): void {
        const s = this.read();
        this.samples.push(s);
        while (this.samples.length > 1 && s.at - this.samples[1].at >= WINDOW_MS) this.samples.shift();
    }

    /** The share of the machine's cores that other processes kept busy over about the last second (0 to 1). */
    othersShare(): number {
        const now = this.read();
        const base = this.samples[0];
        if (!base || now.cpus === 0 || now.at - base.at < INTERVAL_MS / 2) return 0;
        const wallMs = now.at - base.at;
        const others = (now.busyMs - base.busyMs - (now.ownMs - base.ownMs)) / wallMs;
        return Math.min(1, Math.max(0, others / now.cpus));
    }

    /**
     * Threads for a request of at most `max`: the cores other processes leave free, at least one. A core counts
     * as taken from 0.7 of it busy, so that the editor's own bursts of work while typing do not cost a thread.
     */
    threadsFor(max: number): number {
        this.start();
        const taken = Math.floor(this.cores * this.othersShare() + 0.3);
        return Math.max(1, Math.min(max, this.cores - taken));
    }
}

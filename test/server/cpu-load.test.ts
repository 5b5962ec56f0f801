// The busy-machine thread count: arithmetic on given CPU samples, then the real sampler against a real spinning process.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { test } from "node:test";
import { CpuLoad, type CpuSample } from "../../server/src/runtime/cpuLoad";

/** A CpuLoad over samples made up one second apart: cores kept busy by others and by this process. */
function loadOf(cores: number, busy: { others: number; own: number }, wallMs = 1000): CpuLoad {
    let reads = 0;
    const read = (): CpuSample => {
        const t = reads++ === 0 ? 0 : wallMs;
        return { at: t, busyMs: (busy.others + busy.own) * t, ownMs: busy.own * t, cpus: cores };
    };
    return new CpuLoad(read, cores);
}

test("threads: the cores other processes leave free, at most the maximum, at least one", () => {
    assert.equal(loadOf(8, { others: 0, own: 0 }).threadsFor(8), 8, "idle");
    assert.equal(loadOf(8, { others: 0, own: 0 }).threadsFor(4), 4, "never more than the maximum");
    assert.equal(loadOf(8, { others: 3, own: 0 }).threadsFor(8), 5, "three cores taken");
    assert.equal(loadOf(8, { others: 0, own: 6 }).threadsFor(8), 8, "this process's own work is not a reason to give up threads");
    assert.equal(loadOf(8, { others: 8, own: 0 }).threadsFor(8), 1, "a fully busy machine still gets one thread");
    assert.equal(loadOf(2, { others: 0.6, own: 1 }).threadsFor(2), 2, "under 0.7 of a core busy (the editor's bursts) costs no thread");
    assert.equal(loadOf(2, { others: 0.8, own: 1 }).threadsFor(2), 1);
});

test("threads: no measurement yet (a sample too young, no cores reported) counts as idle", () => {
    assert.equal(loadOf(4, { others: 4, own: 0 }, 10).threadsFor(4), 4, "10 ms is too short to tell");
    const noCores = new CpuLoad(() => ({ at: performance.now(), busyMs: 0, ownMs: 0, cpus: 0 }), 4);
    assert.equal(noCores.threadsFor(4), 4);
});

test("the real sampler sees a spinning process and gives up a thread for it", async (t) => {
    const cores = availableParallelism();
    const spinners = Array.from({ length: cores }, () => spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }));
    t.after(() => {
        for (const s of spinners) s.kill();
    });
    const load = new CpuLoad();
    load.start();
    try {
        await new Promise((r) => setTimeout(r, 1500));
        // Every core has a spinner besides whatever else runs: at most one free core's worth is left.
        assert.ok(load.othersShare() > 0.5, `others' share ${load.othersShare()}`);
        assert.ok(load.threadsFor(cores) < cores, `${load.threadsFor(cores)} threads of ${cores} cores`);
    } finally {
        load.stop();
    }
});

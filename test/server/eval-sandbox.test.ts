// Hostile "completions" of a real HumanEval problem, run the way `dream-coder eval` runs every completion:
// each must fail its problem, end within the limits, and leave nothing behind outside its directory.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadProblems, programFor } from "../../server/src/eval/problems";
import { DEFAULT_LIMITS, runPython, sandboxIsolation, type SandboxLimits } from "../../server/src/eval/sandbox";
import { repoRoot } from "../tools/test-models";

const problem = loadProblems("humaneval")[0];
// Short limits keep the test quick; the shape of each limit is what is checked.
const limits: SandboxLimits = { ...DEFAULT_LIMITS, cpuSeconds: 2, wallMs: 4000 };
const full = sandboxIsolation().full;
const needsRoot = full ? false : "needs root (network and file isolation use namespaces and a user id of its own)";

/** The hostile body takes the place of the function body, as a model's completion would. */
const hostile = (body: string, within = limits) =>
    runPython(
        programFor(
            problem,
            `${body
                .split("\n")
                .map((l) => (l ? `    ${l}` : l))
                .join("\n")}\n`
        ),
        within
    );

test("the canonical solution passes in the sandbox (the harness runs tests at all)", async () => {
    const r = await runPython(programFor(problem, problem.truth), limits);
    assert.equal(r.outcome, "passed", r.output);
});

test("an endless loop is stopped by the CPU limit", async () => {
    // A wall limit far above the CPU limit: on a busy machine one CPU second can take several wall seconds.
    const r = await hostile("while True:\n    pass", { ...limits, cpuSeconds: 1, wallMs: 30_000 });
    assert.equal(r.outcome, "failed", "the CPU limit, not the wall limit, ended it");
});

test("a program that sleeps forever is killed at the wall-time limit", async () => {
    const r = await hostile("import time\ntime.sleep(1000)");
    assert.equal(r.outcome, "timeout");
    assert.ok(r.ms >= limits.wallMs && r.ms < limits.wallMs + 3000, `${r.ms} ms`);
});

test("allocating without end fails at the address-space limit", async () => {
    const r = await hostile("x = []\nwhile True:\n    x.append(bytearray(10 ** 7))");
    assert.equal(r.outcome, "failed");
    assert.match(r.output, /MemoryError/);
});

test("forked children, even ones that leave the process group, do not outlive the program nor starve another run", async () => {
    // Each child becomes `sleep 987.654321` in a session of its own; the parent forks until the process limit
    // stops it and holds the processes a while, during which another run must still be able to fork.
    const bomb = hostile(
        [
            "import os, time",
            "for i in range(500):",
            "    try:",
            "        if os.fork() == 0:",
            "            os.setsid()",
            "            os.execv('/bin/sleep', ['sleep', '987.654321'])",
            "    except OSError:",
            "        break",
            "time.sleep(3)",
            "return None"
        ].join("\n"),
        { ...limits, wallMs: 10_000 }
    );
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const neighbour = await runPython("import os\nif os.fork() == 0:\n    os._exit(0)\nos.wait()\n", limits);
    assert.equal(neighbour.outcome, "passed", `a run that forks, next to the fork bomb: ${neighbour.output}`);
    assert.equal((await bomb).outcome, "failed");
    await new Promise((resolve) => setTimeout(resolve, 300));
    const left = spawnSync("pgrep", ["-f", "sleep 987.654321"], { encoding: "utf8" });
    assert.equal(left.stdout.trim(), "", "no child is left running");
});

test("printing megabytes stops at the output cap", async () => {
    const r = await hostile("while True:\n    print('x' * 65536)");
    assert.equal(r.outcome, "output-limit");
    assert.ok(r.output.length <= limits.outputBytes);
});

test("a large file in its own directory stops at the file-size limit", async () => {
    const r = await hostile("open('big', 'wb').write(b'x' * (8 << 20))\nreturn True");
    assert.equal(r.outcome, "failed");
});

test("environment variables of the harness are not visible", async () => {
    process.env.DREAM_CODER_EVAL_SECRET = "s3cret-value";
    try {
        const r = await hostile("import os\nprint(dict(os.environ))\nreturn os.environ['DREAM_CODER_EVAL_SECRET']");
        assert.equal(r.outcome, "failed");
        assert.doesNotMatch(r.output, /s3cret-value/);
        assert.match(r.output, /KeyError/);
    } finally {
        delete process.env.DREAM_CODER_EVAL_SECRET;
    }
});

test("files outside its directory are not written: /tmp is private, the checkout is read-only to it", { skip: needsRoot }, async () => {
    const victimDir = mkdtempSync(join(tmpdir(), "dream-coder-eval-victim-"));
    const inTmp = join(victimDir, "written");
    const inCheckout = join(repoRoot, ".cache", `eval-victim-${process.pid}`);
    const r = await hostile(
        [
            `for path in [${JSON.stringify(inTmp)}, ${JSON.stringify(inCheckout)}, '/tmp/eval-victim-${process.pid}']:`,
            "    try:",
            "        open(path, 'w').write('owned')",
            "        print('wrote', path)",
            "    except OSError as e:",
            "        print('refused', path, e)"
        ].join("\n")
    );
    assert.equal(r.outcome, "failed");
    assert.match(r.output, /refused .*eval-victim/);
    for (const path of [inTmp, inCheckout, join("/tmp", `eval-victim-${process.pid}`)]) assert.equal(existsSync(path), false, `${path} was not written`);
});

test("a socket reaches nothing, not even this machine's loopback", { skip: needsRoot }, async () => {
    let connections = 0;
    const server = createServer((s) => {
        connections++;
        s.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
        const r = await hostile(`import socket\nsocket.create_connection(('127.0.0.1', ${port}), timeout=2).sendall(b'hello')\nreturn True`);
        assert.equal(r.outcome, "failed");
        assert.match(r.output, /OSError|unreachable|refused/i);
        assert.equal(connections, 0);
    } finally {
        server.close();
    }
});

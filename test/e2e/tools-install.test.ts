// The E2E tool installer on a cold cache, as on a fresh machine: every later run finds the tools in
// ~/.cache/dream-coder-e2e, so only this test keeps the first install honest. It runs under `npm test`, whose
// npm (on the system Node) exports npm_config_user_agent with its own Node version; the variable is set here
// too, so that the test means the same when run with plain `node --test`.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../tools/test-models";

test("scripts/e2e-tools.sh installs Node 24 and code-server into an empty cache under npm test", { timeout: 1_200_000 }, () => {
    const cache = mkdtempSync(join(tmpdir(), "dream-coder-e2e-cold-"));
    try {
        const r = spawnSync("bash", [join(repoRoot, "scripts", "e2e-tools.sh")], {
            encoding: "utf8",
            env: {
                ...process.env,
                DREAM_CODER_E2E_CACHE: cache,
                npm_config_user_agent: `npm/10.8.2 node/${process.version} linux x64 workspaces/false`
            },
            maxBuffer: 64 * 1024 * 1024
        });
        assert.equal(r.status, 0, `e2e-tools.sh failed (${r.status ?? r.signal}):\n${(r.stdout + r.stderr).slice(-4000)}`);
        const env = JSON.parse(readFileSync(join(cache, "env.json"), "utf8")) as { node: string; codeServer: string; codeServerVersion: string };
        assert.match(execFileSync(env.node, ["--version"], { encoding: "utf8" }), /^v24\./);
        // Its first start writes a config file under $HOME: keep that inside the throwaway cache.
        const version = execFileSync(env.node, [env.codeServer, "--version"], {
            encoding: "utf8",
            timeout: 60_000,
            env: { ...process.env, HOME: cache, XDG_CONFIG_HOME: join(cache, "config"), XDG_DATA_HOME: join(cache, "data") }
        });
        assert.match(version, new RegExp(`^${env.codeServerVersion.replaceAll(".", "\\.")} [0-9a-f]{40} with Code `, "m"), `code-server --version: ${version}`);
    } finally {
        rmSync(cache, { recursive: true, force: true });
    }
});

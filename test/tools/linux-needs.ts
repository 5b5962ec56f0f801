// What a packaged Linux build needs of the system it runs on, read from its ELF headers: the checks the x86-64 and
// arm64 packaged builds share (test/native/portable.test.ts, arm64.test.ts).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import cpuBuilds from "../../native/cpu-builds.json";

/** a.b.c <= x.y.z, numerically. */
function atMost(a: string, b: string): boolean {
    const [x, y] = [a, b].map((v) => v.split(".").map(Number));
    for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) < (y[i] ?? 0);
    return true;
}

/**
 * Checks that `addon` needs of the system only its C and C++ runtimes (`dynamicLinker` is the architecture's, e.g.
 * ld-linux-x86-64.so.2) besides the libgomp.so.1 it carries and looks for beside itself first, and that it, that
 * libgomp and `others` (a CPU probe) need glibc and libstdc++ symbol versions no newer than native/cpu-builds.json
 * states. `objdump`: one that reads the architecture's files.
 */
export function assertNeedsOnlyStatedLibraries(addon: string, dynamicLinker: string, objdump: string, others: string[] = []): void {
    const system = ["libc.so.6", "libm.so.6", dynamicLinker, "libstdc++.so.6", "libgcc_s.so.1"];
    const dynamic = execFileSync("readelf", ["-d", addon], { encoding: "utf8" });
    const needed = [...dynamic.matchAll(/\(NEEDED\).*\[(.+)\]/g)].map((m) => m[1]);
    assert.deepEqual(
        needed.filter((n) => !system.includes(n)),
        ["libgomp.so.1"],
        `${addon}: needs ${needed.join(", ")}`
    );
    assert.match(dynamic, /\(RUNPATH\).*\[\$ORIGIN\]/, `${addon} looks for libgomp beside itself first`);
    for (const file of [addon, join(dirname(addon), "libgomp.so.1"), ...others]) {
        const symbols = execFileSync(objdump, ["-T", file], { encoding: "utf8", maxBuffer: 1 << 26 });
        for (const [lib, limit] of [
            ["GLIBC", cpuBuilds.glibc],
            ["GLIBCXX", cpuBuilds.glibcxx]
        ]) {
            const versions = [...symbols.matchAll(new RegExp(`\\(${lib}_([\\d.]+)\\)`, "g"))].map((m) => m[1]);
            const newest = versions.reduce((a, b) => (atMost(a, b) ? b : a), "0");
            assert.ok(atMost(newest, limit), `${file} needs ${lib}_${newest}, newer than the ${limit} native/cpu-builds.json states`);
        }
    }
}

// The .vsix carries packaged CPU builds of the runtime (native/cpu-builds.json, scripts/build-native.mjs --cpu NAME):
// portable (x86-64 with AVX2, FMA and F16C) and avx512 (AVX-512 with VBMI and VNNI, whose quantized kernels are
// faster), because it runs on CPUs other than the one that packed it, and the runtime loads the best one the CPU
// runs. A -march=native build made on this AVX-512 machine, or the avx512 build, dies with SIGILL on an AVX2-only
// CPU (most laptops). qemu-user emulates such a CPU (Haswell) for Node and the addon, so these claims are checked
// here rather than on a user's machine.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { arch, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { before, describe, it } from "node:test";
import cpuBuilds from "../../native/cpu-builds.json";
import {
    ADDON_FILE,
    CPU_PROBE_FILE,
    glibcProblem,
    missingCpuFlags,
    PACKAGED_BUILDS,
    packagedAddonFile,
    packagedBuildsFor
} from "../../server/src/runtime/native";
import { assertNeedsOnlyStatedLibraries } from "../tools/linux-needs";
import { bundlePackagedFill, type PackagedFill } from "../tools/packaged";
import { repoRoot } from "../tools/test-models";

const inRepo = (file: string) => join(repoRoot, file);
const PORTABLE = inRepo(packagedAddonFile("portable"));
const AVX512 = inRepo(packagedAddonFile("avx512"));
const NATIVE = inRepo(ADDON_FILE);
const CPU_PROBE = inRepo(CPU_PROBE_FILE);
// This CPU's instruction sets that the builds use, as Linux reports them.
const cpuinfoFlags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").trim().split(/\s+/));
const hostFeatures = Object.values(cpuBuilds.x64.cpuFlags)
    .flat()
    .filter((f) => cpuinfoFlags.has(f));

const MODEL = join(repoRoot, "models", "dream-mini-py-q8_0.gguf");
let repoFill = ""; // packaged-fill bundled outside any package: for runs that name their addon

/** Runs packaged-fill (`script`; by default one that finds no package, for a named addon) with `addon`
 *  ($DREAM_CODER_ADDON; undefined: the one the runtime picks), natively or on an emulated CPU: Haswell (AVX2, FMA,
 *  F16C; no AVX-512) or Nehalem (SSE4.2; no AVX). */
function fill(addon: string | undefined, cpu?: "Haswell" | "Nehalem", script = repoFill) {
    const node = [process.execPath, script, MODEL];
    const [cmd, ...args] = cpu ? ["qemu-x86_64", "-cpu", cpu, ...node] : node;
    const env = { ...process.env };
    if (addon) env.DREAM_CODER_ADDON = addon;
    else delete env.DREAM_CODER_ADDON;
    const r = spawnSync(cmd, args, { encoding: "utf8", env, timeout: 300_000 });
    const stderr = r.stderr
        .split("\n")
        .filter((l) => !l.includes("TCG doesn't support"))
        .join("\n");
    const result = r.status === 0 ? (JSON.parse(r.stdout) as PackagedFill) : undefined;
    const loaded = result?.mapped.find((f) => f.endsWith("dream_native.node"));
    return { ...r, stderr, result, loaded };
}

describe("the packaged CPU builds the .vsix carries", { skip: arch() !== "x64" && "its CPU builds are x86-64's" }, () => {
    before(() => {
        assert.equal(spawnSync("qemu-x86_64", ["--version"]).status, 0, "qemu-x86_64 is missing: install qemu-user (scripts/setup.sh does as root)");
        for (const build of ["portable", "avx512"])
            execFileSync(process.execPath, [join(repoRoot, "scripts", "build-native.mjs"), "--cpu", build], { stdio: "ignore", timeout: 1_200_000 });
        repoFill = bundlePackagedFill(mkdtempSync(join(tmpdir(), "dream-coder-fill-")));
    });

    it("the portable build fills a hole on an emulated AVX2-only CPU, with the tokens it gives on this one", () => {
        const here = fill(PORTABLE);
        assert.equal(here.status, 0, here.stderr);
        const haswell = fill(PORTABLE, "Haswell");
        assert.equal(haswell.status, 0, haswell.stderr);
        assert.deepEqual(haswell.result?.tokens, here.result?.tokens);
        assert.equal(here.result?.tokens.length, 8);
    });

    it("an installed package loads the best build the CPU runs: avx512 here, portable on an AVX2-only CPU, none on an older one", () => {
        // The package's layout: the bundled script in dist/ and the packaged builds, not this checkout's from source.
        const root = mkdtempSync(join(tmpdir(), "dream-coder-cpu-builds-"));
        const script = bundlePackagedFill(root);
        for (const build of PACKAGED_BUILDS) {
            mkdirSync(dirname(join(root, packagedAddonFile(build))), { recursive: true });
            symlinkSync(inRepo(packagedAddonFile(build)), join(root, packagedAddonFile(build)));
        }
        symlinkSync(CPU_PROBE, join(root, CPU_PROBE_FILE));
        const haswell = fill(undefined, "Haswell", script);
        assert.equal(haswell.status, 0, haswell.stderr);
        assert.equal(haswell.loaded, PORTABLE);
        assert.equal(haswell.result?.backend, "CPU (portable build)");
        const here = fill(undefined, undefined, script);
        assert.equal(here.status, 0, here.stderr);
        const best = packagedBuildsFor(hostFeatures)[0];
        assert.equal(here.loaded, inRepo(packagedAddonFile(best)));
        assert.equal(here.result?.backend, `CPU (${best} build)`);
        assert.ok(here.result?.mapped.includes(join(dirname(inRepo(packagedAddonFile(best))), "libgomp.so.1")), "the OpenMP runtime the package carries");
        assert.equal(here.result?.tokens.length, 8);
        // An addon the system's loader refuses (here: not ELF at all; on a user's machine, say, too old a
        // libstdc++) gets a sentence that names why. The link is replaced, not written through.
        unlinkSync(join(root, packagedAddonFile(best)));
        writeFileSync(join(root, packagedAddonFile(best)), "not a shared library");
        const broken = fill(undefined, undefined, script);
        assert.equal(broken.status, 1, broken.stdout);
        assert.match(
            broken.stderr,
            /the packaged runtime does not load on this system \(.*dream_native\.node: (invalid ELF header|file too short)\): build Dream-Coder from source on this machine/
        );
        // A CPU that runs neither gets a sentence, not SIGILL.
        const nehalem = fill(undefined, "Nehalem", script);
        assert.equal(nehalem.status, 1, nehalem.stdout);
        assert.match(nehalem.stderr, /this CPU lacks AVX, AVX2, FMA, F16C, BMI2, which the packaged runtime needs: build Dream-Coder from source/);
    });

    it("where the avx512 build and the build for this CPU would stop with SIGILL", {
        skip: packagedBuildsFor(hostFeatures)[0] !== "avx512" && "this CPU does not run the avx512 build"
    }, () => {
        for (const addon of [AVX512, NATIVE]) {
            const r = fill(addon, "Haswell");
            assert.equal(r.signal, "SIGILL", `${addon}: status ${r.status}, signal ${r.signal}`);
        }
    });

    it("the CPU probe reads what /proc/cpuinfo says of the instruction sets the builds use", () => {
        const probe = require(CPU_PROBE) as { features(): string[] };
        assert.deepEqual(probe.features().sort(), [...hostFeatures].sort());
    });

    it("the packaged builds need of Linux only glibc and libstdc++ of the versions the runtime states, and carry libgomp", () => {
        for (const build of PACKAGED_BUILDS)
            assertNeedsOnlyStatedLibraries(inRepo(packagedAddonFile(build)), "ld-linux-x86-64.so.2", "objdump", build === "portable" ? [CPU_PROBE] : []);
        // ... which the README tells users, and the runtime checks before it loads one.
        assert.ok(readFileSync(join(repoRoot, "README.md"), "utf8").includes(`glibc ${cpuBuilds.glibc}+`), "the README states the glibc the .vsix needs");
        for (const ok of ["2.34", "2.36", "2.40", "3.0"]) assert.equal(glibcProblem(ok), null, ok);
        assert.match(
            glibcProblem("2.31") ?? "",
            /^this Linux has glibc 2\.31, and the packaged runtime needs glibc 2\.34 or newer: build Dream-Coder from source/
        );
        assert.match(glibcProblem(undefined) ?? "", /^this Linux has no glibc \(musl, as on Alpine\?\)/);
    });

    it("the CPU's instruction sets choose the build", () => {
        // A Nehalem (2008): SSE4.2, no AVX.
        assert.deepEqual(missingCpuFlags("portable", []), ["avx", "avx2", "fma", "f16c", "bmi2"]);
        assert.deepEqual(packagedBuildsFor([]), []);
        const haswell = ["avx", "avx2", "fma", "f16c", "bmi2"];
        assert.deepEqual(packagedBuildsFor(haswell), ["portable"]);
        // Skylake-X has AVX-512 but not VBMI or VNNI: the avx512 build would stop there.
        const skylakeX = [...haswell, "avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"];
        assert.deepEqual(missingCpuFlags("avx512", skylakeX), ["avx512vbmi", "avx512_vnni"]);
        assert.deepEqual(packagedBuildsFor(skylakeX), ["portable"]);
        assert.deepEqual(packagedBuildsFor([...skylakeX, "avx512vbmi", "avx512_vnni"]), ["avx512", "portable"]);
        // Not x86-64: none of these sets, and the most portable build is ggml's generic one there.
        assert.deepEqual(packagedBuildsFor(null), ["portable"]);
    });
});

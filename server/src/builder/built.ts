// The runtime the builder made, where it lives and when it may be used. One built runtime at a time, in
// ~/.cache/dream-coder/runtime/<target>/ (dream_native.node and stamp.json): a build of another target replaces it.
// It is used only while its stamp matches the running package (its version and the source archive it carries)
// and this machine (a -march=native build from another CPU, as in a home folder shared between machines, could
// die on an unknown instruction): an extension update makes the user build again rather than load a runtime built
// from other sources.
import { existsSync, readFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import manifest from "../../../package.json";
import { cacheDirectory } from "../modelPaths";
import { RUNTIME_TARGETS, type RuntimeTarget } from "./prerequisites";
import { runtimeSource, sourceHash } from "./source";

/** Where built runtimes live: ~/.cache/dream-coder/runtime, next to the models' default folder. */
export function runtimeDirectory(): string {
    return join(cacheDirectory(), "runtime");
}

/** The addon's file in a target's folder. */
export const BUILT_ADDON = "dream_native.node";

export interface RuntimeStamp {
    packageVersion: string;
    /** The source archive's hash (source.ts sourceHash). */
    sourceHash: string;
    gpu: RuntimeTarget;
    /** The machine it was built for (machineId). */
    machine: string;
    /** When it was built, ISO 8601. */
    built: string;
    /** How long the build took, in seconds. */
    seconds: number;
}

/** This machine as a stamp names it: OS, architecture and CPU model (the build targets this CPU's instruction sets). */
export function machineId(): string {
    return `${process.platform}-${process.arch} ${cpus()[0]?.model.trim() ?? "unknown CPU"}`;
}

export interface BuiltRuntime {
    /** The addon file. */
    file: string;
    gpu: RuntimeTarget;
}

export interface BuiltRuntimeOptions {
    /** The runtime folder (default: runtimeDirectory()). */
    dir?: string;
    /** The source archive the running package carries (default: the package's). */
    source?: string;
    /** The running package's version (default: package.json's). */
    packageVersion?: string;
}

/** A target folder's stamp, or undefined where there is none (or it cannot be read). */
export function readStamp(folder: string): RuntimeStamp | undefined {
    try {
        return JSON.parse(readFileSync(join(folder, "stamp.json"), "utf8")) as RuntimeStamp;
    } catch {
        return undefined;
    }
}

/**
 * The built runtime to load instead of the packaged one: the addon whose stamp matches the running package's
 * version, the source archive it carries and this machine; undefined when there is none (never built, built by
 * another version, or the package carries no source archive).
 */
export function builtRuntime(options: BuiltRuntimeOptions = {}): BuiltRuntime | undefined {
    const dir = options.dir ?? runtimeDirectory();
    let hash: string;
    try {
        hash = sourceHash(options.source ?? runtimeSource());
    } catch {
        return undefined;
    }
    const version = options.packageVersion ?? manifest.version;
    for (const gpu of RUNTIME_TARGETS) {
        const folder = join(dir, gpu);
        const stamp = readStamp(folder);
        const file = join(folder, BUILT_ADDON);
        if (stamp && stamp.gpu === gpu && stamp.packageVersion === version && stamp.sourceHash === hash && stamp.machine === machineId() && existsSync(file)) {
            return { file, gpu };
        }
    }
    return undefined;
}

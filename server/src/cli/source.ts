// Reading the files the CLI is pointed at, with a sentence for each way that fails.
import { readFileSync } from "node:fs";

/** Why `path` could not be read, in words (Node's own message for a cause not named here). */
function unreadable(path: string, e: NodeJS.ErrnoException): Error {
    const why: Record<string, string> = {
        ENOENT: "no such file",
        EISDIR: "it is a folder; name a file in it",
        EACCES: "permission denied",
        EPERM: "permission denied"
    };
    return new Error(`cannot read ${path}: ${(e.code && why[e.code]) ?? e.message}`);
}

/** The file's text. Only UTF-8 is read, so that writing it back keeps every byte the jobs did not change. */
export function readSource(path: string): string {
    let bytes: Buffer;
    try {
        bytes = readFileSync(path);
    } catch (e) {
        throw unreadable(path, e as NodeJS.ErrnoException);
    }
    try {
        // ignoreBOM keeps a byte-order mark in the text, so that it is written back too.
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
        throw new Error(`${path} is not UTF-8 text; dream-coder reads and writes UTF-8 only, so it leaves the file alone`);
    }
}

import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * A file shipped in the package, by its path from the package root: looked for in each folder up from this
 * module's (out/server/src in a checkout, dist/ in the .vsix), nearest first; where one folder has several of
 * `relatives`, the first listed. Null where no folder has any.
 */
export function packagedFile(...relatives: string[]): string | null {
    for (let dir = __dirname; ; dir = dirname(dir)) {
        const found = relatives.map((r) => join(dir, r)).find((p) => existsSync(p));
        if (found) return found;
        if (dirname(dir) === dir) return null;
    }
}

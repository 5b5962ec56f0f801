import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

/**
 * A file shipped in the package, by its path from the package root: looked for in each folder up from `from`
 * (by default this module's: out/server/src in a checkout, dist/ in the .vsix); null where no folder has it.
 */
export function packagedFile(relative: string, from: string = __dirname): string | null {
    for (let dir = from; ; dir = dirname(dir)) {
        if (existsSync(join(dir, relative))) return join(dir, relative);
        if (dirname(dir) === dir) return null;
    }
}

// Parsers of option values that dream-coder and the runtime benchmark (bench/runtime-bench.ts) share: commander
// calls them with the text and shows an InvalidArgumentError after the option's name.
import { InvalidArgumentError } from "commander";

/** A whole number of at least `min`. */
export const integer = (min: number) => (v: string) => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected a whole number of at least ${min}`);
    return n;
};

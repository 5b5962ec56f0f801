// A small, deterministic byte-level BPE vocabulary (GPT-2 byte encoding, as Qwen2's tokenizer uses),
// trained on a fixed snippet of code and padded with extra merges up to the requested size.

/** GPT-2's reversible byte -> printable character map. */
export function byteToUnicode(): string[] {
    const bs: number[] = [];
    for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
    for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
    for (let b = 0xae; b <= 0xff; b++) bs.push(b);
    const map: string[] = new Array(256);
    for (const b of bs) map[b] = String.fromCodePoint(b);
    let n = 0;
    for (let b = 0; b < 256; b++) {
        if (map[b] === undefined) map[b] = String.fromCodePoint(256 + n++);
    }
    return map;
}

const CORPUS = `
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number."""
    if n < 2:
        return n
    return fibonacci(n - 1) + fibonacci(n - 2)

def has_close_elements(numbers: list, threshold: float) -> bool:
    for idx, elem in enumerate(numbers):
        for idx2, elem2 in enumerate(numbers):
            if idx != idx2 and abs(elem - elem2) < threshold:
                return True
    return False

class Stack:
    def __init__(self):
        self.items = []

    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()

export function parseConfig(text: string): Record<string, string> {
    const result: Record<string, string> = {};
    for (const line of text.split("\\n")) {
        const [key, value] = line.split("=");
        if (key && value !== undefined) result[key.trim()] = value.trim();
    }
    return result;
}

async function fetchAll(urls) {
    const responses = await Promise.all(urls.map((url) => fetch(url)));
    return responses.filter((r) => r.ok).length;
}

int main(int argc, char ** argv) {
    for (int i = 0; i < argc; i++) {
        printf("%s\\n", argv[i]);
    }
    return 0;
}
`;

const PRETOKENIZE = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
const EXTRA_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_()[]{}:;.,=+-*/<>\"' \n";

export interface BpeVocab {
    tokens: string[];
    merges: string[];
}

/** `size` normal tokens: 256 bytes, trained merges, then filler merges (token + char) in a fixed order. */
export function buildBpeVocab(size: number): BpeVocab {
    const b2u = byteToUnicode();
    const encode = (s: string) => [...Buffer.from(s, "utf8")].map((b) => b2u[b]);
    const tokens = [...b2u];
    const known = new Set(tokens);
    const merges: string[] = [];
    const addMerge = (a: string, b: string) => {
        merges.push(`${a} ${b}`);
        tokens.push(a + b);
        known.add(a + b);
    };

    // Train on word counts.
    const counts = new Map<string, number>();
    for (const w of CORPUS.match(PRETOKENIZE) ?? []) counts.set(w, (counts.get(w) ?? 0) + 1);
    let words = [...counts.entries()].map(([w, c]) => ({ syms: encode(w), count: c }));
    while (tokens.length < size) {
        const pairs = new Map<string, number>();
        for (const { syms, count } of words) {
            for (let i = 0; i + 1 < syms.length; i++) {
                const key = `${syms[i]} ${syms[i + 1]}`;
                pairs.set(key, (pairs.get(key) ?? 0) + count);
            }
        }
        let best: string | undefined;
        let bestCount = 1;
        for (const [key, c] of pairs) {
            if (c > bestCount || (c === bestCount && best !== undefined && key < best)) {
                best = key;
                bestCount = c;
            }
        }
        if (best === undefined) break;
        const [a, b] = best.split(" ");
        if (known.has(a + b)) {
            merges.push(best); // same string reachable another way: a rank, not a new token
        } else {
            addMerge(a, b);
        }
        words = words.map(({ syms, count }) => {
            const out: string[] = [];
            for (let i = 0; i < syms.length; i++) {
                if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
                    out.push(a + b);
                    i++;
                } else {
                    out.push(syms[i]);
                }
            }
            return { syms: out, count };
        });
    }

    // Fill up: every token so far, extended by one common character.
    const extra = [...new Set(EXTRA_CHARS.split("").map((c) => encode(c)[0]))];
    for (let i = 0; tokens.length < size; i++) {
        const a = tokens[i];
        for (const c of extra) {
            if (tokens.length >= size) break;
            if (!known.has(a + c)) addMerge(a, c);
        }
    }
    return { tokens: tokens.slice(0, size), merges };
}

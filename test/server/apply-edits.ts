// Applies LSP text edits to a text as an editor would: the tests' independent check of the server's edits.
export interface LspEdit {
    range: { start: { line: number; character: number }; end: { line: number; character: number } };
    newText: string;
}

export function applyTextEdits(text: string, edits: LspEdit[]): string {
    const lineStarts = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === "\n") lineStarts.push(i + 1);
    const offset = (p: { line: number; character: number }) => lineStarts[p.line] + p.character;
    const sorted = [...edits].sort((a, b) => offset(a.range.start) - offset(b.range.start));
    let out = "";
    let at = 0;
    for (const e of sorted) {
        const s = offset(e.range.start);
        if (s < at) throw new Error("overlapping edits");
        out += text.slice(at, s) + e.newText;
        at = offset(e.range.end);
    }
    return out + text.slice(at);
}

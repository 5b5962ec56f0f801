// dream-coder bench: inline-completion latency as a user feels it. A real server process gets a scripted
// typing session on a real source file: bursts of keystrokes at typing speed, each keystroke a didChange and
// an inline-completion request (as VS Code sends them), then a pause. The latency is from the burst's last
// request to its first item; earlier requests of a burst are cancelled by the server, as in the editor.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { DidChangeTextDocumentNotification, InlineCompletionRequest } from "vscode-languageserver-protocol/node";
import type { Settings } from "../settings";
import { startLanguageServer } from "./lspClient";

const TYPING_INTERVAL_MS = 60;
const BURST_KEYS = 6;

export async function runLatencyBench(settings: Settings, flags: { file?: string; bursts: number; json: string }): Promise<void> {
    const file = flags.file ?? join(__dirname, "..", "..", "..", "..", "server", "src", "holes.ts");
    const source = readFileSync(file, "utf8");
    const server = await startLanguageServer({ ...settings });
    try {
        // Typing points: the start of every non-blank line's code, spread over the file.
        const lines = source.split("\n");
        const candidates = lines.map((l, i) => ({ l, i })).filter((x) => x.l.trim().length > BURST_KEYS + 2);
        const picks = Array.from({ length: flags.bursts }, (_, k) => candidates[Math.floor((k * candidates.length) / flags.bursts)]);
        const uri = "file:///bench/" + file.split("/").pop();
        const latencies: number[] = [];
        const cold: number[] = [];
        let version = 1;
        // The document as it would be with the typed line removed up to its indentation: we retype it.
        let text = source;
        await server.open(uri, text, "typescript");
        for (const [k, pick] of picks.entries()) {
            const indent = pick.l.length - pick.l.trimStart().length;
            const lineStart = lines.slice(0, pick.i).reduce((a, l) => a + l.length + 1, 0);
            const typed = pick.l.slice(indent, indent + BURST_KEYS);
            text = source.slice(0, lineStart + indent) + source.slice(lineStart + pick.l.length);
            await server.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version: ++version }, contentChanges: [{ text }] });
            let last: Promise<unknown> = Promise.resolve();
            let sentAt = 0;
            for (let c = 0; c < typed.length; c++) {
                const character = indent + c;
                text = text.slice(0, lineStart + character) + typed[c] + text.slice(lineStart + character);
                await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                    textDocument: { uri, version: ++version },
                    contentChanges: [{ range: { start: { line: pick.i, character }, end: { line: pick.i, character } }, text: typed[c] }]
                });
                sentAt = performance.now();
                last = server.connection.sendRequest(InlineCompletionRequest.type, {
                    textDocument: { uri },
                    position: { line: pick.i, character: character + 1 },
                    context: { triggerKind: 2 }
                }).catch(() => null);
                if (c < typed.length - 1) await sleep(TYPING_INTERVAL_MS);
            }
            await last;
            const ms = performance.now() - sentAt;
            (k === 0 ? cold : latencies).push(ms);
            process.stderr.write(`\rburst ${k + 1}/${picks.length}: ${ms.toFixed(0)} ms   `);
        }
        process.stderr.write("\n");
        const sorted = [...latencies].sort((a, b) => a - b);
        const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
        const report = {
            file,
            model: settings.model,
            threads: settings.threads,
            bursts: latencies.length,
            keysPerBurst: BURST_KEYS,
            typingIntervalMs: TYPING_INTERVAL_MS,
            debounceMs: settings.inlineCompletion.debounceMs,
            lineTokens: settings.inlineCompletion.lineTokens,
            contextTokens: settings.contextTokens,
            firstRequestMs: cold[0],
            p50Ms: pct(0.5),
            p95Ms: pct(0.95),
            meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)
        };
        process.stdout.write(
            "| bursts | p50 ms | p95 ms | mean ms | first (model load) ms |\n|---|---|---|---|---|\n" +
            `| ${report.bursts} | ${report.p50Ms.toFixed(0)} | ${report.p95Ms.toFixed(0)} | ${report.meanMs.toFixed(0)} | ${report.firstRequestMs.toFixed(0)} |\n`
        );
        mkdirSync(dirname(flags.json), { recursive: true });
        writeFileSync(flags.json, JSON.stringify(report, null, 2) + "\n");
        process.stderr.write(`wrote ${flags.json}\n`);
    } finally {
        await server.stop();
    }
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

// dream-coder bench: inline-completion latency as a user feels it. A real server process gets a scripted
// typing session on a real source file: bursts of keystrokes at typing speed, each keystroke a didChange and
// an inline-completion request (as VS Code sends them), then a pause. The latency is from the burst's last
// request to its answer; earlier requests of a burst are cancelled by the server, as in the editor. Then the
// user types the answer's first character, as when accepting ghost text by typing it out, and that request is
// timed too. Each decoding configuration asked for gets its own server and the same session, one after the other in
// the same run.
import { mkdirSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { DidChangeTextDocumentNotification, InlineCompletionRequest } from "vscode-languageserver-protocol/node";
import { percentile } from "../eval/harness";
import { readSource } from "./source";
import { packagedFile } from "../packageFiles";
import type { Settings } from "../../../common/settings";
import { type DecodingConfig, parseDecodingConfigs } from "./decodingConfig";
import { firstInsertText, startLanguageServer } from "./lspClient";

const TYPING_INTERVAL_MS = 60;
const BURST_KEYS = 6;

/** The language server decodes with its settings: a decoder parameter that no setting has cannot reach it. */
const NOT_A_SETTING = (term: string) => `${term} is not a setting, and the language server decodes with its settings`;

/** --compare: the shared grammar, less the terms that are not settings. */
export function parseBenchConfigs(list: string): DecodingConfig[] {
    return parseDecodingConfigs(list, { "entropy-bound": NOT_A_SETTING("entropy-bound"), "eot-penalty": NOT_A_SETTING("eot-penalty") });
}

interface SessionResult {
    /** The configuration's name. */
    config: string;
    bursts: number;
    /** The first burst also loads the model: reported apart. */
    firstRequestMs: number;
    p50Ms: number;
    p95Ms: number;
    meanMs: number;
    /** Requests after typing a suggestion's first character: how many, and their median latency. */
    typedOut: number;
    typedOutP50Ms: number;
}

/** The file the typing session types when none is named: one of this package's sources. */
const BENCH_FILE = "server/src/holes.ts";

export async function runLatencyBench(settings: Settings, flags: { file?: string; bursts: number; json: string; configs: DecodingConfig[] }): Promise<void> {
    const file = flags.file ?? packagedFile(BENCH_FILE);
    if (!file) throw new Error(`this installation has no ${BENCH_FILE} to type: name a source file with --file`);
    const source = readSource(file);
    const sessions: SessionResult[] = [];
    for (const c of flags.configs) sessions.push(await typingSession({ ...settings, ...c.settings }, c.name, file, source, flags.bursts));
    const base = sessions[0];
    const rows = sessions.map(
        (s) =>
            `| ${s.config} | ${s.bursts} | ${s.p50Ms.toFixed(0)} | ${s.p95Ms.toFixed(0)} | ${s.meanMs.toFixed(0)} | ${s.firstRequestMs.toFixed(0)} | ${(base.p50Ms / s.p50Ms).toFixed(1)}× | ${s.typedOut} | ${s.typedOutP50Ms.toFixed(1)} |`
    );
    process.stdout.write(
        `typing session on ${file}: ${BURST_KEYS} keys per burst, ${TYPING_INTERVAL_MS} ms apart; line hole ${settings.inlineCompletion.lineTokens} tokens, ` +
            `context ${settings.contextTokens} tokens, debounce ${settings.inlineCompletion.debounceMs} ms, threads ${settings.threads || "auto"}\n\n` +
            `| configuration | bursts | p50 ms | p95 ms | mean ms | first (model load) ms | p50 speed-up vs ${base.config} | typed out | typed-out p50 ms |` +
            "\n|---|--:|--:|--:|--:|--:|--:|--:|--:|\n" +
            rows.join("\n") +
            "\n"
    );
    mkdirSync(dirname(flags.json), { recursive: true });
    writeFileSync(
        flags.json,
        `${JSON.stringify(
            {
                file,
                model: settings.model,
                threads: settings.threads,
                keysPerBurst: BURST_KEYS,
                typingIntervalMs: TYPING_INTERVAL_MS,
                debounceMs: settings.inlineCompletion.debounceMs,
                lineTokens: settings.inlineCompletion.lineTokens,
                contextTokens: settings.contextTokens,
                blockLength: settings.blockLength,
                sessions
            },
            null,
            2
        )}\n`
    );
    process.stderr.write(`wrote ${flags.json}\n`);
}

async function typingSession(settings: Settings, config: string, file: string, source: string, bursts: number): Promise<SessionResult> {
    const server = await startLanguageServer({ ...settings });
    try {
        // Typing points: the start of lines with code, spread over the file.
        const lines = source.split("\n");
        const candidates = lines.map((l, i) => ({ l, i })).filter((x) => x.l.trim().length > BURST_KEYS + 2);
        const picks = Array.from({ length: bursts }, (_, k) => candidates[Math.floor((k * candidates.length) / bursts)]);
        const uri = `file:///bench/${basename(file)}`;
        const latencies: number[] = [];
        const typedOut: number[] = [];
        let firstRequestMs = 0;
        let version = 1;
        await server.open(uri, source, "typescript");
        for (const [k, pick] of picks.entries()) {
            // The line is cleared back to its indentation and retyped.
            const indent = pick.l.length - pick.l.trimStart().length;
            const lineStart = lines.slice(0, pick.i).reduce((a, l) => a + l.length + 1, 0);
            const typed = pick.l.slice(indent, indent + BURST_KEYS);
            let text = source.slice(0, lineStart + indent) + source.slice(lineStart + pick.l.length);
            await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                textDocument: { uri, version: ++version },
                contentChanges: [{ text }]
            });
            let last: Promise<string | undefined> = Promise.resolve(undefined);
            let sentAt = 0;
            for (let c = 0; c < typed.length; c++) {
                const character = indent + c;
                text = text.slice(0, lineStart + character) + typed[c] + text.slice(lineStart + character);
                await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                    textDocument: { uri, version: ++version },
                    contentChanges: [{ range: { start: { line: pick.i, character }, end: { line: pick.i, character } }, text: typed[c] }]
                });
                sentAt = performance.now();
                last = server.connection
                    .sendRequest(InlineCompletionRequest.type, {
                        textDocument: { uri },
                        position: { line: pick.i, character: character + 1 },
                        context: { triggerKind: 2 }
                    })
                    .then(firstInsertText, () => undefined);
                if (c < typed.length - 1) await sleep(TYPING_INTERVAL_MS);
            }
            const answer = await last;
            const ms = performance.now() - sentAt;
            if (k === 0) firstRequestMs = ms;
            else latencies.push(ms);
            if (answer && answer.length > 1) {
                const character = indent + typed.length;
                await server.connection.sendNotification(DidChangeTextDocumentNotification.type, {
                    textDocument: { uri, version: ++version },
                    contentChanges: [{ range: { start: { line: pick.i, character }, end: { line: pick.i, character } }, text: answer[0] }]
                });
                const t0 = performance.now();
                await server.connection.sendRequest(InlineCompletionRequest.type, {
                    textDocument: { uri },
                    position: { line: pick.i, character: character + 1 },
                    context: { triggerKind: 2 }
                });
                typedOut.push(performance.now() - t0);
            }
            process.stderr.write(`\r${config}: burst ${k + 1}/${picks.length}: ${ms.toFixed(0)} ms   `);
        }
        process.stderr.write("\n");
        return {
            config,
            bursts: latencies.length,
            firstRequestMs,
            p50Ms: percentile(latencies, 50),
            p95Ms: percentile(latencies, 95),
            meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
            typedOut: typedOut.length,
            typedOutP50Ms: percentile(typedOut, 50)
        };
    } finally {
        await server.stop();
    }
}

function sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
}

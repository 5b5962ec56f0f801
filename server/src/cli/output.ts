// What the CLI shows: a progress bar for loading and denoising (on a terminal only), the generation-order
// view (each generated token coloured by the step that revealed it), and diffs.
import { SingleBar } from "cli-progress";
import { createTwoFilesPatch } from "diff";
import type { DenoiseTrace, PullProgress, ServerStatus } from "../../../common/protocol";

/** A bar on stderr that follows the model's loading and then the job's steps; silent when stderr is no terminal. */
export class JobProgress {
    private bar: SingleBar | undefined;
    private phase = "";

    constructor(private readonly enabled = process.stderr.isTTY === true) {}

    status(s: ServerStatus): void {
        if (s.state === "loading") this.show("loading", 100, Math.round(100 * (s.progress ?? 0)));
    }

    step(step: number, steps: number): void {
        this.show("denoising", steps, step);
    }

    stop(): void {
        this.bar?.stop();
        this.bar = undefined;
    }

    private show(phase: string, total: number, value: number): void {
        if (!this.enabled) return;
        if (this.phase !== phase) {
            this.stop();
            this.phase = phase;
            this.bar = new SingleBar({
                format: `${phase.padEnd(9)} [{bar}] {value}/{total} {duration_formatted}`,
                stream: process.stderr,
                hideCursor: true,
                clearOnComplete: false
            });
            this.bar.start(total, value);
        }
        this.bar!.setTotal(total);
        this.bar!.update(value);
    }
}

/** A model pipeline's stages (download, convert, quantize), one bar each, on stderr; one line a stage where
 * stderr is no terminal, so that a log shows what ran. */
export class PullProgressBar {
    private bar: SingleBar | undefined;
    private stage = -1;

    constructor(private readonly tty = process.stderr.isTTY === true) {}

    update(p: PullProgress): void {
        if (p.stage !== this.stage) {
            this.stop();
            this.stage = p.stage;
            const label = p.stage ? `${p.stage}/${p.stages} ${p.title}` : p.title;
            if (!this.tty) {
                process.stderr.write(`${label}${p.stage ? "" : `: ${p.detail}`}\n`);
                return;
            }
            this.bar = new SingleBar({ format: `${label} [{bar}] {percentage}% {detail} {eta_formatted}`, stream: process.stderr, hideCursor: true });
            this.bar.start(1000, 0, { detail: "" });
        }
        this.bar?.update(Math.round(1000 * p.fraction), { detail: p.detail });
    }

    stop(): void {
        this.bar?.stop();
        this.bar = undefined;
    }
}

/** Step s of n as a colour from blue (first) through green to red (last). */
function stepColour(step: number, steps: number): string {
    const t = steps <= 1 ? 0 : Math.min(1, step / (steps - 1));
    const hue = 240 * (1 - t);
    const f = (n: number) => {
        const k = (n + hue / 60) % 6;
        return Math.round(255 * (0.85 - 0.6 * Math.max(0, Math.min(k, 4 - k, 1))));
    };
    return `#${[f(5), f(3), f(1)].map((v) => v.toString(16).padStart(2, "0")).join("")}`;
}

/** The generated text with every token coloured by its step, hole by hole, with a legend and the timings. */
export async function generationOrder(trace: DenoiseTrace): Promise<string> {
    const { default: ansis } = await import("ansis");
    const holes = new Map<number, string>();
    const steps = trace.totalSteps;
    for (const t of trace.tokens) holes.set(t.hole, (holes.get(t.hole) ?? "") + ansis.hex(stepColour(t.step, steps))(t.text));
    const legend = [0, 0.25, 0.5, 0.75, 1].map((f) => ansis.hex(stepColour(Math.round(f * (steps - 1)), steps))("■")).join("");
    const lines = [...holes.entries()].sort((a, b) => a[0] - b[0]).map(([h, text]) => `${ansis.dim(`hole ${h + 1}:`)} ${text}`);
    lines.push(
        ansis.dim(
            `order: first ${legend} last · ${steps} steps, ${trace.forwardPasses} forward passes, ${trace.tokens.length} tokens, ` +
                `${trace.msPerStep.toFixed(1)} ms/step, ${trace.tokensPerSecond.toFixed(1)} tokens/s`
        )
    );
    return `${lines.join("\n")}\n`;
}

export function unifiedDiff(path: string, before: string, after: string): string {
    return createTwoFilesPatch(path, path, before, after, "", "", { context: 3 });
}

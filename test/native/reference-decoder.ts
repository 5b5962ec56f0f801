// A deliberately simple TypeScript statement of the decoding rules (greedy only), to check the C++ loop
// step by step against: which positions a step considers, how many it reveals, which ones and with what.
import type { Algorithm, Schedule } from "../../common/decoding";

export interface ReferenceParams {
    steps: number;
    algorithm: Exclude<Algorithm, "origin">;
    schedule: Schedule;
    eps: number;
    blockLength: number;
    confidenceThreshold: number;
    eotPenalty: number;
    eotPenaltyDecay: number;
}

/** Dream's time grid: how many of `left` masks step i of `steps` reveals (t = 1 − i/steps·(1 − eps), s the next). */
export function timestepCount(left: number, i: number, steps: number, eps: number): number {
    const t = 1 - (i / steps) * (1 - eps);
    const s = 1 - ((i + 1) / steps) * (1 - eps);
    return i < steps - 1 ? Math.floor(left * (1 - s / t)) : left;
}

export class ReferenceDecoder {
    private readonly masked = new Set<number>();
    private readonly gen: number[];
    readonly totalSteps: number;
    private readonly stepsPerBlock: number;
    private blockMasks = 0;
    /** Chosen places whose prediction was the mask token (left masked). */
    keptMasked = 0;
    /** Steps where the confidence threshold revealed more than the schedule's count. */
    thresholdSteps = 0;
    /** Rows whose pick the end-of-text penalty changed (another token than the raw argmax). */
    penaltyFlips = 0;

    constructor(
        holes: { start: number; length: number }[],
        private readonly p: ReferenceParams,
        private readonly endTokens: number[],
        private readonly mask: number
    ) {
        this.gen = holes.flatMap((h) => Array.from({ length: h.length }, (_, i) => h.start + i)).sort((a, b) => a - b);
        for (const g of this.gen) this.masked.add(g);
        const blocks = Math.ceil(this.gen.length / p.blockLength);
        this.stepsPerBlock = p.schedule === "block" ? Math.max(1, Math.floor(p.steps / blocks)) : p.steps;
        this.totalSteps = p.schedule === "block" ? blocks * this.stepsPerBlock : p.steps;
    }

    /** Positions still masked: none when every hole is filled; Dream leaves a place masked whose prediction is the mask. */
    get left(): number {
        return this.masked.size;
    }

    /** The positions step `step` considers and the count its schedule reveals; null when it runs no forward pass. */
    plan(step: number): { active: number[]; k: number } | null {
        let active: number[];
        const local = this.p.schedule === "block" ? step % this.stepsPerBlock : step;
        if (this.p.schedule === "block") {
            const b = Math.floor(step / this.stepsPerBlock);
            active = this.gen.slice(b * this.p.blockLength, (b + 1) * this.p.blockLength).filter((g) => this.masked.has(g));
            if (local === 0) this.blockMasks = active.length;
        } else {
            active = this.gen.filter((g) => this.masked.has(g));
        }
        if (active.length === 0) return null;
        let k: number;
        if (this.p.schedule === "timestep") {
            k = timestepCount(active.length, step, this.p.steps, this.p.eps);
        } else {
            const base = Math.floor(this.blockMasks / this.stepsPerBlock);
            const rem = this.blockMasks % this.stepsPerBlock;
            k = local === this.stepsPerBlock - 1 ? active.length : Math.min(active.length, base + (local < rem ? 1 : 0));
        }
        if (k === 0 && !(this.p.confidenceThreshold > 0)) return null;
        return { active, k };
    }

    /** Reveals from the raw logits rows of `active` (in order); returns positions and tokens in reveal order. */
    reveal(step: number, plan: { active: number[]; k: number }, rows: Float32Array[]): { positions: number[]; tokens: number[] } {
        const penalty = Math.fround(Math.fround(this.p.eotPenalty) * Math.fround(Math.max(0, 1 - step / this.totalSteps) ** this.p.eotPenaltyDecay));
        const picks = rows.map((raw) => {
            const row = Array.from(raw, (v) => v);
            // the addon subtracts in float32
            for (const t of this.endTokens) row[t] = Math.fround(row[t] - penalty);
            const pick = greedyPick(row, this.p.algorithm);
            if (
                penalty !== 0 &&
                pick.token !==
                    greedyPick(
                        Array.from(raw, (v) => v),
                        this.p.algorithm
                    ).token
            )
                this.penaltyFlips++;
            return pick;
        });
        const order = plan.active.map((_, i) => i).sort((a, b) => picks[b].conf - picks[a].conf || a - b);
        let k = plan.k;
        if (this.p.confidenceThreshold > 0) {
            const sure = picks.filter((x) => x.conf > this.p.confidenceThreshold).length;
            if (sure > k) this.thresholdSteps++;
            k = Math.max(k, sure, 1);
        }
        // Dream writes the chosen predictions back; one that is the mask token leaves its place masked.
        const chosen = order.slice(0, k).filter((i) => picks[i].token !== this.mask);
        this.keptMasked += Math.min(k, order.length) - chosen.length;
        for (const i of chosen) this.masked.delete(plan.active[i]);
        return { positions: chosen.map((i) => plan.active[i]), tokens: chosen.map((i) => picks[i].token) };
    }
}

/** A greedy row's token (its argmax) and the confidence `algorithm` ranks it by. */
export function greedyPick(row: number[], algorithm: Exclude<Algorithm, "origin">): { token: number; conf: number } {
    let top1 = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[top1]) top1 = i;
    let top2 = top1 === 0 ? 1 : 0;
    for (let i = 0; i < row.length; i++) if (i !== top1 && row[i] > row[top2]) top2 = i;
    const max = row[top1];
    const e = row.map((v) => Math.exp(v - max));
    const z = e.reduce((a, b) => a + b, 0);
    const p = e.map((v) => v / z);
    switch (algorithm) {
        case "maskgit_plus":
            return { token: top1, conf: p[top1] };
        case "topk_margin":
            return { token: top1, conf: p[top1] - p[top2] };
        case "entropy":
            return { token: top1, conf: p.reduce((a, pi) => a + pi * Math.log(pi + 1e-10), 0) };
    }
}

// A deliberately simple TypeScript statement of DreamOn's variable-length holes (greedy), to check the C++ loop step by
// step against. Each hole is its own array of cells, so growing and shrinking one is an array edit and every later
// position follows from the arrays, not from index arithmetic.
import type { Algorithm } from "../../common/decoding";
import type { LayoutHole } from "../../server/src/runtime/runtime";
import { greedyPick } from "./reference-decoder";

export interface VariableParams {
    steps: number;
    algorithm: Exclude<Algorithm, "origin">;
    confidenceThreshold: number;
}

/** Deliberate mistakes, to show that the step-by-step comparison catches them. */
export type VariableMutation = "expand-one-mask" | "delete-without-shift";

interface Hole {
    cells: number[];
    maxLength: number;
    expansions: number;
}

/** What a step did: reveals (positions before the step resized the holes) and each hole's tokens after it. */
export interface VariableStep {
    positions: number[];
    tokens: number[];
    holeTokens: number[][];
}

/** What the steps so far exercised (the test asserts each happened somewhere). */
export interface Exercised {
    expansions: number;
    deletions: number;
    /** An expand the hole had no room or budget for: the logit pushed down, or a revealed expand turned into one mask. */
    blocked: number;
    expandAtFirst: number;
    expandAtLast: number;
    emptied: number;
}

export class VariableReference {
    private readonly pieces: number[][] = [];
    private readonly holes: Hole[] = [];
    private readonly perStep: number;
    /** The most steps the addon runs: then what is still masked stays masked. */
    readonly bound: number;
    readonly exercised: Exercised = { expansions: 0, deletions: 0, blocked: 0, expandAtFirst: 0, expandAtLast: 0, emptied: 0 };

    constructor(
        tokens: Int32Array,
        holes: LayoutHole[],
        private readonly p: VariableParams,
        private readonly mask: number,
        private readonly expand: number,
        private readonly del: number,
        private readonly mutation?: VariableMutation
    ) {
        let at = 0;
        for (const h of holes) {
            this.pieces.push([...tokens.subarray(at, h.start)]);
            this.holes.push({ cells: Array(h.length).fill(mask), maxLength: h.maxLength ?? h.length, expansions: 0 });
            at = h.start + h.length;
        }
        this.pieces.push([...tokens.subarray(at)]);
        const budget = this.holes.reduce((a, h) => a + h.maxLength, 0);
        this.perStep = Math.max(1, Math.floor(budget / p.steps));
        this.bound = p.steps + holes.reduce((a, h) => a + h.length + 6 * (h.maxLength ?? h.length), 0);
    }

    get left(): number {
        return this.holes.reduce((a, h) => a + h.cells.filter((c) => c === this.mask).length, 0);
    }

    get holeTokens(): number[][] {
        return this.holes.map((h) => [...h.cells]);
    }

    /** The sequence position of each hole's first cell. */
    private starts(): number[] {
        let at = 0;
        return this.holes.map((h, i) => {
            at += this.pieces[i].length;
            const start = at;
            at += h.cells.length;
            return start;
        });
    }

    private hasRoom(h: Hole): boolean {
        return h.cells.length < h.maxLength && h.expansions < 2 * h.maxLength;
    }

    /** The masked positions a step considers, in sequence order. */
    active(): number[] {
        const starts = this.starts();
        return this.holes.flatMap((h, i) => h.cells.flatMap((c, j) => (c === this.mask ? [starts[i] + j] : [])));
    }

    /** One step from the raw logits rows of active() (in order). */
    step(rows: Float32Array[]): VariableStep {
        const starts = this.starts();
        const where = this.holes.flatMap((h, i) => h.cells.flatMap((c, j) => (c === this.mask ? [{ hole: i, cell: j }] : [])));
        const picks = rows.map((raw, r) => {
            const row = Array.from(raw, (v) => v);
            if (!this.hasRoom(this.holes[where[r].hole])) {
                if (greedyPick(row, this.p.algorithm).token === this.expand) this.exercised.blocked++;
                row[this.expand] = Math.fround(row[this.expand] - 1e9);
            }
            return greedyPick(row, this.p.algorithm);
        });
        const order = picks.map((_, i) => i).sort((a, b) => picks[b].conf - picks[a].conf || a - b);
        let k = Math.min(this.perStep, picks.length);
        if (this.p.confidenceThreshold > 0) k = Math.max(k, picks.filter((x) => x.conf > this.p.confidenceThreshold).length, 1);
        const out: VariableStep = { positions: [], tokens: [], holeTokens: [] };
        for (const i of order.slice(0, k)) {
            if (picks[i].token === this.mask) continue; // Dream's rule: a predicted mask stays masked
            this.holes[where[i].hole].cells[where[i].cell] = picks[i].token;
            out.positions.push(starts[where[i].hole] + where[i].cell);
            out.tokens.push(picks[i].token);
        }
        for (let i = this.holes.length - 1; i >= 0; i--) this.resize(this.holes[i], starts[i], out);
        out.holeTokens = this.holeTokens;
        return out;
    }

    private resize(h: Hole, start: number, out: VariableStep): void {
        // After the hole's first delete, its masks are deletes too.
        const first = h.cells.indexOf(this.del);
        if (first >= 0) {
            for (let j = first + 1; j < h.cells.length; j++) {
                if (h.cells[j] !== this.mask) continue;
                h.cells[j] = this.del;
                out.positions.push(start + j);
                out.tokens.push(this.del);
            }
        }
        const before = h.cells.length;
        if (this.mutation !== "delete-without-shift") h.cells = h.cells.filter((c) => c !== this.del);
        this.exercised.deletions += before - h.cells.length;
        if (before > 0 && h.cells.length === 0) this.exercised.emptied++;
        for (let j = h.cells.length - 1; j >= 0; j--) {
            if (h.cells[j] !== this.expand) continue;
            if (this.hasRoom(h)) {
                if (j === 0) this.exercised.expandAtFirst++;
                if (j === h.cells.length - 1) this.exercised.expandAtLast++;
                h.cells.splice(j, 1, ...(this.mutation === "expand-one-mask" ? [this.mask] : [this.mask, this.mask]));
                h.expansions++;
                this.exercised.expansions++;
            } else {
                h.cells[j] = this.mask;
                this.exercised.blocked++;
            }
        }
    }
}

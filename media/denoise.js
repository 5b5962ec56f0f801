// The denoising view's script: renders a DenoiseTrace, colours tokens by the step that revealed them and
// replays the steps with the slider. Runs under the view's CSP (nonce), touches nothing remote.
(() => {
    const vscode = acquireVsCodeApi();
    const slider = document.getElementById("step");
    const stepLabel = document.getElementById("stepLabel");
    const text = document.getElementById("text");
    const counts = document.getElementById("counts");
    const empty = document.getElementById("empty");
    let trace = vscode.getState()?.trace || null;

    function hue(step, steps) {
        // First steps blue, last ones red, through green, over the schedule's steps: the CLI's --order view does the same.
        return Math.round(240 * (1 - (steps <= 1 ? 0 : step / (steps - 1))));
    }

    function render() {
        text.textContent = "";
        counts.textContent = "";
        empty.hidden = !!trace;
        if (!trace) {
            slider.max = "0";
            stepLabel.textContent = "–";
            return;
        }
        const upTo = Number(slider.value);
        const steps = trace.totalSteps;
        stepLabel.textContent = `${upTo + 1} / ${steps}`;
        let hole = -1;
        for (const t of trace.tokens) {
            if (t.hole !== hole) {
                if (hole >= 0) text.appendChild(document.createTextNode("\n"));
                const tag = document.createElement("span");
                tag.className = "hole";
                // A variable-length hole: its length at this step (the model grows and shrinks it).
                const lengths = trace.holeLengths?.[Math.min(upTo, trace.holeLengths.length - 1)];
                tag.textContent = lengths ? `hole ${t.hole + 1} · ${lengths[t.hole]} tokens at this step\n` : `hole ${t.hole + 1}\n`;
                text.appendChild(tag);
                hole = t.hole;
            }
            const span = document.createElement("span");
            span.className = "token";
            if (t.step <= upTo) {
                span.textContent = t.text;
                span.style.setProperty("--hue", String(hue(t.step, steps)));
                span.title = `step ${t.step + 1}`;
                if (t.step === upTo) span.classList.add("latest");
            } else {
                span.textContent = "░";
                span.classList.add("masked");
            }
            text.appendChild(span);
        }
        // Each row: a plain label, its value, and a tooltip with the technical meaning.
        const passes = Math.max(1, trace.forwardPasses);
        const rows = [
            ["Forward passes", trace.forwardPasses, `passes of the model over ${trace.totalSteps} denoising steps; a step that would reveal nothing runs none`],
            ["Tokens generated", trace.tokens.length, "tokens the model wrote into the holes"],
            ["Tokens per pass", (trace.tokens.length / passes).toFixed(2), "tokens revealed per forward pass (more = fewer passes)"],
            ["Time per pass", `${trace.msPerStep.toFixed(1)} ms`, "whole run time / forward passes, cache refreshes included"],
            // Forward includes the device's work (the runtime waits for it), sampling is host work only.
            [
                "of which model / sampling",
                `${(trace.forwardMs / passes).toFixed(1)} / ${(trace.sampleMs / passes).toFixed(1)} ms`,
                "per pass: the model's forward pass / choosing the tokens from its output"
            ],
            [
                "Reused from the last request",
                trace.reusedTokens ? `${trace.reusedTokens} tokens` : "none",
                "tokens of the KV cache kept from the previous request on this document, not computed again"
            ],
            ...(trace.holeLengths?.length
                ? [
                      [
                          "Hole lengths",
                          trace.holeLengths[0]
                              .map((_, h) => `${trace.holeLengths[0][h]} → ${Math.max(...trace.holeLengths.map((l) => l[h]))} → ${trace.holeLengths.at(-1)[h]}`)
                              .join(", "),
                          "each hole's tokens after the first step → at its longest → at the end: the model asked for room and gave it back"
                      ]
                  ]
                : []),
            ["Total time", `${Math.round(trace.totalMs)} ms`, "from the request to the answer"],
            ["Speed", `${trace.tokensPerSecond.toFixed(1)} tokens/s`, "tokens generated per second"]
        ];
        for (const [k, v, why] of rows) {
            const dt = document.createElement("dt");
            dt.textContent = k;
            dt.title = why;
            const dd = document.createElement("dd");
            dd.textContent = String(v);
            counts.append(dt, dd);
        }
    }

    slider.addEventListener("input", render);
    window.addEventListener("message", (event) => {
        if (event.data && event.data.type === "trace") {
            trace = event.data.trace;
            vscode.setState({ trace });
            const last = Math.max(0, trace.totalSteps - 1);
            slider.max = String(last);
            slider.value = String(last);
            render();
        }
    });
    render();
})();

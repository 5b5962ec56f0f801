// The denoising view's script: renders a DenoiseTrace, colours tokens by the step that revealed them and
// replays the steps with the slider. Runs under the view's CSP (nonce), touches nothing remote.
(function () {
    const vscode = acquireVsCodeApi();
    const slider = document.getElementById("step");
    const stepLabel = document.getElementById("stepLabel");
    const text = document.getElementById("text");
    const counts = document.getElementById("counts");
    const empty = document.getElementById("empty");
    let trace = (vscode.getState() || {}).trace || null;
    // Steps are the schedule's steps; one that reveals nothing runs no forward pass, so the highest step
    // index can exceed trace.steps (forward passes). The slider and colours follow the schedule.
    const scheduleSteps = () => (trace ? 1 + Math.max(0, ...trace.tokens.map((t) => t.step)) : 0);

    function hue(step, steps) {
        // First steps blue, last ones red, through green: the same scale as the CLI's --order view.
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
        const steps = scheduleSteps();
        stepLabel.textContent = `${upTo + 1} / ${steps}`;
        let hole = -1;
        for (const t of trace.tokens) {
            if (t.hole !== hole) {
                if (hole >= 0) text.appendChild(document.createTextNode("\n"));
                const tag = document.createElement("span");
                tag.className = "hole";
                tag.textContent = `hole ${t.hole + 1}\n`;
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
        const rows = [
            ["forward passes", trace.steps],
            ["tokens", trace.tokens.length],
            ["tokens / pass", (trace.tokens.length / Math.max(1, trace.steps)).toFixed(2)],
            ["ms / pass", trace.msPerStep.toFixed(1)],
            // Forward includes the device's work (the runtime waits for it), sampling is host work only.
            ["forward / sampling ms", `${(trace.forwardMs / Math.max(1, trace.steps)).toFixed(1)} / ${(trace.sampleMs / Math.max(1, trace.steps)).toFixed(1)}`],
            ["cache kept", trace.reusedTokens ? `${trace.reusedTokens} tokens` : "none"],
            ["total", `${Math.round(trace.totalMs)} ms`],
            ["tokens / s", trace.tokensPerSecond.toFixed(1)]
        ];
        for (const [k, v] of rows) {
            const dt = document.createElement("dt");
            dt.textContent = k;
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
            const last = Math.max(0, scheduleSteps() - 1);
            slider.max = String(last);
            slider.value = String(last);
            render();
        }
    });
    render();
})();

#!/usr/bin/env python3
# scripts/bench-gpu.sh's report: gathers what its sections wrote into RES (RES/BACKEND/ for each backend that
# RES/backends.txt lists, in the order they ran) and writes OUT/bench-gpu.json (every raw result) and
# OUT/bench-gpu.md (one table with a row per backend and measurement, and the ratios issue 11 targets). Run after
# each section, so whatever has finished is reported; a missing result is a dash, never an error.
#   python3 scripts/bench-gpu-report.py RES OUT MODEL_SIZE
import glob
import json
import os
import re
import sys

res, out, size = sys.argv[1], sys.argv[2], sys.argv[3]


def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read(path):
    # llama-diffusion-cli's log ends with the text it decoded: random weights write bytes that are not UTF-8.
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


machine = read(os.path.join(res, "machine.txt")).strip().splitlines()
sections = [dict(zip(("name", "status", "ms"), line.split("\t"))) for line in read(os.path.join(res, "sections.tsv")).splitlines() if line]
for s in sections:
    s["ms"] = int(s["ms"])
backends = read(os.path.join(res, "backends.txt")).split()

ORDER = ["none", "prefix", "dual", "dual+confidence-threshold=0.9", "dual+entropy-bound=1", "dual+reuse"]


def mode_of(path, prefix):
    return os.path.basename(path)[len(prefix) : -len(".json")]


def rank(path):
    mode = os.path.basename(path).split("-", 1)[1][:-5]
    return (ORDER.index(mode) if mode in ORDER else 99, path)


def gather(d):
    """One backend's results, from its folder."""
    runtime = {}  # mode -> rows
    for path in sorted(glob.glob(os.path.join(d, "runtime-*.json")), key=rank):
        data = load(path)
        if data:
            runtime[mode_of(path, "runtime-")] = data["rows"]
    lsp = {}
    for path in sorted(glob.glob(os.path.join(d, "lsp-*.json")), key=rank):
        data = load(path)
        if data:
            lsp[mode_of(path, "lsp-")] = data
    bench = load(os.path.join(d, "llama-bench.json")) or []
    log = read(os.path.join(d, "diffusion-cli.log"))
    m = re.search(r"total time: ([\d.]+)ms, time per step: ([\d.]+)ms, sampling time per step: ([\d.]+)ms", log)
    m_len = re.search(r"max_length\s+u32\s+=\s+(\d+)", log)
    diffusion = {"totalMs": float(m[1]), "msPerStep": float(m[2]), "samplingMsPerStep": float(m[3]),
                 "maxLength": int(m_len[1]) if m_len else None} if m else None
    if not m:
        # Its last log lines are sometimes lost at exit (the logger is asynchronous): time the steps from the
        # timestamps of its progress lines (minutes.seconds.ms.µs) instead, first to last.
        steps = [(int(a) * 60e3 + int(b) * 1e3 + int(c) + int(e) / 1e3, int(k), int(n)) for a, b, c, e, k, n in
                 re.findall(r"(\d+)\.(\d{2})\.(\d{3})\.(\d{3}) I \s*diffusion step: (\d+)/(\d+)", log)]
        if len(steps) >= 2:
            per = (steps[-1][0] - steps[0][0]) / (steps[-1][1] - steps[0][1])
            diffusion = {"totalMs": per * steps[0][2], "msPerStep": per, "samplingMsPerStep": None,
                         "maxLength": int(m_len[1]) if m_len else None, "fromTimestamps": True}

    def ar(n_prompt, n_gen, depth, fa):
        for r in bench:
            if r.get("n_prompt") == n_prompt and r.get("n_gen") == n_gen and r.get("n_depth", 0) == depth and bool(r.get("flash_attn")) == fa:
                return r["avg_ts"]
        return None

    pp_n = max([r["n_prompt"] for r in bench if r.get("n_prompt")] or [0])
    tg_n = max([r["n_gen"] for r in bench if r.get("n_gen")] or [0])
    autoregressive = {}
    for fa in (False, True):
        pp, tg = ar(pp_n, 0, 0, fa), ar(0, tg_n, pp_n, fa)
        autoregressive["fa1" if fa else "fa0"] = {
            "ppTokensPerSecond": pp, "tgTokensPerSecond": tg, "tgMsPerToken": 1000 / tg if tg else None,
            "infillMs": 1000 * (pp_n / pp + tg_n / tg) if pp and tg else None, "pp": pp_n, "tg": tg_n}
    return {"devices": read(os.path.join(d, "devices.txt")).strip() or None, "runtime": runtime, "lsp": lsp,
            "llamaDiffusionCli": diffusion, "llamaBench": bench, "autoregressive": autoregressive}


results = {b: gather(os.path.join(res, b)) for b in backends}

def f(v, d=1):
    return "–" if v is None else f"{v:,.{d}f}"


def cell(r, mode, context):
    return next((c for c in r["runtime"].get(mode, []) if c["context"] == context), None)


rows, lsp_rows, ratios = [], [], []
for b, r in results.items():
    for mode, cells in r["runtime"].items():
        for c in cells:
            rows.append(f"| {b} | ours {mode} | {c['context']} | {c['forwardPasses']} | {'~' if c.get('estimated') else ''}{f(c['totalMs'], 0)} | "
                        f"{f(c['msPerStep'], 2)} | {f(c['forwardMsPerStep'], 2)} | {f(c['sampleMsPerStep'], 2)} |")
    diffusion = r["llamaDiffusionCli"]
    if diffusion:
        rows.append(f"| {b} | llama-diffusion-cli (exact, length {diffusion['maxLength']}) | {diffusion['maxLength']} | {round(diffusion['totalMs'] / diffusion['msPerStep'])} | "
                    f"{'~' if diffusion.get('fromTimestamps') else ''}{f(diffusion['totalMs'], 0)} | {f(diffusion['msPerStep'], 2)} | – | {f(diffusion['samplingMsPerStep'], 2)} |")
    for name, a in r["autoregressive"].items():
        if a["infillMs"] or a["ppTokensPerSecond"] or a["tgTokensPerSecond"]:
            rows.append(f"| {b} | autoregressive infill, llama-bench {name} (pp{a['pp']} {f(a['ppTokensPerSecond'])} t/s, tg{a['tg']}@d{a['pp']} "
                        f"{f(a['tgTokensPerSecond'])} t/s) | {a['pp']} | {a['tg']} | {f(a['infillMs'], 0)} | {f(a['tgMsPerToken'], 2)} | – | – |")
    lsp_rows += [f"| {b} | {mode} | {s['bursts']} | {s['p50Ms']:.0f} | {s['p95Ms']:.0f} | {s['meanMs']:.0f} | {s['firstRequestMs']:.0f} |"
                 for mode, data in r["lsp"].items() for s in data["sessions"]]

    best = min((a for a in r["autoregressive"].values() if a["infillMs"]), key=lambda a: a["infillMs"], default=None)
    ctx = max([c["context"] for cells in r["runtime"].values() for c in cells] or [0])
    if best:
        for mode in ("dual", "dual+reuse"):
            c = cell(r, mode, ctx)
            if c:
                ratios.append(f"{b}: ours {mode}, context {ctx}: cached block step {c['msPerStep']:.2f} ms = "
                              f"{c['msPerStep'] / best['tgMsPerToken']:.2f}× an autoregressive token ({best['tgMsPerToken']:.2f} ms)")
                ratios.append(f"{b}: ours {mode}, context {ctx}, hole {c['hole']}: total {c['totalMs']:.0f} ms = "
                              f"{c['totalMs'] / best['infillMs']:.2f}× the autoregressive infill ({best['infillMs']:.0f} ms)")
    c = cell(r, "dual+reuse", ctx)
    if c and c.get("freshMs"):
        ratios.append(f"{b}: dual+reuse, context {ctx}: after a one-line edit {c['totalMs']:.0f} ms, the same request fresh {c['freshMs']:.0f} ms "
                      f"({c['freshMs'] / c['totalMs']:.1f}×)")
    e = cell(r, "none", ctx)
    if diffusion and e:
        ratios.append(f"{b}: exact step: ours {e['msPerStep']:.2f} ms at context {ctx}, llama-diffusion-cli {diffusion['msPerStep']:.2f} ms at length {diffusion['maxLength']}")
    for mode, data in r["lsp"].items():
        ratios.append(f"{b}: language server, {mode}, context {data['contextTokens']}: inline completion p50 {data['sessions'][0]['p50Ms']:.0f} ms")

# Each later backend against the first, cell by cell: the same model, modes and contexts on the same machine.
for b in backends[1:]:
    first = backends[0]
    for mode, cells in results[b]["runtime"].items():
        for c in cells:
            o = cell(results[first], mode, c["context"])
            if o and o["totalMs"]:
                ratios.append(f"{b} against {first}, {mode}, context {c['context']}: total {c['totalMs']:.0f} against {o['totalMs']:.0f} ms "
                              f"({c['totalMs'] / o['totalMs']:.2f}×), step {c['msPerStep']:.2f} against {o['msPerStep']:.2f} ms")

md = [f"# GPU benchmark ({size} models, random Q4_0 weights)", "", *(f"- {line}" for line in machine),
      *(f"- {b} devices: {r['devices']}" for b, r in results.items() if r["devices"]), "",
      "| backend | what | context | steps/tokens | total ms | ms/step (ms/token) | forward ms/step | sampling ms/step |",
      "|---|---|--:|--:|--:|--:|--:|--:|", *rows, "",
      "~: exact mode measured over its first steps, the total extrapolated (llama-diffusion-cli: from its step timestamps, when its own total was lost).", ""]
if lsp_rows:
    md += ["Language server, inline completion (scripted typing; latency from a burst's last keystroke):", "",
           "| backend | cache | bursts | p50 ms | p95 ms | mean ms | first (model load) ms |", "|---|---|--:|--:|--:|--:|--:|", *lsp_rows, ""]
md += [*(f"- {r}" for r in ratios), "", "Sections: " + ", ".join(f"{s['name']} {s['status']} ({s['ms'] / 1000:.0f} s)" for s in sections), ""]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "bench-gpu.md"), "w", encoding="utf-8") as fh:
    fh.write("\n".join(md))
with open(os.path.join(out, "bench-gpu.json"), "w", encoding="utf-8") as fh:
    json.dump({"machine": machine, "modelSize": size, "sections": sections, "backends": results, "ratios": ratios}, fh, indent=1)

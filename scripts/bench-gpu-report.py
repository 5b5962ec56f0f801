#!/usr/bin/env python3
# scripts/bench-gpu.sh's report: gathers what its sections wrote into RES and writes OUT/bench-gpu.json (every
# raw result) and OUT/bench-gpu.md (one table and the ratios issue 11 targets). Run after each section, so
# whatever has finished is reported; a missing result is a dash, never an error.
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

ORDER = ["none", "exact", "prefix", "dual", "dual+threshold", "dual+entropy", "dual+reuse"]
rank = lambda path: (ORDER.index(os.path.basename(path).split("-", 1)[1][:-5]) if os.path.basename(path).split("-", 1)[1][:-5] in ORDER else 99, path)
runtime = {}  # mode -> rows
for path in sorted(glob.glob(os.path.join(res, "runtime-*.json")), key=rank):
    data = load(path)
    if data:
        runtime[os.path.basename(path)[len("runtime-"):-len(".json")]] = data["rows"]

lsp = {}
for path in sorted(glob.glob(os.path.join(res, "lsp-*.json")), key=rank):
    data = load(path)
    if data:
        lsp[os.path.basename(path)[len("lsp-"):-len(".json")]] = data

bench = load(os.path.join(res, "llama-bench.json")) or []
m = re.search(r"total time: ([\d.]+)ms, time per step: ([\d.]+)ms, sampling time per step: ([\d.]+)ms", read(os.path.join(res, "diffusion-cli.log")))
m_len = re.search(r"max_length\s+u32\s+=\s+(\d+)", read(os.path.join(res, "diffusion-cli.log")))
diffusion = {"totalMs": float(m[1]), "msPerStep": float(m[2]), "samplingMsPerStep": float(m[3]),
             "maxLength": int(m_len[1]) if m_len else None} if m else None
if not m:
    # Its last log lines are sometimes lost at exit (the logger is asynchronous): time the steps from the
    # timestamps of its progress lines (minutes.seconds.ms.µs) instead, first to last.
    steps = [(int(a) * 60e3 + int(b) * 1e3 + int(c) + int(d) / 1e3, int(k), int(n)) for a, b, c, d, k, n in
             re.findall(r"(\d+)\.(\d{2})\.(\d{3})\.(\d{3}) I \s*diffusion step: (\d+)/(\d+)", read(os.path.join(res, "diffusion-cli.log")))]
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
        "infillMs": 1000 * (pp_n / pp + tg_n / tg) if pp and tg else None}
best = min((a for a in autoregressive.values() if a["infillMs"]), key=lambda a: a["infillMs"], default=None)

f = lambda v, d=1: "–" if v is None else f"{v:,.{d}f}"
rows = []
for mode, cells in runtime.items():
    for c in cells:
        rows.append(f"| ours {mode} | {c['context']} | {c['forwardPasses']} | {'~' if c.get('estimated') else ''}{f(c['totalMs'], 0)} | {f(c['msPerStep'], 2)} | {f(c['forwardMsPerStep'], 2)} | {f(c['sampleMsPerStep'], 2)} |")
if diffusion:
    rows.append(f"| llama-diffusion-cli (exact, length {diffusion['maxLength']}) | {diffusion['maxLength']} | {round(diffusion['totalMs'] / diffusion['msPerStep'])} | "
                f"{'~' if diffusion.get('fromTimestamps') else ''}{f(diffusion['totalMs'], 0)} | {f(diffusion['msPerStep'], 2)} | – | {f(diffusion['samplingMsPerStep'], 2)} |")
for name, a in autoregressive.items():
    if a["infillMs"] or a["ppTokensPerSecond"] or a["tgTokensPerSecond"]:
        rows.append(f"| autoregressive infill, llama-bench {name} (pp{pp_n} {f(a['ppTokensPerSecond'])} t/s, tg{tg_n}@d{pp_n} {f(a['tgTokensPerSecond'])} t/s) | {pp_n} | {tg_n} | "
                    f"{f(a['infillMs'], 0)} | {f(a['tgMsPerToken'], 2)} | – | – |")


def cell(mode, context):
    return next((c for c in runtime.get(mode, []) if c["context"] == context), None)


ctx = max([c["context"] for cells in runtime.values() for c in cells] or [0])
ratios = []
if best:
    for mode in ("dual", "dual+reuse"):
        c = cell(mode, ctx)
        if c:
            ratios.append(f"ours {mode}, context {ctx}: cached block step {c['msPerStep']:.2f} ms = {c['msPerStep'] / best['tgMsPerToken']:.2f}× an autoregressive token ({best['tgMsPerToken']:.2f} ms)")
            ratios.append(f"ours {mode}, context {ctx}, hole {c['hole']}: total {c['totalMs']:.0f} ms = {c['totalMs'] / best['infillMs']:.2f}× the autoregressive infill ({best['infillMs']:.0f} ms)")
r = cell("dual+reuse", ctx)
if r and r.get("freshMs"):
    ratios.append(f"dual+reuse, context {ctx}: after a one-line edit {r['totalMs']:.0f} ms, the same request fresh {r['freshMs']:.0f} ms ({r['freshMs'] / r['totalMs']:.1f}×)")
e = cell("exact", ctx)
if diffusion and e:
    ratios.append(f"exact step: ours {e['msPerStep']:.2f} ms at context {ctx}, llama-diffusion-cli {diffusion['msPerStep']:.2f} ms at length {diffusion['maxLength']}")
lsp_rows = [f"| {mode} | {s['bursts']} | {s['p50Ms']:.0f} | {s['p95Ms']:.0f} | {s['meanMs']:.0f} | {s['firstRequestMs']:.0f} |"
            for mode, data in lsp.items() for s in data["sessions"]]
for mode, data in lsp.items():
    ratios.append(f"language server, {mode}, context {data['contextTokens']}: inline completion p50 {data['sessions'][0]['p50Ms']:.0f} ms")

md = [f"# GPU benchmark ({size} models, random Q4_0 weights)", "", *(f"- {line}" for line in machine), "",
      "| what | context | steps/tokens | total ms | ms/step (ms/token) | forward ms/step | sampling ms/step |",
      "|---|--:|--:|--:|--:|--:|--:|", *rows, "", "~: exact mode measured over its first steps, the total extrapolated (llama-diffusion-cli: from its step timestamps, when its own total was lost).", ""]
if lsp_rows:
    md += ["Language server, inline completion (scripted typing; latency from a burst's last keystroke):", "",
           "| cache | bursts | p50 ms | p95 ms | mean ms | first (model load) ms |", "|---|--:|--:|--:|--:|--:|", *lsp_rows, ""]
md += [*(f"- {r}" for r in ratios), "", "Sections: " + ", ".join(f"{s['name']} {s['status']} ({s['ms'] / 1000:.0f} s)" for s in sections), ""]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "bench-gpu.md"), "w", encoding="utf-8") as fh:
    fh.write("\n".join(md))
with open(os.path.join(out, "bench-gpu.json"), "w", encoding="utf-8") as fh:
    json.dump({"machine": machine, "modelSize": size, "sections": sections, "runtime": runtime, "llamaDiffusionCli": diffusion,
               "llamaBench": bench, "autoregressive": autoregressive, "lsp": lsp, "ratios": ratios}, fh, indent=1)

#!/usr/bin/env bash
# The GPU benchmark in one command, for a bare GPU machine (compiler, CMake, nvcc, Python 3; no Node, no
# node_modules, no network): builds the CUDA addon plus llama.cpp's llama-bench and llama-diffusion-cli from the
# kit that scripts/gpu-kit.mjs prepared (native/build/gpu-kit/), writes two random-weight Q4_0 models with
# Dream-Coder 7B's shapes (a `dream` one and the same tensors as an autoregressive `qwen2` one), then measures
#   our runtime (bench/runtime-bench.ts) per mode, llama-diffusion-cli, llama-bench (the autoregressive
#   baseline) and the language server's inline-completion latency (dream-coder bench),
# and prints one Markdown table. Every section is timed and guarded: a failing one is reported and the others
# still run; $OUT/bench-gpu.{json,md,log} are rewritten after each, so a run cut short still returns results.
#
#   bash scripts/bench-gpu.sh                 # on the GPU machine (OUT= where results go)
#   bash scripts/bench-gpu.sh --cpu --small   # dry run on a CPU: tiny models, 2 threads, the same steps
#
# Environment: OUT (default bench-results/gpu), GPU_KIT (default native/build/gpu-kit),
# BENCH_WORK (unpacked kit, build, models; default native/build/gpu-bench), BENCH_BUDGET_S (stop starting
# sections after this many seconds; default 540, under the device tool's 600 s), RUNTIME_MODES, LSP_MODES,
# BENCH_PREBUILT (a build folder of native/CMakeLists.txt to use instead of building, e.g. native/build/cmake).
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CPU=0 SMALL=0
for a in "$@"; do
    case $a in
        --cpu) CPU=1 ;;
        --small) SMALL=1 ;;
        *) echo "usage: bash scripts/bench-gpu.sh [--cpu] [--small]" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-$ROOT/bench-results/gpu}
KIT=${GPU_KIT:-$ROOT/native/build/gpu-kit}
WORK=${BENCH_WORK:-$ROOT/native/build/gpu-bench}
BUDGET=${BENCH_BUDGET_S:-540}
# The runtime bench's modes and the language server's cache modes: a mode this build does not know is
# reported as skipped (bench/runtime-bench.ts and `dream-coder bench` refuse unknown names).
# The order is the order they run in, most wanted first: the time budget may cut the last ones.
RUNTIME_MODES=${RUNTIME_MODES:-dual dual+reuse dual+threshold exact}
LSP_MODES=${LSP_MODES:-dual dual+reuse none}
mkdir -p "$OUT" "$WORK/results" "$WORK/models"
LOG=$OUT/bench-gpu.log
RES=$WORK/results
rm -f "$RES"/*
: >"$LOG"
START=$(date +%s)
JOBS=$(nproc)

if ((SMALL)); then
    CONTEXTS=128,256 HOLE=32 PROMPT=224 PP=256 TG=32 LSP_CONTEXT=256 BURSTS=4 MODEL_SIZE=small EXACT_STEPS=0
else
    # Exact mode: 8 measured steps, the total extrapolated (marked ~): every exact step is a full pass.
    CONTEXTS=1024,2048 HOLE=32 PROMPT=2016 PP=2048 TG=32 LSP_CONTEXT=1024 BURSTS=20 MODEL_SIZE=7b EXACT_STEPS=8
fi
if ((CPU)); then THREADS=2 NGL=0; else THREADS=8 NGL=999; fi

log() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$LOG" >&2; }

# Runs one section: times it, records ok/failed/skipped in $RES/sections.tsv, and refreshes the report.
section() {
    local name=$1 t0 rc
    shift
    local left=$((BUDGET - ($(date +%s) - START)))
    if ((left < 15)); then
        log "== $name: skipped (time budget of ${BUDGET}s spent)"
        printf '%s\tskipped\t0\n' "$name" >>"$RES/sections.tsv"
    else
        log "== $name"
        t0=$(date +%s%N)
        SECTION_LEFT=$left "$@" >>"$LOG" 2>&1
        rc=$?
        local ms=$((($(date +%s%N) - t0) / 1000000))
        if ((rc == 0)); then printf '%s\tok\t%d\n' "$name" "$ms" >>"$RES/sections.tsv"; log "   $name: ok in ${ms} ms"
        elif ((rc == 3)); then printf '%s\tskipped (not in this build)\t%d\n' "$name" "$ms" >>"$RES/sections.tsv"; log "   $name: skipped, not in this build"
        else printf '%s\tfailed (exit %d)\t%d\n' "$name" "$rc" "$ms" >>"$RES/sections.tsv"; log "   $name: FAILED (exit $rc) after ${ms} ms; see $LOG"; fi
    fi
    report
}

report() {
    python3 -B "$ROOT/scripts/bench-gpu-report.py" "$RES" "$OUT" "$MODEL_SIZE" >/dev/null 2>>"$LOG" || echo "report failed" >>"$LOG"
}

# A command limited to the section's share of the budget, so that one hang cannot eat the rest.
limited() { timeout --kill-after=5 "$SECTION_LEFT" "$@"; }

unpack() {
    # Python's tarfile reads .xz without an xz binary. An archive is unpacked again only when its hash changes,
    # and then only files whose content changed are written (with the current time), so that an incremental
    # build recompiles exactly what changed.
    local a h
    mkdir -p "$WORK/kit"
    for a in node src; do
        h=$(sha256sum "$KIT/$a.tar.xz" | cut -d' ' -f1) || return 1
        [ "$(cat "$WORK/kit/.$a.sha256" 2>/dev/null)" = "$h" ] && continue
        python3 -c 'import filecmp, os, shutil, sys, tarfile, tempfile
dst = sys.argv[1]
tmp = tempfile.mkdtemp(dir=dst)
try:
    tarfile.open(sys.argv[2]).extractall(tmp, **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
except tarfile.CompressionError:  # a Python built without lzma: the xz program, if there is one
    import subprocess; subprocess.run(["tar", "-xJf", sys.argv[2], "-C", tmp], check=True)
for d, _, files in os.walk(tmp):
    os.makedirs(os.path.join(dst, os.path.relpath(d, tmp)), exist_ok=True)
    for f in files:
        s, o = os.path.join(d, f), os.path.join(dst, os.path.relpath(d, tmp), f)
        if not (os.path.isfile(o) and filecmp.cmp(s, o, shallow=False)):
            shutil.copyfile(s, o)
            shutil.copymode(s, o)
shutil.rmtree(tmp)' "$WORK/kit" "$KIT/$a.tar.xz" && echo "$h" >"$WORK/kit/.$a.sha256" || return 1
    done
    "$WORK/kit/node/bin/node" --version
}

build() {
    if [ -n "${BENCH_PREBUILT:-}" ]; then
        echo "using the build in $BENCH_PREBUILT (BENCH_PREBUILT): nothing built"
        ls -l "$DREAM_CODER_ADDON" "$BIN"
        return
    fi
    # The same CMake project as `npm run build:native` (native/CMakeLists.txt), configured without cmake-js:
    # CMAKE_JS_INC is what cmake-js would pass (Node-API headers and node-addon-api, here from the kit).
    local gpu=(-DGGML_CUDA=OFF)
    if ((!CPU)); then
        local cap
        cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
        gpu=(-DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF "-DCMAKE_CUDA_ARCHITECTURES=${cap:-90}-real")
    fi
    # The CUDA toolkit may be installed without being on PATH.
    command -v nvcc >/dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || PATH=/usr/local/cuda/bin:$PATH
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$ROOT/native" -B "$WORK/build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        "-DLLAMA_CPP_DIR=$WORK/kit/llama.cpp" "-DCMAKE_JS_INC=$WORK/kit/node-api-headers;$WORK/kit/node-addon-api" \
        -DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$WORK/build/Release" "${gpu[@]}" &&
        limited cmake --build "$WORK/build" -j "$JOBS" --target dream_native llama-bench llama-diffusion-cli
}

PATH=$WORK/kit/node/bin:$PATH
BUILT=${BENCH_PREBUILT:-$WORK/build}
export DREAM_CODER_ADDON=$BUILT/Release/dream_native.node
JS=$KIT/js
BIN=$BUILT/bin
DREAM=$WORK/models/dream-$MODEL_SIZE.gguf
QWEN=$WORK/models/qwen2-$MODEL_SIZE.gguf

{
    echo "bench-gpu: $(date -u +%FT%TZ), $( ((CPU)) && echo cpu || echo gpu), $MODEL_SIZE models, $JOBS cores"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
} | tee "$RES/machine.txt" >>"$LOG"

models() {
    # The dream file for our runtime, llama-diffusion-cli and the language server; the same tensors as qwen2
    # for llama-bench. Written with the kit's bundled writer (bench/bench-model.ts).
    local t=$WORK/kit/llama.cpp/models/templates/Qwen-Qwen2.5-7B-Instruct.jinja
    [ -s "$DREAM" ] || node "$JS/bench/bench-model.js" --arch dream --size "$MODEL_SIZE" --template "$t" --out "$DREAM" || return 1
    [ -s "$QWEN" ] || node "$JS/bench/bench-model.js" --arch qwen2 --size "$MODEL_SIZE" --out "$QWEN" || return 1
    ls -l "$DREAM" "$QWEN"
}

# Exit status 3: the mode is not in this build (another branch adds it); reported as skipped, not failed.
runtime_mode() {
    local m=$1 err=$RES/runtime-$1.err
    limited node "$KIT/runtime-bench.js" --model-file "$DREAM" --gpu-layers "$NGL" --threads "$THREADS" \
        --contexts "$CONTEXTS" --holes "$HOLE" --modes "$m" --exact-max-steps "$EXACT_STEPS" --out "$RES/runtime-$m.json" 2>"$err"
    local rc=$?
    cat "$err" >&2
    grep -q "unknown mode" "$err" && return 3
    return $rc
}

# One mode at the largest context with something switched off, to see what it is worth on this card:
#   runtime_variant LABEL MODE [VAR=VALUE ...] [-- runtime-bench flags]
runtime_variant() {
    local label=$1 m=$2 env=() flags=()
    shift 2
    while (($#)) && [ "$1" != "--" ]; do env+=("$1"); shift; done
    (($#)) && shift && flags=("$@")
    limited env "${env[@]}" node "$KIT/runtime-bench.js" --model-file "$DREAM" --gpu-layers "$NGL" --threads "$THREADS" \
        --contexts "${CONTEXTS##*,}" --holes "$HOLE" --modes "$m" "${flags[@]}" --out "$RES/runtime-$m, $label.json"
}

diffusion_cli() {
    # The reference: llama.cpp's own diffusion CLI, every step a full pass over prompt + answer (no cache). It
    # puts the prompt through the chat template; the length is the templated prompt + HOLE tokens to generate.
    local n
    n=$(limited node "$KIT/runtime-bench.js" --model-file "$DREAM" --gpu-layers "$NGL" --write-prompt "$PROMPT" "$WORK/prompt.txt") || return 1
    limited "$BIN/llama-diffusion-cli" -m "$DREAM" -f "$WORK/prompt.txt" -ub $((n + HOLE)) -b $((n + HOLE)) -c $((n + HOLE)) \
        -ngl "$NGL" -t "$THREADS" --diffusion-steps "$HOLE" --diffusion-eps 0.001 2>&1 | tee "$RES/diffusion-cli.log" | tail -5
}

llama_bench() {
    # pp at depth 0 for the prompt, tg at depth = context for the answer: the autoregressive infill time is
    # PP/pp + TG/tg (bench-gpu-report.py); flash attention off and on.
    limited "$BIN/llama-bench" -m "$QWEN" -p "$PP" -n "$TG" -d "0,$PP" -fa 0,1 -ngl "$NGL" -t "$THREADS" -r 3 -o json >"$RES/llama-bench.json"
}

lsp_mode() {
    local m=$1 err=$RES/lsp-$1.err
    limited node "$JS/server/src/cli/main.js" bench --model "$DREAM" --compare "$m" --gpu-layers "$NGL" --threads "$THREADS" \
        --context-tokens "$LSP_CONTEXT" --bursts "$BURSTS" --file "$ROOT/server/src/holes.ts" --json "$RES/lsp-$m.json" 2>"$err"
    local rc=$?
    tr '\r' '\n' <"$err" >&2
    grep -q -- "--compare:" "$err" && return 3
    return $rc
}

section unpack unpack
section build build
section models models
section llama-bench llama_bench
for m in $RUNTIME_MODES; do section "runtime $m" runtime_mode "$m"; done
for m in $LSP_MODES; do section "lsp $m" lsp_mode "$m"; done
section llama-diffusion-cli diffusion_cli
# What each part of the cached step is worth here (the budget cuts these first).
section "runtime dual, reductions off" runtime_variant "reductions off" dual -- --reductions off
section "runtime dual, graph reuse off" runtime_variant "graph reuse off" dual LLAMA_GRAPH_REUSE_DISABLE=1
section "runtime dual, CUDA graphs off" runtime_variant "CUDA graphs off" dual GGML_CUDA_DISABLE_GRAPHS=1
log "done in $(($(date +%s) - START)) s"
cat "$OUT/bench-gpu.md"

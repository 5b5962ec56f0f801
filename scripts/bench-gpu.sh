#!/usr/bin/env bash
# The GPU benchmark in one command, for a bare GPU machine (compiler, CMake, nvcc, Python 3; no Node, no
# node_modules, no network): for each backend (CUDA, and Vulkan where glslc and the Vulkan headers are found)
# builds the addon plus llama.cpp's llama-bench and llama-diffusion-cli from the kit that scripts/gpu-kit.mjs
# prepared (native/build/gpu-kit/), in a build folder of its own, writes two random-weight Q4_0 models with
# Dream-Coder 7B's shapes (a `dream` one and the same tensors as an autoregressive `qwen2` one), then measures
#   our runtime (bench/runtime-bench.ts) per mode, llama-diffusion-cli, llama-bench (the autoregressive
#   baseline) and the language server's inline-completion latency (dream-coder bench),
# and prints one Markdown table with a row per backend and measurement. Every section is timed and guarded: a
# failing one is reported and the others still run; $OUT/bench-gpu.{json,md,log} are rewritten after each, so a
# run cut short still returns results. The most wanted figures come first: the first backend's sections, then
# the others' runtime modes and llama-bench, their other sections, and last what each part of the cached step is
# worth (reductions, graph reuse, CUDA graphs off).
#
#   bash scripts/bench-gpu.sh                 # on the GPU machine (OUT= where results go)
#   bash scripts/bench-gpu.sh --cpu --small   # dry run on a CPU: tiny models, 2 threads, the same steps, with
#                                             # the CPU build for CUDA's and Vulkan on lavapipe (Mesa's CPU driver)
#
# Environment: OUT (default bench-results/gpu), GPU_KIT (default native/build/gpu-kit), BENCH_WORK (unpacked kit,
# builds, models; default native/build/gpu-bench), BENCH_BUDGET_S (stop starting sections after this many seconds;
# default 540, under the device tool's 600 s), RUNTIME_MODES, LSP_MODES and VARIANTS (each empty: none),
# GPU_BACKENDS (comma-separated, in the order they run: cuda, vulkan, cpu; default cuda, or cpu with --cpu, then
# vulkan where it can build), BENCH_PREBUILT_CUDA / _VULKAN / _CPU (a build folder of native/CMakeLists.txt to use
# for that backend instead of building, e.g. BENCH_PREBUILT_CPU=native/build/cmake).
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
# The runtime bench's modes and the language server's, decoding configurations both (docs/cli.md): one this build
# does not know is reported as skipped (bench/runtime-bench.ts and `dream-coder bench` refuse it as a bad configuration).
# The order is the order they run in, most wanted first: the time budget may cut the last ones.
RUNTIME_MODES=${RUNTIME_MODES-dual dual+reuse dual+confidence-threshold=0.9 none}
LSP_MODES=${LSP_MODES-dual dual+reuse none}
# What the dual step is measured again without, last: the device reductions, llama.cpp's graph reuse, CUDA graphs.
VARIANTS=${VARIANTS-reductions graph-reuse cuda-graphs}
mkdir -p "$OUT" "$WORK/models"
LOG=$OUT/bench-gpu.log
RES=$WORK/results
rm -rf "$RES"
mkdir -p "$RES"
: >"$LOG"
START=$(date +%s)
JOBS=$(nproc)

if ((SMALL)); then
    CONTEXTS=128,256 HOLE=32 PROMPT=224 PP=256 TG=32 LSP_CONTEXT=256 BURSTS=4 MODEL_SIZE=small EXACT_STEPS=0
else
    # Exact mode: 8 measured steps, the total extrapolated (marked ~): every exact step is a full pass.
    CONTEXTS=1024,2048 HOLE=32 PROMPT=2016 PP=2048 TG=32 LSP_CONTEXT=1024 BURSTS=20 MODEL_SIZE=7b EXACT_STEPS=8
fi
if ((CPU)); then THREADS=2; else THREADS=8; fi

log() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$LOG" >&2; }

# Runs one section, of the backend in use where BACKEND is set: times it, records ok/failed/skipped in
# $RES/sections.tsv (and in SECTION_STATUS), and refreshes the report. A backend whose build or device check
# failed has its later sections skipped, not run to fail.
section() {
    local name="${BACKEND:+$BACKEND }$1" t0 rc broken=${BACKEND:+${BROKEN[$BACKEND]:-}}
    shift
    local left=$((BUDGET - ($(date +%s) - START)))
    SECTION_STATUS=skipped
    if [ -n "$broken" ]; then
        log "== $name: skipped ($broken)"
        printf '%s\tskipped (%s)\t0\n' "$name" "$broken" >>"$RES/sections.tsv"
    elif ((left < 15)); then
        log "== $name: skipped (time budget of ${BUDGET}s spent)"
        printf '%s\tskipped\t0\n' "$name" >>"$RES/sections.tsv"
    else
        log "== $name"
        t0=$(date +%s%N)
        SECTION_LEFT=$left "$@" >>"$LOG" 2>&1
        rc=$?
        local ms=$((($(date +%s%N) - t0) / 1000000))
        if ((rc == 0)); then SECTION_STATUS=ok; printf '%s\tok\t%d\n' "$name" "$ms" >>"$RES/sections.tsv"; log "   $name: ok in ${ms} ms"
        elif ((rc == 3)); then printf '%s\tskipped (not in this build)\t%d\n' "$name" "$ms" >>"$RES/sections.tsv"; log "   $name: skipped, not in this build"
        else SECTION_STATUS=failed; printf '%s\tfailed (exit %d)\t%d\n' "$name" "$rc" "$ms" >>"$RES/sections.tsv"; log "   $name: FAILED (exit $rc) after ${ms} ms; see $LOG"; fi
    fi
    report
}

report() {
    python3 -B "$ROOT/scripts/bench-gpu-report.py" "$RES" "$OUT" "$MODEL_SIZE" >/dev/null 2>>"$LOG" || echo "report failed" >>"$LOG"
}

# A command limited to the section's share of the budget, so that one hang cannot eat the rest.
limited() { timeout --kill-after=5 "$SECTION_LEFT" "$@"; }

# What the Vulkan build lacks on this machine, in words (nothing when it can build): ggml-vulkan compiles its
# shaders with glslc and includes the Vulkan and SPIR-V headers; the addon links the Vulkan loader.
vulkan_missing() {
    local sdk=() what=() cxx=${CXX:-c++} list
    [ -n "${VULKAN_SDK:-}" ] && sdk=("-I$VULKAN_SDK/include" "-L$VULKAN_SDK/lib")
    command -v glslc >/dev/null || what+=("glslc")
    echo '#include <vulkan/vulkan.h>' | "$cxx" -x c++ -E "${sdk[@]}" - >/dev/null 2>&1 || what+=("the Vulkan headers")
    echo '#include <spirv/unified1/spirv.hpp>' | "$cxx" -x c++ -E "${sdk[@]}" - >/dev/null 2>&1 || what+=("the SPIR-V headers")
    echo 'int main() { return 0; }' | "$cxx" -x c++ "${sdk[@]}" - -lvulkan -o /dev/null >/dev/null 2>&1 || what+=("the Vulkan loader libvulkan.so")
    ((${#what[@]})) || return 0
    printf -v list '%s, ' "${what[@]}"
    echo "this machine lacks ${list%, }: install the Vulkan SDK, or Debian/Ubuntu's glslc, libvulkan-dev and spirv-headers"
}

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
    if [ -n "$PREBUILT" ]; then
        echo "using the build in $PREBUILT (BENCH_PREBUILT_${BACKEND^^}): nothing built"
        ls -l "$DREAM_CODER_ADDON"
        return
    fi
    # The same CMake project as `npm run build:native` (native/CMakeLists.txt), configured without cmake-js:
    # CMAKE_JS_INC is what cmake-js would pass (Node-API headers and node-addon-api, here from the kit).
    local gpu=(-DGGML_CUDA=OFF -DGGML_VULKAN=OFF)
    case $BACKEND in
        cuda)
            local cap
            cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
            gpu=(-DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF "-DCMAKE_CUDA_ARCHITECTURES=${cap:-90}-real" -DGGML_VULKAN=OFF)
            # The CUDA toolkit may be installed without being on PATH.
            command -v nvcc >/dev/null || [ ! -x /usr/local/cuda/bin/nvcc ] || PATH=/usr/local/cuda/bin:$PATH
            ;;
        vulkan)
            local missing
            missing=$(vulkan_missing)
            [ -z "$missing" ] || { echo "vulkan: $missing"; return 1; }
            gpu=(-DGGML_CUDA=OFF -DGGML_VULKAN=ON)
            ;;
    esac
    local gen=()
    command -v ninja >/dev/null && gen=(-G Ninja)
    cmake -S "$ROOT/native" -B "$BUILT" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release \
        "-DLLAMA_CPP_DIR=$WORK/kit/llama.cpp" "-DCMAKE_JS_INC=$WORK/kit/node-api-headers;$WORK/kit/node-addon-api" \
        -DCMAKE_CXX_FLAGS=-DBUILDING_NODE_EXTENSION "-DCMAKE_LIBRARY_OUTPUT_DIRECTORY=$BUILT/Release" "${gpu[@]}" &&
        limited cmake --build "$BUILT" -j "$JOBS" --target dream_native llama-bench llama-diffusion-cli
}

# The devices the addon lists (written for the report); a GPU backend must list one of its own, else its figures
# would be the CPU's: a Vulkan build on a machine whose driver has no Vulkan ICD, a CUDA build that sees no GPU.
devices() {
    node -e 'const d = require(process.env.DREAM_CODER_ADDON).devices();
console.log(d.map((x) => `${x.name} (${x.description}, ${x.type})`).join("; "));
const own = { cuda: "CUDA", vulkan: "Vulkan", cpu: "CPU" }[process.argv[1]];
if (!d.some((x) => x.name.startsWith(own))) {
    console.error(`the ${process.argv[1]} build lists no ${own} device: its figures would be the CPU ones`);
    process.exit(1);
}' "$BACKEND" >"$BRES/devices.txt" || {
        # The Vulkan loader finds drivers by their manifests: a container given only the GPU's compute libraries
        # has no NVIDIA one.
        local icd
        icd=$(find /usr/share/vulkan/icd.d /etc/vulkan/icd.d -name '*.json' -printf '%f ' 2>/dev/null || true)
        [ "$BACKEND" != vulkan ] || echo "Vulkan driver manifests: ${icd:-none}"
        return 1
    }
    cat "$BRES/devices.txt"
}

# The backend the next sections run: its build, its results folder ($BRES) and its GPU layers.
use_backend() {
    BACKEND=$1
    BRES=$RES/$BACKEND
    mkdir -p "$BRES"
    local var=BENCH_PREBUILT_${BACKEND^^}
    PREBUILT=${!var:-}
    BUILT=${PREBUILT:-$WORK/build-$BACKEND}
    BIN=$BUILT/bin
    export DREAM_CODER_ADDON=$BUILT/Release/dream_native.node
    if [ "$BACKEND" = cpu ]; then NGL=0; else NGL=999; fi
}

PATH=$WORK/kit/node/bin:$PATH
# lavapipe, the dry run's Vulkan device, is a CPU-type device that ggml lists only when named.
((CPU)) && export GGML_VK_VISIBLE_DEVICES=${GGML_VK_VISIBLE_DEVICES:-0}
JS=$KIT/js
DREAM=$WORK/models/dream-$MODEL_SIZE.gguf
QWEN=$WORK/models/qwen2-$MODEL_SIZE.gguf
declare -A BROKEN=()

if [ -n "${GPU_BACKENDS:-}" ]; then
    IFS=, read -r -a BACKENDS <<<"$GPU_BACKENDS"
else
    BACKENDS=("$( ((CPU)) && echo cpu || echo cuda)")
    why=$(vulkan_missing)
    if [ -z "$why" ]; then BACKENDS+=(vulkan); else VULKAN_SKIPPED="vulkan skipped: $why"; fi
fi
for b in "${BACKENDS[@]}"; do
    case $b in cuda | vulkan | cpu) ;; *) echo "GPU_BACKENDS: unknown backend '$b' (cuda, vulkan or cpu)" >&2; exit 2 ;; esac
done
for v in $VARIANTS; do
    case $v in reductions | graph-reuse | cuda-graphs) ;; *) echo "VARIANTS: unknown variant '$v' (reductions, graph-reuse or cuda-graphs)" >&2; exit 2 ;; esac
done

{
    echo "bench-gpu: $(date -u +%FT%TZ), $( ((CPU)) && echo cpu || echo gpu), $MODEL_SIZE models, $JOBS cores, backends ${BACKENDS[*]}"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"
    [ -n "${VULKAN_SKIPPED:-}" ] && echo "$VULKAN_SKIPPED"
} | tee "$RES/machine.txt" >>"$LOG"
printf '%s\n' "${BACKENDS[@]}" >"$RES/backends.txt"

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
    local m=$1 err=$BRES/runtime-$1.err
    limited node "$KIT/runtime-bench.js" --model-file "$DREAM" --gpu-layers "$NGL" --threads "$THREADS" --vs-ar off \
        --contexts "$CONTEXTS" --holes "$HOLE" --modes "$m" --exact-max-steps "$EXACT_STEPS" --out "$BRES/runtime-$m.json" 2>"$err"
    local rc=$?
    cat "$err" >&2
    grep -q "bad configuration" "$err" && return 3
    return $rc
}

# One mode at the largest context with something switched off, to see what it is worth on this card:
#   runtime_variant LABEL MODE [VAR=VALUE ...] [-- runtime-bench flags]
runtime_variant() {
    local label=$1 m=$2 env=() flags=()
    shift 2
    while (($#)) && [ "$1" != "--" ]; do env+=("$1"); shift; done
    (($#)) && shift && flags=("$@")
    limited env "${env[@]}" node "$KIT/runtime-bench.js" --model-file "$DREAM" --gpu-layers "$NGL" --threads "$THREADS" --vs-ar off \
        --contexts "${CONTEXTS##*,}" --holes "$HOLE" --modes "$m" "${flags[@]}" --out "$BRES/runtime-$m, $label.json"
}

# Exit status 3 where the build has no llama.cpp tools (a prebuilt folder made without them, as the packaged one is).
tool() {
    [ -x "$BIN/$1" ] || { echo "no $BIN/$1 in this build"; return 3; }
}

diffusion_cli() {
    # The reference: llama.cpp's own diffusion CLI, every step a full pass over prompt + answer (no cache). It
    # puts the prompt through the chat template; the length is the templated prompt + HOLE tokens to generate.
    local n
    tool llama-diffusion-cli || return
    n=$(limited node "$KIT/runtime-bench.js" write-prompt "$PROMPT" "$WORK/prompt.txt" --model-file "$DREAM" --gpu-layers "$NGL") || return 1
    limited "$BIN/llama-diffusion-cli" -m "$DREAM" -f "$WORK/prompt.txt" -ub $((n + HOLE)) -b $((n + HOLE)) -c $((n + HOLE)) \
        -ngl "$NGL" -t "$THREADS" --diffusion-steps "$HOLE" --diffusion-eps 0.001 2>&1 | tee "$BRES/diffusion-cli.log" | tail -5
}

llama_bench() {
    # pp at depth 0 for the prompt, tg at depth = context for the answer: the autoregressive infill time is
    # PP/pp + TG/tg (bench-gpu-report.py); flash attention off and on.
    tool llama-bench || return
    limited "$BIN/llama-bench" -m "$QWEN" -p "$PP" -n "$TG" -d "0,$PP" -fa 0,1 -ngl "$NGL" -t "$THREADS" -r 3 -o json >"$BRES/llama-bench.json"
}

lsp_mode() {
    local m=$1 err=$BRES/lsp-$1.err
    limited node "$JS/server/src/cli/main.js" bench --model "$DREAM" --compare "$m" --gpu-layers "$NGL" --threads "$THREADS" \
        --context-tokens "$LSP_CONTEXT" --bursts "$BURSTS" --file "$ROOT/server/src/holes.ts" --json "$BRES/lsp-$m.json" 2>"$err"
    local rc=$?
    tr '\r' '\n' <"$err" >&2
    grep -q "bad configuration" "$err" && return 3
    return $rc
}

# A backend's build and the check that it runs on its own device; a failure skips the backend's other sections.
prepare() {
    use_backend "$1"
    section build build
    [ "$SECTION_STATUS" = ok ] || BROKEN[$BACKEND]="no $BACKEND build"
    section devices devices
    [ "$SECTION_STATUS" = ok ] || BROKEN[$BACKEND]=${BROKEN[$BACKEND]:-"no $BACKEND device"}
}

BACKEND=
section unpack unpack
prepare "${BACKENDS[0]}"
BACKEND=
section models models
use_backend "${BACKENDS[0]}"
section llama-bench llama_bench
for m in $RUNTIME_MODES; do section "runtime $m" runtime_mode "$m"; done
for m in $LSP_MODES; do section "lsp $m" lsp_mode "$m"; done
section llama-diffusion-cli diffusion_cli
# The other backends: their runtime modes and llama-bench first, the rest after.
for b in "${BACKENDS[@]:1}"; do
    prepare "$b"
    for m in $RUNTIME_MODES; do section "runtime $m" runtime_mode "$m"; done
    section llama-bench llama_bench
done
for b in "${BACKENDS[@]:1}"; do
    use_backend "$b"
    for m in $LSP_MODES; do section "lsp $m" lsp_mode "$m"; done
    section llama-diffusion-cli diffusion_cli
done
# What each part of the cached step is worth on each backend (the budget cuts these first).
for b in "${BACKENDS[@]}"; do
    use_backend "$b"
    for v in $VARIANTS; do
        case $v in
            reductions) section "runtime dual, reductions off" runtime_variant "reductions off" dual -- --reductions off ;;
            graph-reuse) section "runtime dual, graph reuse off" runtime_variant "graph reuse off" dual LLAMA_GRAPH_REUSE_DISABLE=1 ;;
            # (The dry run's CPU backend stands in for CUDA.)
            cuda-graphs) [ "$b" = vulkan ] || section "runtime dual, CUDA graphs off" runtime_variant "CUDA graphs off" dual GGML_CUDA_DISABLE_GRAPHS=1 ;;
        esac
    done
done
log "done in $(($(date +%s) - START)) s"
cat "$OUT/bench-gpu.md"

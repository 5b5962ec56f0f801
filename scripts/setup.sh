#!/usr/bin/env bash
# The install command: Debian build tools if missing, npm dependencies, the native addon, the TypeScript build.
# Safe to rerun: npm ci runs only when package-lock.json changed, the addon rebuilds only when its inputs changed.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for pair in cmake:cmake ninja:ninja-build g++:g++ git:git shellcheck:shellcheck; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
# dream-coder eval runs the HumanEval tests with Debian's python3 (a pyenv or conda python on PATH is not it).
[ -x /usr/bin/python3 ] || missing+=(python3)
# test/native/portable.test.ts runs the .vsix's packaged CPU builds on emulated CPUs without AVX-512 or AVX.
if [ "$(uname -m)" = x86_64 ] && ! command -v qemu-x86_64 >/dev/null; then
    missing+=(qemu-user)
fi
# test/e2e/vsix.test.ts runs the packaged runtime in minimal Debian 11 and 12 systems that debootstrap makes.
[ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
# The packaged Vulkan runtime: the Vulkan headers and loader, the shader compiler and SPIR-V headers to build it, and
# lavapipe (Mesa's Vulkan driver on the CPU) that test/native/vulkan.test.ts and the .vsix test run it on.
command -v glslc >/dev/null || missing+=(glslc)
[ -f /usr/include/vulkan/vulkan.h ] || missing+=(libvulkan-dev)
[ -d /usr/include/spirv ] || missing+=(spirv-headers)
compgen -G "/usr/share/vulkan/icd.d/lvp_icd.*.json" >/dev/null || missing+=(mesa-vulkan-drivers)
if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
    else
        echo "missing build tools: ${missing[*]} — install them with: sudo apt-get install ${missing[*]}" >&2
        exit 1
    fi
fi

# node-llama-cpp is used for GGUF reading and downloads only: skip its own binary setup.
export NODE_LLAMA_CPP_SKIP_DOWNLOAD=true
stamp=node_modules/.dream-coder-lockfile
if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    npm ci --no-audit --no-fund
    cp package-lock.json "$stamp"
fi

node scripts/build-native.mjs
# The .vsix's Vulkan build: the tests run it on lavapipe beside the build for this CPU.
node scripts/build-native.mjs --cpu portable --gpu vulkan

# A Python environment at $1 with the pinned requirements $2, rebuilt when they change.
python_env() {
    if [ ! -f "$1/requirements.txt" ] || ! cmp -s "$2" "$1/requirements.txt"; then
        rm -rf "$1"
        python3 -m venv "$1"
        "$1/bin/pip" install --quiet --disable-pip-version-check -r "$2"
        cp "$2" "$1/requirements.txt"
    fi
}
# The training pipeline (train/) runs in its own environment; clang-format and ruff (npm run lint) in a small one.
python_env train/.venv train/requirements.txt
python_env node_modules/.lint-venv scripts/lint-requirements.txt
rm -rf out
npx tsc -p .
# The source the runtime builder compiles on a user's machine (patched llama.cpp, the addon), which the .vsix carries.
node scripts/runtime-source.mjs
node scripts/bundle.mjs

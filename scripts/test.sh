#!/usr/bin/env bash
# The test command (npm test, .ci/run): sets up what is missing, then runs every test file, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Lint and format (biome.json for TypeScript, native/.clang-format for C++, ruff.toml for Python, ShellCheck for
# scripts/): a finding fails the run;
# `npm run format` fixes what it can.
npm run --silent lint
# The real-editor tests need Node 24, code-server and Chromium: installed once, cached outside the clone.
bash scripts/e2e-tools.sh
# The Windows x64 and Linux arm64 runtimes are cross-built and run under Wine and qemu: their tools, cached likewise.
bash scripts/cross-tools.sh
mapfile -t files < <(find out/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 "${files[@]}"

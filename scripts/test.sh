#!/usr/bin/env bash
# The test command (npm test, .ci/run): sets up what is missing, then runs every test file, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mapfile -t files < <(find out/test -name '*.test.js' | sort)
exec node --test --test-concurrency=1 "${files[@]}"

#!/usr/bin/env bash
# npm run package: builds everything (native addon for this machine's CPU, or DREAM_CODER_GPU), bundles the
# client and server minified, and packs dream-coder-VERSION.vsix with only what .vscodeignore lets through.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node scripts/bundle.mjs --production
version=$(node -p 'require("./package.json").version')
out="dream-coder-$version.vsix"
# --no-dependencies: the bundles carry every JavaScript dependency; the addon is a single file.
# --no-rewrite-relative-links: package.json names no repository to point them at; the README's pictures
# (media/readme/) and the docs/ it links to are in the package, so its relative links work where VS Code shows it.
npx vsce package --no-dependencies --no-rewrite-relative-links --out "$out"
npx vsce ls --no-dependencies | sed 's/^/  /'
node scripts/bundle.mjs   # back to the development bundles (source maps) for the tests
echo "$out: $(du -h "$out" | cut -f1) ($(stat -c %s "$out") bytes)"

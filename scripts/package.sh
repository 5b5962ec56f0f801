#!/usr/bin/env bash
# npm run package: builds everything, then the packaged builds of the native addon (native/cpu-builds.json: for any
# x86-64 CPU with AVX2, and for those with AVX-512, not only this one; and a Vulkan build), bundles
# the client and server minified, and packs dream-coder-VERSION.vsix with only what .vscodeignore lets through
# (setup.sh also makes the source archive the runtime builder compiles, native/build/runtime-source.tar.br).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
for build in $(node -p 'Object.keys(require("./native/cpu-builds.json").builds).join(" ")'); do
    node scripts/build-native.mjs --cpu "$build"
done
# The GPU runtime: Vulkan (GPU drivers install its loader), with the portable build's CPU code.
node scripts/build-native.mjs --cpu portable --gpu vulkan
node scripts/bundle.mjs --production
version=$(node -p 'require("./package.json").version')
out="dream-coder-$version.vsix"
# --no-dependencies: the bundles carry every JavaScript dependency; the addon is a single file.
# --no-rewrite-relative-links: package.json names no repository to point them at; the README's pictures
# (media/readme/) and the docs/ it links to are in the package, so its relative links work where VS Code shows it.
# --target: the addons are this platform's (linux-x64 here), so VS Code refuses the .vsix elsewhere, saying why.
target=$(node -p 'process.platform + "-" + process.arch')
npx vsce package --no-dependencies --no-rewrite-relative-links --target "$target" --out "$out"
npx vsce ls --no-dependencies | sed 's/^/  /'
node scripts/bundle.mjs   # back to the development bundles (source maps) for the tests
echo "$out: $(du -h "$out" | cut -f1) ($(stat -c %s "$out") bytes)"

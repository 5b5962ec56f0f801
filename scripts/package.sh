#!/usr/bin/env bash
# npm run package [TARGET...]: a .vsix for each system (default: linux-x64, win32-x64, linux-arm64, darwin-arm64 and
# darwin-x64), dream-coder-TARGET-VERSION.vsix, with the bundled client and server minified and the runtime files that
# system runs (server/src/runtime/native.ts packageRuntimeFiles): this system's packaged CPU builds (native/
# cpu-builds.json: not only for this CPU) and Vulkan build; the others' CPU builds cross-compiled (scripts/build-native.mjs
# --target); for macOS none (its users build the runtime on their Mac). Every package carries the source the runtime
# builder compiles (native/build/runtime-source.tar.br, made by setup.sh). A target that cannot be built here is skipped,
# saying why; each .vsix is checked for carrying exactly its system's runtime files.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
host=$(node -p 'process.platform + "-" + process.arch')
mapfile -t targets < <(if (($#)); then printf '%s\n' "$@"; else node -p 'require("./out/server/src/runtime/native.js").PACKAGE_TARGETS.join("\n")'; fi)
# The cross compilers (and what tests the cross builds), where another system's runtime is asked for: without them
# those targets are skipped.
cross_tools=ok
if printf '%s\n' "${targets[@]}" | grep -qv -e "^$host\$" -e '^darwin-'; then
    bash scripts/cross-tools.sh >/dev/null || cross_tools="the cross compilers are not installed (scripts/cross-tools.sh failed)"
fi
node scripts/bundle.mjs --production
version=$(node -p 'require("./package.json").version')
made=() skipped=()
for target in "${targets[@]}"; do
    builds=$(node -p "Object.keys(require('./native/cpu-builds.json')['${target#*-}']?.builds ?? {}).join(' ')")
    case "$target" in
    darwin-*) ;;
    "$host")
        for build in $builds; do node scripts/build-native.mjs --cpu "$build"; done
        # The GPU runtime: Vulkan (GPU drivers install its loader), with the portable build's CPU code.
        [ "$target" = linux-x64 ] && node scripts/build-native.mjs --cpu portable --gpu vulkan
        ;;
    *)
        if [ ! -f "native/toolchains/$target.cmake" ]; then
            skipped+=("$target: no cross toolchain from $host (native/toolchains/)")
            continue
        elif [ "$cross_tools" != ok ]; then
            skipped+=("$target: $cross_tools")
            continue
        fi
        for build in $builds; do node scripts/build-native.mjs --target "$target" --cpu "$build"; done
        ;;
    esac
    # .vscodeignore lets through what every package carries; this target's runtime files are added to it.
    ignore=$(mktemp)
    cp .vscodeignore "$ignore"
    node -p "require('./out/server/src/runtime/native.js').packageRuntimeFiles('$target').map((f) => '!' + f).join('\n')" >>"$ignore"
    out="dream-coder-$target-$version.vsix"
    # --no-dependencies: the bundles carry every JavaScript dependency; the addon is a single file.
    # --no-rewrite-relative-links: package.json names no repository to point them at; the README's pictures
    # (media/readme/) and the docs/ it links to are in the package, so its relative links work where VS Code shows it.
    # --target: VS Code installs the .vsix only on that system, and the Marketplace offers each system its own.
    npx vsce package --no-dependencies --no-rewrite-relative-links --target "$target" --ignoreFile "$ignore" --out "$out"
    npx vsce ls --no-dependencies --ignoreFile "$ignore" | sed "s/^/  $target: /"
    rm "$ignore"
    node scripts/check-vsix.mjs "$out" "$target"
    made+=("$out: $(du -h "$out" | cut -f1) ($(stat -c %s "$out") bytes)")
done
node scripts/bundle.mjs # back to the development bundles (source maps) for the tests
printf '%s\n' "${made[@]}"
((${#skipped[@]} == 0)) || printf 'skipped %s\n' "${skipped[@]}"

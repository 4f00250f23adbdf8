#!/usr/bin/env bash
# Installs, once, what the real-VS-Code tests need and prints the code-server binary's path:
#   - Debian packages: chromium (driven by playwright-core), libkrb5-dev (code-server's kerberos
#     module builds from source), ripgrep (seeds @vscode/ripgrep's download cache: no GitHub here);
#   - code-server into a cached tool folder outside the project, so `npm install` stays light.
# Recipe and pitfalls: https://github.com/coder/code-server (4.100.3 is the last one that runs on Node 20).
set -euo pipefail
VERSION=4.100.3
TOOLS="${CLIPCURATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/clipcurate-tools}"
DIR="$TOOLS/code-server-$VERSION"
BIN="$DIR/node_modules/.bin/code-server"
DONE="$DIR/.installed"

missing=()
for pkg in chromium libkrb5-dev ripgrep; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  echo "vscode-tools: installing Debian packages: ${missing[*]}" >&2
  $sudo apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq -o DPkg::Lock::Timeout=900 --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -f "$DONE" ]; then
  echo "vscode-tools: installing code-server@$VERSION into $DIR (once)" >&2
  rm -rf "$DIR.partial"
  mkdir -p "$DIR.partial"
  cache="${TMPDIR:-/tmp}/vscode-ripgrep-cache-1.15.11"
  mkdir -p "$cache"
  tar czf "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
  (
    cd "$DIR.partial"
    echo '{ "private": true }' >package.json
    # node-pty's postinstall runs `npx node-gyp`; a user .npmrc with yes=false would cancel it.
    # code-server's postinstall runs nested `npm install`s (VS Code's native modules: kerberos,
    # node-pty, ripgrep, ...), which npm >= 11's allowScripts policy would skip; this pinned tool
    # install is allowed its scripts, through the environment so the nested installs see it too.
    npm_config_yes=true npm_config_unsafe_perm=true npm_config_dangerously_allow_all_scripts=true \
      npm install --no-audit --no-fund "code-server@$VERSION" >&2
    touch .installed
  )
  mv "$DIR.partial" "$DIR"
fi
echo "$BIN"

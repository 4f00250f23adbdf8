#!/usr/bin/env bash
# Installs, once, what the PyTorch example tests (test/python, examples/pytorch) need: Debian's
# python3-torch and python3-numpy for /usr/bin/python3. Does nothing when they import already.
set -euo pipefail
PYTHON=/usr/bin/python3
if "$PYTHON" -c 'import torch, numpy' >/dev/null 2>&1; then
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "python-tools: installing Debian packages python3-torch python3-numpy" >&2
$sudo apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -o DPkg::Lock::Timeout=900 python3-torch python3-numpy >&2
"$PYTHON" -c 'import torch, numpy' || {
  echo "python-tools: $PYTHON still cannot import torch and numpy" >&2
  exit 1
}

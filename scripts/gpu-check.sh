#!/usr/bin/env bash
# One bounded GPU check for a machine with an NVIDIA GPU (CI does not need one):
#   1. makes sure onnxruntime-node has its CUDA provider (ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js,
#      which downloads the CUDA build; skipped with a reason when that is impossible, e.g. offline);
#   2. embeds the bundled 2,000-image demo sample with a ViT-B/32-cost tower on CPU and on CUDA and
#      prints images/s for each, CPU-vs-CUDA embedding agreement and GPU memory (scripts/gpu-check.ts).
# Usage: bash scripts/gpu-check.sh [OUT_DIR]   (OUT_DIR gets gpu-check.txt; the whole run is capped)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-}"
LIMIT="${GPU_CHECK_SECONDS:-480}"
[ -d node_modules ] || npm install --no-audit --no-fund >&2
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  nvidia-smi -L
  if ! node -e "import('./dist/src/compute/ort.js').then(m => process.exit(m.cudaInstalled() ? 0 : 1))"; then
    echo "gpu-check: installing onnxruntime-node's CUDA provider (needs network)"
    timeout 300 env ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js >&2 \
      || echo "gpu-check: could not install the CUDA provider (offline or no CUDA 12 build); CUDA part will be skipped"
  fi
else
  echo "gpu-check: no NVIDIA GPU here (nvidia-smi finds none); running the CPU part only"
fi
timeout "$LIMIT" npx tsx scripts/gpu-check.ts ${OUT:+--out "$OUT"}

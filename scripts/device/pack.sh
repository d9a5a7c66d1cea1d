#!/usr/bin/env bash
# Packs what the GPU machine (the `device` tool) needs to run craftgrad, into .device-carry/
# (git-ignored), on this machine: the GPU machine has nvcc, cmake and PyTorch but no node
# and no registry. Run from the repository root:
#
#   bash scripts/device/pack.sh
#
# then call the device tool with carry [".device-carry"] and a command such as
#
#   bash scripts/device/session.sh gpu-test bench
#
# (stages and their time: see session.sh). Contents: this machine's node binary (xz), and
# one tar.xz of the CUDA build of the addon, dist/ and the run-time node_modules (the
# TypeScript compiler and type packages stay behind: about 25 MB less).
set -euo pipefail
cd "$(dirname "$0")/../.."

# A CUDA build (fails here if nvcc is missing, rather than packing a CPU-only addon).
CRAFTGRAD_CUDA=ON npm run --silent build
node --input-type=module -e "
  const { backendInfo } = await import('./dist/index.js');
  if (!backendInfo().cuda.compiled) { console.error('pack.sh: the addon was built without CUDA'); process.exit(1); }
"

mkdir -p .device-carry
xz -T2 -c "$(command -v node)" > .device-carry/node.xz
tar -cf - --exclude=node_modules/typescript --exclude=node_modules/@types --exclude=node_modules/.cache \
  build/Release/craftgrad.node build/craftgrad-settings.json dist node_modules | xz -T2 -6 > .device-carry/runtime.tar.xz
du -sh .device-carry/* | sed 's/^/pack.sh: /'
echo "pack.sh: working tree that travels (tracked + untracked, not ignored): $(git ls-files -co --exclude-standard -z | du -ch --files0-from=- 2>/dev/null | tail -1 | cut -f1) (limit 64 MiB with .device-carry)"

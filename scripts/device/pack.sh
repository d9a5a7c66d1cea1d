#!/usr/bin/env bash
# Packs what the GPU machine (the `device` tool) needs to run craftgrad into .device-carry/
# (git-ignored), on this machine: the GPU machine has nvcc, cmake and PyTorch but no node
# and no registry. Run from the repository root:
#
#   bash scripts/device/pack.sh
#
# then call the device tool with carry [".device-carry"], timeout_s 600 and the command
#
#   bash scripts/device/session.sh first
#
# (steps, times and what comes back: see session.sh). What it does:
#   1. the CUDA build of the addon, linked against glibc 2.31 (glibc-sysroot.sh fetches it
#      through apt; glibc-2.31.cmake), for sm_90 only (CUDA_ARCHS=80-real;90-real overrides):
#      the GPU machine's glibc is not this machine's;
#   2. test/addon-glibc.test.mjs on it, required to pass (no glibc symbol above 2.31; loads
#      under glibc 2.31's own loader);
#   3. .device-carry/node.xz (this machine's node) and .device-carry/runtime.tar.xz (the
#      addon, dist/, and node_modules without the TypeScript compiler and type packages;
#      node_modules holds cmake-js, node-addon-api and Node's headers (node-api-headers),
#      which session.sh's fallback build on the GPU machine uses);
#   4. checks that the working tree that travels plus .device-carry fit in 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/../.."
[ "$(uname -m)" = x86_64 ] || { echo "pack.sh: the GPU machine is x86-64; this machine is $(uname -m)" >&2; exit 1; }

bash scripts/device/glibc-sysroot.sh > /dev/null
# No MPI: the GPU machine's image lists no MPI library (the device tool's KINDS.md names
# mpi4py only, not seen run), and an addon linked against this machine's libmpi would not
# load without one. NCCL needs none: it is loaded at run time.
CRAFTGRAD_CUDA=ON CRAFTGRAD_MPI=OFF node scripts/build-native.js \
  "--CDCMAKE_TOOLCHAIN_FILE=$PWD/scripts/device/glibc-2.31.cmake" "--CDCRAFTGRAD_CUDA_ARCHS=${CUDA_ARCHS:-90-real}"
npx tsc -p tsconfig.json
node --input-type=module -e "
  const { backendInfo } = await import('./dist/index.js');
  if (!backendInfo().cuda.compiled) { console.error('pack.sh: the addon was built without CUDA'); process.exit(1); }
"
CGTEST_REQUIRE_GLIBC_231=1 node --test test/addon-glibc.test.mjs > /tmp/craftgrad-pack-glibc.tap 2>&1 ||
  { cat /tmp/craftgrad-pack-glibc.tap; echo 'pack.sh: the addon would not load on glibc 2.31 (test/addon-glibc.test.mjs)' >&2; exit 1; }
echo "pack.sh: the addon needs glibc <= $(objdump -T build/Release/craftgrad.node | grep -o 'GLIBC_[0-9.]*' | sort -Vu | tail -1) and loads under glibc 2.31"

mkdir -p .device-carry
rm -f .device-carry/node.xz .device-carry/runtime.tar.xz
xz -T2 -c "$(command -v node)" > .device-carry/node.xz.tmp && mv .device-carry/node.xz.tmp .device-carry/node.xz
# node_modules may be a symlink (a worktree's points at the main checkout's): pack what it
# points to, renamed node_modules, keeping the links inside it.
modules=$(readlink -f node_modules)
tar -cf - build/Release/craftgrad.node build/craftgrad-settings.json dist \
    -C "$modules" --exclude=./typescript --exclude=./@types --exclude=./.cache \
    --transform 's,^\.\(/\|$\),node_modules\1,' . |
  xz -T2 -6 > .device-carry/runtime.tar.xz.tmp
mv .device-carry/runtime.tar.xz.tmp .device-carry/runtime.tar.xz
du -sh .device-carry/* | sed 's/^/pack.sh: /'

# The device tool sends tracked and untracked-but-not-ignored files plus the carried paths:
# 64 MiB at most.
tree=$(git ls-files -co --exclude-standard -z | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
carry=$(du -sb .device-carry | cut -f1)
total=$((tree + carry))
echo "pack.sh: travels $((tree / 1048576)) MiB of working tree + $((carry / 1048576)) MiB of .device-carry = $((total / 1048576)) MiB (limit 64 MiB)"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo 'pack.sh: over the device tool'"'"'s 64 MiB: the call would be refused' >&2
  exit 1
fi

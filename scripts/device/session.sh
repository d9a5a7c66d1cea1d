#!/usr/bin/env bash
# craftgrad's GPU checks, on the GPU machine (the `device` tool), from the repository root,
# after scripts/device/pack.sh here and with carry [".device-carry"]:
#
#   bash scripts/device/session.sh first      one call, about 6 minutes at most (timeout_s 600)
#   bash scripts/device/session.sh sanitize   a second call, only if device time remains
#   bash scripts/device/session.sh bf16       issue #29's bf16 measurements, one call under 8 minutes
#
# `first` = these steps in order, each under its own limit in seconds (with about 10 s of
# unpacking they add up to 6 minutes, so a rerun fits in the session's 15 device minutes):
#   probe      40  glibc, nvidia-smi (name, driver), nvcc, python3/torch; loads the addon. If
#                  the carried addon does not load, build it here with this machine's nvcc
#                  and cmake (up to 300 s more). Stops the session (exit 3) if it still does
#                  not load or backendInfo().cuda.available is false: the GPU tests would
#                  all skip and report success with nothing tested.
#   tests     100  the GPU test files with CGTEST_REQUIRE_GPU=1 (a file whose GPU tests
#                  would skip fails instead), and the Python safetensors interop test;
#                  nccl-cuda.test.mjs runs one NCCL rank with PyTorch's libnccl.so.2 (its
#                  multi-rank tests need mpirun and several GPUs, and skip saying so)
#   readers    35  a 20-step run on the GPU; safetensors.torch reads every checkpoint file
#                  (check_safetensors.py) and TensorBoard's event reader the event file
#                  (check_tensorboard.py), each compared with craftgrad's own
#   torch      30  bench/surgery-cuda-torch.py (the seed's per-tensor PyTorch loop)
#   surgery    55  bench/surgery.js --device cuda --record --sweep-groups (a process per point)
#   optimizer  30  bench/optimizer.js --device cuda --record
#   model      60  bench/model.js --device cuda --steps 10 --record (the built-in model, and
#                  PyTorch's; 10 steps per timing instead of 20, to fit)
# `second` (a second call, after `first`, about 4 minutes) = these steps:
#   peft      40  transformers + peft against craftgrad: a short `train --model` run on the
#                  GPU (scripts/device/peft-run.mjs, a tiny Qwen2 directory), then
#                  check_peft.py loads its adapter with PeftModel.from_pretrained onto
#                  AutoModelForCausalLM and compares the action and retention losses (1e-5)
#   qwen2    180  bench/qwen2.js --device cuda --record (the full 24-layer Qwen2.5-0.5B
#                  shape, and the same model in PyTorch on the same GPU)
# `bf16` (issue #29, one call: with unpacking about 470 s at most, timeout_s 560) = these steps:
#   probe       40  as in `first`
#   tests      100  as in `first` (every test/*-cuda.test.mjs: the bf16 tests too)
#   bf16kernels 60  bench/bf16-cuda.js --device cuda --record: bf16 products at Qwen2.5-0.5B's
#                   and VLA-Adapter's shapes as % of the bf16 peak measured in the run (ours
#                   and torch.matmul on large squares), the fused bf16 attention against SDPA's
#                   flash backend, forward and backward (bench/bf16_torch.py the peer)
#   qwen2bf16  120  bench/qwen2.js --device cuda --precision bf16 --batch 8 --record: the full
#                   Qwen2.5-0.5B CRaFT step in bf16 against PyTorch bf16 autocast, GPU memory
#   vlabf16    140  bench/vla.js --device cuda --precision bf16 --batch 8 --steps 1 --record: the full-size
#                   VLA-Adapter CRaFT step in bf16 against PyTorch bf16 autocast, GPU memory
# `sanitize` (300 s) = compute-sanitizer memcheck over test/cuda.test.mjs without the
#   2^31-element case. Single steps can be named too: `session.sh probe readers`.
#
# $OUT gets (the device tool returns at most 8 files): probe.log, tests.log, readers.log,
# bench.log, surgery-torch.json, RESULTS.md (bench/RESULTS.md with the sections measured
# here), summary.md (the table printed last); sanitize.log. Then, on the CPU machine, copy
# the measured sections of $OUT/RESULTS.md into bench/RESULTS.md.
#
# Options, before the stages: --rehearse tries this script on a machine without a GPU (the
# probe notes the missing GPU instead of stopping; the tiny run trains on the CPU; the bf16
# steps run their --tiny rehearsals, which the CUDA emulator's kit can run);
# --rebuild builds the addon here even when the carried one loads; --reader numpy reads
# the checkpoints with safetensors.numpy where PyTorch is missing; --time-factor N multiplies
# every step's limit (for a rerun of a step that ran out of time). (Only CRAFTGRAD_*
# variables the CLI knows, src/cli/native-env.ts: it would take others for options.)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/craftgrad-out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
# Bookkeeping outside $OUT (the device tool returns at most 8 files from there).
work=/tmp/craftgrad-session
rm -rf "$work"; mkdir -p "$work"
steps_file="$work/steps.tsv"  # name, exit status, seconds per step (for summary.mjs)
rehearse=0 rebuild=0 reader=torch time_factor=1
status=0

say() { echo "session.sh: $*"; }

unpack() {  # node, and the addon + dist/ + node_modules that pack.sh made
  local kit=.device-carry
  if [ ! -f "$kit/node.xz" ] || [ ! -f "$kit/runtime.tar.xz" ]; then
    say "$kit/ is missing: run 'bash scripts/device/pack.sh' on the CPU machine and call the device tool with carry [\".device-carry\"]" >&2
    exit 2
  fi
  mkdir -p /tmp/craftgrad-node/bin
  xz -dc "$kit/node.xz" > /tmp/craftgrad-node/bin/node && chmod +x /tmp/craftgrad-node/bin/node || { say "cannot unpack $kit/node.xz" >&2; exit 2; }
  export PATH=/tmp/craftgrad-node/bin:$PATH
  tar -xJf "$kit/runtime.tar.xz" || { say "cannot unpack $kit/runtime.tar.xz" >&2; exit 2; }
}

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >> "$steps_file"; }

# step NAME SECONDS LOG COMMAND...: COMMAND under `timeout`, its output appended to
# $OUT/LOG and shown; the exit status and seconds go to the summary. Returns the status.
step() {
  local name=$1 limit=$2 log=$3; shift 3
  local t0=$SECONDS rc
  limit=$((limit * time_factor))
  echo "=== $name (limit ${limit} s): $*" | tee -a "$OUT/$log"
  # bash -c: COMMAND may be one of the functions exported below.
  timeout -k 5 "$limit" bash -c '"$@"' "$name" "$@" 2>&1 | tee -a "$OUT/$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then echo "=== $name: stopped at its ${limit} s limit" | tee -a "$OUT/$log"; fi
  [ "$rc" -eq 0 ] || { echo "=== $name: exit $rc" | tee -a "$OUT/$log"; status=1; }
  record "$name" "$rc" "$((SECONDS - t0))"
  return "$rc"
}

# ---- probe ----
backend_info() {  # backendInfo() as JSON; fails if the addon does not load
  timeout 10 node --input-type=module -e "
    const { backendInfo } = await import('./dist/index.js');
    console.log(JSON.stringify(backendInfo()));"
}

build_here() {  # the fallback: this machine's nvcc, cmake and g++, for its own GPU only
  local cc archs
  cc=$(timeout 15 nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
  archs=${cc:+${cc}-real}
  archs=${archs:-${CUDA_ARCHS:-}}  # no nvidia-smi (a rehearsal): CUDA_ARCHS, else the build's default
  say "building the addon here: nvcc $(nvcc --version 2>/dev/null | grep -o 'release [0-9.]*'), $(cmake --version 2>/dev/null | head -1), $(g++ --version 2>/dev/null | head -1), architectures ${archs:-(the build default)}"
  CRAFTGRAD_CUDA=ON timeout -k 5 300 node scripts/build-native.js ${archs:+--CDCRAFTGRAD_CUDA_ARCHS=$archs}
}

probe() {
  echo "glibc: $(getconf GNU_LIBC_VERSION 2>&1) ($(ldd --version 2>&1 | head -1))"
  echo "kernel: $(uname -r); cpus: $(nproc)"
  echo "nvidia-smi: $(timeout 10 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader 2>&1 | head -1)"
  echo "nvcc: $(nvcc --version 2>&1 | grep -o 'release [0-9.]*' || echo 'not found')"
  echo "python3: $(timeout 20 python3 -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"
  echo "node: $(node --version) ($(command -v node))"
  local info origin=carried
  if [ "$rebuild" = 1 ]; then
    origin='built here (--rebuild)'
  elif ! info=$(backend_info 2> "$work/load-error"); then
    say "the carried addon does not load: $(tail -3 "$work/load-error")"
    origin='built here (the carried one did not load)'
  fi
  if [ "$origin" != carried ]; then
    build_here || { say "the build here failed"; return 3; }
    info=$(backend_info 2> "$work/load-error") || { say "the addon built here does not load either: $(tail -3 "$work/load-error")"; return 3; }
  fi
  echo "addon: $origin"
  echo "backendInfo(): $info"
  node -e "
    const c = JSON.parse(process.argv[1]).cuda;
    if (!c.compiled) { console.error('session.sh: the addon has no CUDA backend'); process.exit(3); }
    if (!c.available) { console.error('session.sh: CUDA is not usable: ' + c.reason + ' (every GPU test would skip)'); process.exit(3); }
    console.log('CUDA: ' + c.devices.map((d) => d.name + ' (sm ' + d.computeCapability + ')').join(', ') + '; driver ' + c.driverVersion + ', runtime ' + c.runtimeVersion);
  " "$info"
}

run_probe() {  # not under one `timeout`: the fallback build has its own limit
  local t0=$SECONDS rc
  echo "=== probe" | tee -a "$OUT/probe.log"
  probe 2>&1 | tee -a "$OUT/probe.log"
  rc=${PIPESTATUS[0]}
  record probe "$rc" "$((SECONDS - t0))"
  [ "$rc" -eq 0 ] && return 0
  status=1
  if [ "$rehearse" = 1 ]; then say "rehearsal (--rehearse): going on without a usable GPU"; return 0; fi
  summary
  say "STOPPED: the addon does not load or CUDA is not usable on this machine (probe.log above); nothing was tested" >&2
  exit 3
}

# ---- the other steps ----
# Every GPU test file: test/cuda.test.mjs and each test/*-cuda.test.mjs (a new one, such as the
# bf16 tests of #29, is picked up without editing this list).
gpu_tests=(test/cuda.test.mjs test/*-cuda.test.mjs)

# NCCL for test/nccl-cuda.test.mjs's one-rank check: the image has no system libnccl, but
# PyTorch's nvidia-nccl wheel carries one (its folder differs between CUDA 12 and 13 wheels).
if [ -z "${CRAFTGRAD_NCCL_LIBRARY:-}" ]; then
  nccl_lib=$(timeout 20 python3 -c 'import nvidia, os; print("\n".join(nvidia.__path__))' 2>/dev/null |
    while read -r d; do find "$d" -name 'libnccl.so.2' 2>/dev/null; done | head -1)
  [ -n "$nccl_lib" ] && export CRAFTGRAD_NCCL_LIBRARY=$nccl_lib
fi

# cuBLASLt for test/cublaslt-cuda.test.mjs's bf16 products: the toolkit's, else PyTorch's
# nvidia-cublas wheel (native/cublaslt looks in both itself; this names the wheel's file when
# python3's prefix is not one it searches).
if [ -z "${CRAFTGRAD_CUBLASLT_LIBRARY:-}" ] && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ] && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.12 ]; then
  cublaslt_lib=$(timeout 20 python3 -c 'import nvidia, os; print("\n".join(nvidia.__path__))' 2>/dev/null |
    while read -r d; do find "$d" -name 'libcublasLt.so.1[23]' 2>/dev/null; done | sort -r | head -1)
  [ -n "$cublaslt_lib" ] && export CRAFTGRAD_CUBLASLT_LIBRARY=$cublaslt_lib
fi

run_tests() {
  local require=1
  [ "$rehearse" = 1 ] && require=0
  step tests 100 tests.log env CGTEST_REQUIRE_GPU=$require node --test "${gpu_tests[@]}" test/formats-safetensors.test.mjs
}

readers() {  # a tiny run on the GPU, then the two independent Python readers
  local runs=$work/readers device=cuda
  [ "$rehearse" = 1 ] && device=auto
  rm -rf "$runs"
  node bin/craftgrad.js train --device "$device" --steps 20 --save-every 10 --val-every 10 --log-every 1 \
    --width 64 --tokens 8 --blocks 2 --head-width 64 --batch-size 8 --out "$runs" --name readers --quiet || return 1
  node scripts/device/dump-checkpoints.mjs "$runs/readers" > "$runs/craftgrad-checkpoints.json" || return 1
  local rc=0
  python3 scripts/device/check_safetensors.py "$runs/readers" "$runs/craftgrad-checkpoints.json" --reader "$reader" || rc=1
  python3 scripts/device/check_tensorboard.py "$runs/readers" || rc=1
  return $rc
}

peft_check() {  # craftgrad's run and losses, then transformers + peft on the same checkpoint
  local device=cuda
  [ "$rehearse" = 1 ] && device=auto
  node scripts/device/peft-run.mjs "$work/peft" "$device" > "$work/peft.json" || return 1
  python3 scripts/device/check_peft.py "$work/peft.json"
}

torch_loop() {  # the JSON lands in $OUT only when complete (the surgery step reads it)
  python3 bench/surgery-cuda-torch.py --reps 20 > "$work/surgery-torch.json" && mv "$work/surgery-torch.json" "$OUT/"
}

surgery_bench() {
  local torch_json=()
  [ -s "$OUT/surgery-torch.json" ] && torch_json=(--torch-json "$OUT/surgery-torch.json")
  node bench/surgery.js --device cuda "${torch_json[@]}" --record --sweep-groups
}

sanitize() {  # memcheck; the 2^31-element case would take too long under it
  # CGTEST_REQUIRE_GPU: a device the sanitizer refuses would otherwise skip every test.
  CGTEST_REQUIRE_GPU=1 CGTEST_SKIP_2G=1 compute-sanitizer --tool memcheck --target-processes all --error-exitcode 99 \
    node --test --test-concurrency=1 test/cuda.test.mjs
}

summary() { node scripts/device/summary.mjs "$OUT" "$steps_file" | tee "$OUT/summary.md"; }
export OUT rehearse reader work
export -f readers torch_loop surgery_bench sanitize

# ---- main ----
while [ $# -gt 0 ]; do
  case "$1" in
    --rehearse) rehearse=1 ;;
    --rebuild) rebuild=1 ;;
    --reader) reader=${2:-}; shift ;;
    --time-factor) time_factor=${2:-}; shift
      [[ "$time_factor" =~ ^[1-9][0-9]*$ ]] || { say "--time-factor takes a whole number >= 1" >&2; exit 2; } ;;
    *) break ;;
  esac
  shift
done
[ $# -gt 0 ] || { awk 'NR > 1 && !/^#/ { exit } NR > 1' "$0"; exit 2; }  # the header above
stages=()
for arg in "$@"; do
  case "$arg" in
    first) stages+=(probe tests readers torch surgery optimizer model) ;;
    second) stages+=(peft qwen2) ;;
    bf16) stages+=(probe tests bf16kernels qwen2bf16 vlabf16) ;;
    probe|tests|readers|torch|surgery|optimizer|model|peft|qwen2|sanitize|bf16kernels|qwen2bf16|vlabf16) stages+=("$arg") ;;
    *) say "unknown stage '$arg' (first, second, bf16, sanitize, probe, tests, readers, torch, surgery, optimizer, model, peft, qwen2, bf16kernels, qwen2bf16, vlabf16)" >&2; exit 2 ;;
  esac
done
# The bf16 steps record; a rehearsal (--rehearse) runs their --tiny variants instead (every
# code path at test widths on whatever CUDA device there is, the emulator included; never
# recorded), the step benchmarks at batch 1.
if [ "$rehearse" = 1 ]; then kernels_mode=(--tiny); qwen2_mode=(--tiny --batch 1 --steps 1); vla_mode=(--tiny --batch 1 --steps 1)
else kernels_mode=(--record); qwen2_mode=(--batch 8 --record); vla_mode=(--batch 8 --steps 1 --record); fi
unpack
[ "${stages[0]}" = probe ] || run_probe  # every call checks the GPU first
for s in "${stages[@]}"; do
  case "$s" in
    probe) run_probe ;;
    tests) run_tests ;;
    readers) step readers 35 readers.log readers ;;
    torch) step torch 30 bench.log torch_loop ;;
    surgery) step surgery 55 bench.log surgery_bench ;;
    optimizer) step optimizer 30 bench.log node bench/optimizer.js --device cuda --record ;;
    model) step model 60 bench.log node bench/model.js --device cuda --steps 10 --record ;;
    peft) step peft 40 readers.log peft_check ;;
    qwen2) step qwen2 180 bench.log node bench/qwen2.js --device cuda --record ;;
    sanitize) step sanitize 300 sanitize.log sanitize ;;
    bf16kernels) step bf16kernels 60 bench.log node bench/bf16-cuda.js --device cuda "${kernels_mode[@]}" ;;
    qwen2bf16) step qwen2bf16 120 bench.log node bench/qwen2.js --device cuda --precision bf16 "${qwen2_mode[@]}" ;;
    vlabf16) step vlabf16 140 bench.log node bench/vla.js --device cuda --precision bf16 "${vla_mode[@]}" ;;
  esac
done
if grep -qP '^(surgery|optimizer|model|qwen2|bf16kernels|qwen2bf16|vlabf16)\t' "$steps_file"; then cp bench/RESULTS.md "$OUT/RESULTS.md"; fi
summary
exit $status

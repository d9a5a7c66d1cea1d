#!/usr/bin/env bash
# Runs craftgrad's GPU checks on the GPU machine (the `device` tool), from the repository
# root, after scripts/device/pack.sh here and with carry [".device-carry"]:
#
#   bash scripts/device/session.sh STAGE...
#
# Stages (each tees its log into $OUT; one device call runs at most 10 minutes, so split
# the stages over calls if a run gets near that):
#   info      nvidia-smi and backendInfo() (always run first)                  ~10 s
#   gpu-test  the GPU test files (test/cuda, model-cuda, train-cuda) and the Python
#             safetensors interop test, which the CPU machine cannot run            ~1-2 min
#   test      the whole suite (npm test), on a machine where --device auto means the GPU ~2 min
#   sanitize  compute-sanitizer memcheck, then racecheck, over the GPU test files      ~3-5 min
#   bench     surgery (craftgrad vs the PyTorch loop vs the HBM floor), model, optimizer,
#             all with --record; bench/RESULTS.md comes back in $OUT                 ~3-5 min
# Then here: copy the sections of $OUT/RESULTS.md you measured into bench/RESULTS.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/craftgrad-out}
mkdir -p "$OUT"
kit=.device-carry
if [ ! -f "$kit/node.xz" ] || [ ! -f "$kit/runtime.tar.xz" ]; then
  echo "session.sh: $kit/ is missing: run 'bash scripts/device/pack.sh' on the CPU machine and carry .device-carry" >&2
  exit 2
fi
mkdir -p /tmp/craftgrad-node/bin
xz -dc "$kit/node.xz" > /tmp/craftgrad-node/bin/node && chmod +x /tmp/craftgrad-node/bin/node
export PATH=/tmp/craftgrad-node/bin:$PATH
tar -xJf "$kit/runtime.tar.xz"
export PYTHONUNBUFFERED=1

status=0
run() {  # run NAME COMMAND...: tee into $OUT/NAME.log, remember a failure
  local name=$1; shift
  echo "=== $name: $*"
  "$@" 2>&1 | tee -a "$OUT/$name.log"
  local rc=${PIPESTATUS[0]}
  [ "$rc" -eq 0 ] || { echo "=== $name: exit $rc"; status=1; }
}

gpu_tests=(test/cuda.test.mjs test/model-cuda.test.mjs test/train-cuda.test.mjs)
run info nvidia-smi
run info node -e "import('./dist/index.js').then((m) => console.log(JSON.stringify(m.backendInfo(), null, 1)))"
for stage in "$@"; do
  case "$stage" in
    info) ;;
    gpu-test) run gpu-test node --test "${gpu_tests[@]}" test/formats-safetensors.test.mjs ;;
    test) run test node --test test/*.test.mjs ;;
    sanitize)
      for tool in memcheck racecheck; do
        run sanitize compute-sanitizer --tool "$tool" --target-processes all --error-exitcode 99 \
          node --test --test-concurrency=1 "${gpu_tests[@]}"
      done ;;
    bench)
      echo "=== bench: python3 bench/surgery-cuda-torch.py (stderr into bench.log)"
      torch_json=()
      if python3 bench/surgery-cuda-torch.py --reps 20 > "$OUT/surgery-torch.json" 2>> "$OUT/bench.log"; then
        torch_json=(--torch-json "$OUT/surgery-torch.json")
      else
        echo "=== bench: the PyTorch surgery loop failed (see bench.log)"; status=1
      fi
      run bench node bench/surgery.js --device cuda "${torch_json[@]}" --record --sweep-groups
      run bench node bench/model.js --device cuda --record
      run bench node bench/optimizer.js --device cuda --record
      cp bench/RESULTS.md "$OUT/RESULTS.md" ;;
    *) echo "session.sh: unknown stage '$stage' (info, gpu-test, test, sanitize, bench)" >&2; status=2 ;;
  esac
done
exit $status

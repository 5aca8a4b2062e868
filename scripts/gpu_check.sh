#!/usr/bin/env bash
# GPU check: one command for a lent GPU machine, about 10 minutes in all.
#
# Prints the GPU (nvidia-smi) and the torch / CUDA versions, then runs
#   1. the CUDA tests across the repository (pytest -m "not slow" -k "cuda or CUDA"),
#   2. `kd2m-ref verify resnet --profile smoke --device cuda`,
#   3. `kd2m-ref bench --device cuda` (BENCH=quick by default, BENCH=full, or BENCH=none to skip), writing
#      benchmarks/results/<profile>-cuda/ (commit it: the book's performance page shows it),
#   4. only when KD2M_DATA_ROOT and KD2M_DATASET are set: the paper-recipe full profile on that dataset
#      (resumable from its checkpoints, so a run cut short by the time limit can be continued).
# Every step runs under `timeout` (smoke steps 300 s at most) within a total budget of
# GPU_CHECK_BUDGET_S seconds (default 570), and its wall time is printed. Results and the log go
# to ${OUT:-/tmp/gpu_check}. Exit status: 0 when every step passed, 1 otherwise.
#
# Usage (from anywhere):  scripts/gpu_check.sh
#   PYTHON=...            interpreter (default .venv/bin/python)
#   DEVICE=cpu BENCH=none scripts/gpu_check.sh   # rehearsal on a CPU machine (the CUDA tests skip)
#   KD2M_DATASET=cifar10 KD2M_DATA_ROOT=/data/cifar scripts/gpu_check.sh   # adds step 4
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-.venv/bin/python}
export PYTHONPATH=.
OUT_DIR=${OUT:-/tmp/gpu_check}
BUDGET_S=${GPU_CHECK_BUDGET_S:-570}
DEADLINE=$((SECONDS + BUDGET_S))
mkdir -p "$OUT_DIR"
exec > >(tee -a "$OUT_DIR/gpu_check.log") 2>&1

failed=()

# step NAME MAX_SECONDS COMMAND...: run COMMAND under timeout (MAX_SECONDS or the budget left,
# whichever is smaller), print its exit status and wall time, record a failure.
step() {
    local name=$1 limit=$2 left=$((DEADLINE - SECONDS)) rc=0 start
    shift 2
    if ((left < limit)); then limit=$left; fi
    if ((limit < 30)); then
        echo "== $name: skipped, ${left} s of the budget left"
        failed+=("$name (no time left)")
        return 0
    fi
    echo "== $name (at most ${limit} s): $*"
    start=$(date +%s%N)
    timeout --kill-after=15 "$limit" "$@" || rc=$?
    local tenths=$((($(date +%s%N) - start) / 100000000))
    echo "== $name: exit $rc after $((tenths / 10)).$((tenths % 10)) s"
    if ((rc == 124 || rc == 137)); then failed+=("$name (timed out after ${limit} s)");
    elif ((rc != 0)); then failed+=("$name (exit $rc)"); fi
    return 0
}

echo "== gpu_check $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname), budget ${BUDGET_S} s, results in $OUT_DIR"
if command -v nvidia-smi >/dev/null; then nvidia-smi || true; else echo "nvidia-smi: not found"; fi
DEVICE=${DEVICE:-cuda}
DEVICE="$DEVICE" "$PYTHON" - <<'PY'
import os
import sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
if os.environ["DEVICE"] != "cpu" and not torch.cuda.is_available():
    sys.exit("torch sees no CUDA device: nothing to check here (DEVICE=cpu rehearses the script on the CPU)")
for i in range(torch.cuda.device_count()):
    print(f"cuda:{i} {torch.cuda.get_device_name(i)}")
PY

step "CUDA tests" 300 env CI=true "$PYTHON" -m pytest -q -p no:cacheprovider -rs -m "not slow" -k "cuda or CUDA" tests
step "resnet smoke on $DEVICE" 300 "$PYTHON" -m kd2m_ref.cli verify resnet --profile smoke --device "$DEVICE" \
    --out "$OUT_DIR/resnet-smoke" --no-progress
if [[ "${BENCH:-quick}" != none ]]; then
    step "benchmarks on $DEVICE (${BENCH:-quick})" 400 "$PYTHON" -m kd2m_ref.cli bench --device "$DEVICE" --no-progress \
        $([[ "${BENCH:-quick}" == quick ]] && echo --quick)
fi
if [[ -n "${KD2M_DATA_ROOT:-}" && -n "${KD2M_DATASET:-}" ]]; then
    step "resnet full ($KD2M_DATASET, paper recipe) on $DEVICE" "$BUDGET_S" "$PYTHON" -m kd2m_ref.cli verify resnet \
        --profile full --dataset "$KD2M_DATASET" --root "$KD2M_DATA_ROOT" --recipe paper --device "$DEVICE" \
        --out "$OUT_DIR/resnet-full-$KD2M_DATASET" --no-progress
else
    echo "== resnet full: skipped (set KD2M_DATA_ROOT and KD2M_DATASET to run it)"
fi

if ((${#failed[@]})); then
    printf '== FAILED: %s\n' "${failed[@]}"
    exit 1
fi
echo "== all steps passed in $SECONDS s"

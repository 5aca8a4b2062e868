#!/usr/bin/env bash
# One call on a GPU machine: the CUDA tests, then `kd2m-ref bench` on the GPU, writing the same JSON and
# figures as on the CPU under benchmarks/results/<profile>-cuda (commit them; the book shows them).
#   bash benchmarks/gpu.sh            # quick profile (a few minutes)
#   bash benchmarks/gpu.sh full       # the full grid
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${1:-quick}
PY=${PYTHON:-.venv/bin/python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
"$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__, torch.version.cuda)"
"$PY" -m pytest -q -rs -k cuda tests   # every test parametrised by the `device` fixture, on cuda
"$PY" -m kd2m_ref.cli bench --device cuda --no-progress $([ "$PROFILE" = quick ] && echo --quick)

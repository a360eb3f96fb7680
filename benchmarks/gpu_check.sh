#!/usr/bin/env bash
# The GPU check: everything this course claims about GPUs, measured in one go (sized for 10 minutes
# on one H100; not yet run on one). Run it from the repository root, with the Python that has
# torch (a venv's, or the system's):
#
#   bash benchmarks/gpu_check.sh              # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_check.sh --dry-run    # anywhere: the same steps on tiny inputs, results to a temp dir
#
# 1. tests/test_gpu.py (bf16 + torch.compile epoch, checkpoint, resume, reload, no host waits, DDP);
# 2. benchmarks/run.py: parity with torchvision on the GPU, the speed ladder, the trainer against a
#    plain loop, and the full recipe to 94% over 3 seeds for a few epoch counts (--budget seconds);
#    it writes benchmarks/results/<gpu>.json and .md and the README's results section.
# CIFAR-10 comes from $RESNET_EDU_DATA, else data/cifar10-jpeg.tar.gz in the repository (not
# committed: copy it there to carry it to a machine without internet), else the usual search.
# Nothing is installed: the packages must be there (torch, torchvision, numpy, pillow, tqdm, pytest).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
[ -z "${RESNET_EDU_DATA:-}" ] && [ -f data/cifar10-jpeg.tar.gz ] && export RESNET_EDU_DATA=data/cifar10-jpeg.tar.gz
DRY=${1:-}
status=0
step() { echo; echo "== $1 ($(date +%T))"; }

step "hardware and versions"
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
"$PYTHON" -c "import torch, torchvision; print('torch', torch.__version__, '| torchvision', torchvision.__version__,
'| CUDA GPUs:', torch.cuda.device_count(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"

step "GPU tests"
"$PYTHON" -m pytest tests/test_gpu.py -o addopts="" -p no:cacheprovider -q -rs || status=1

step "benchmarks"
if [ "$DRY" = "--dry-run" ]; then
  "$PYTHON" benchmarks/run.py --smoke --out "$(mktemp -d)" || status=1
else
  "$PYTHON" benchmarks/run.py --only parity --only ladder --only loop --only recipe --devices cuda \
    --repeats 5 --steps 10 --warmup 3 --seeds 3 --budget 240 || status=1
fi

step "done: exit status $status"
exit $status

#!/usr/bin/env bash
# The stored networks of notebook 06 at a GPU's length: plain-20, plain-56, ResNet-20 and ResNet-56
# trained by benchmarks/train_networks.py for 40 epochs each (the paper's 45,000/5,000 split,
# 14,080 steps of 128 images per network, 22% of the paper's 64,000), replacing the CPU-trained
# files in resnet_edu/trained_networks/; each record's provenance names the GPU. Run it from the
# repository root after benchmarks/gpu_check.sh, with the Python that has torch:
#
#   bash benchmarks/gpu_networks.sh               # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_networks.sh --dry-run     # anywhere: the same harness on 1,000 images, to a temp dir
#
# Sizing before it has run (not a measurement): one training image costs 3 x 2 x 125.5 M = 753 MFLOP
# in ResNet-56 and 243 MFLOP in ResNet-20 (forward MACs from resnet_edu.measure.count_macs, backward
# about twice forward), so 40 epochs of the four networks are 3.6 PFLOP. The 2-core AMD EPYC ran
# ResNet-56 at 541 images/s in bf16 (about 0.4 TFLOP/s); at 5% of an H200's rated bf16 (about
# 40 TFLOP/s, channels of 16 to 64 keep it small) the arithmetic takes 90 s, and at about 600
# kernel launches a step (4 to 6 us each) the 56,320 steps take 2 to 6 minutes: about 5 minutes in
# all, inside the device tool's 10-minute limit. CIFAR-10 as for gpu_check.sh: $RESNET_EDU_DATA,
# else data/cifar10-jpeg.tar.gz in the repository (copy it there to carry it; it is not committed).
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
[ -z "${RESNET_EDU_DATA:-}" ] && [ -f data/cifar10-jpeg.tar.gz ] && export RESNET_EDU_DATA=data/cifar10-jpeg.tar.gz
nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
if [ "${1:-}" = "--dry-run" ]; then
  tmp=$(mktemp -d)
  exec "$PYTHON" benchmarks/train_networks.py --smoke --epochs 2 --only resnet20 --out "$tmp/out" --runs "$tmp/runs"
fi
exec "$PYTHON" benchmarks/train_networks.py --epochs "${EPOCHS:-40}" --runs runs/train_networks_gpu

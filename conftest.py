"""pytest's set-up for the whole repository.

The notebooks' stored outputs were made on a CPU. On a machine with a GPU, notebook 05 would pick
the GPU and its full recipe and print other figures, so nbval runs every notebook on the CPU
(resnet_edu.runtime.choose_device reads RESNET_EDU_DEVICE; the kernels inherit it). Tests that
need a GPU ask for it by name (tests/test_gpu.py).

The data: the tests and the notebooks' kernels find CIFAR-10 as a learner's machine would (the
cache directory, or torchvision's download), or through RESNET_EDU_DATA. This project's build
machines keep an offline copy beside the repository, at ../shared/data/cifar10-jpeg.tar.gz: when it
is there (and RESNET_EDU_DATA is not set) this file names it. Without any copy on the machine, the
notebooks that train on CIFAR-10 are skipped with the reason, as the tests that need it are.
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("RESNET_EDU_DEVICE", "cpu")

# Notebooks 05 and 06 train on a CPU; at full size that takes 2 minutes each where the CPU has bf16
# arithmetic and over 10 where it computes in fp32. The test command runs them on part of the data
# (the notebooks' own trial-run switch, RESNET_EDU_SUBSET), so that it takes minutes on any 2-core
# CPU; what their cells must show at that size is asserted in the cells, and their compared outputs
# do not depend on it. Set RESNET_EDU_SUBSET=0 to test them at full size, as the stored outputs were made.
TEST_SUBSET = "5000"
os.environ.setdefault("RESNET_EDU_SUBSET", TEST_SUBSET)

# The notebooks write their checkpoints under runs/; the tests' runs go to a folder of their own,
# so that running the tests never replaces a checkpoint a learner trained (resnet_edu.files.runs_folder).
if not os.environ.get("RESNET_EDU_RUNS"):
    os.environ["RESNET_EDU_RUNS"] = tempfile.mkdtemp(prefix="resnet_edu_test_runs_")
    atexit.register(shutil.rmtree, os.environ["RESNET_EDU_RUNS"], ignore_errors=True)

BESIDE = Path(__file__).resolve().parent.parent / "shared" / "data" / "cifar10-jpeg.tar.gz"
if BESIDE.exists():
    os.environ.setdefault("RESNET_EDU_DATA", str(BESIDE))

NEEDS_DATA = ("05_", "06_", "07_")  # the notebooks that load CIFAR-10 (load_cifar10)


def pytest_collection_modifyitems(config, items):
    """Mark the cells of notebooks 05-07 skipped when CIFAR-10 cannot be found without downloading."""
    needing = [item for item in items if item.path.suffix == ".ipynb" and item.path.name.startswith(NEEDS_DATA)]
    if not needing:
        return
    from resnet_edu.dataset import ENV_DATA, find_cifar10

    if find_cifar10() is not None:
        return
    reason = (f"CIFAR-10 is not on this machine: set {ENV_DATA} to a copy, or download it once with "
              f"python -c 'from resnet_edu.dataset import load_cifar10; load_cifar10()'")
    for item in needing:
        item.add_marker(pytest.mark.skip(reason=reason))

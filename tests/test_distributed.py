"""Two CPU processes under torchrun (gloo): the command line runs unchanged, weights stay identical."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from _tiny_cifar import write_tiny_tarball

pytestmark = pytest.mark.slow  # two processes under torchrun: tens of seconds: CI runs it (pytest -m slow)

TORCHRUN = shutil.which("torchrun") or os.path.join(os.path.dirname(sys.executable), "torchrun")


@pytest.mark.skipif(not os.path.exists(TORCHRUN), reason="torchrun (part of PyTorch) is not on PATH")
def test_two_ranks_train_in_lock_step(tmp_path):
    tarball = write_tiny_tarball(tmp_path, train_per_class=16, test_per_class=4)
    out = tmp_path / "run"
    command = [TORCHRUN, "--standalone", "--nproc_per_node=2", "-m", "resnet_edu", "--data", str(tarball),
               "--stem", "imagenet", "--epochs", "2", "--batch-size", "16", "--lr", "0.05", "--out", str(out),
               "--no-progress", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1", RESNET_EDU_CACHE=str(tmp_path / "cache"))
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_done"] == 2
    digests = metrics["weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1] and metrics["ranks_identical"]
    assert "weights identical on all 2 ranks: True" in result.stdout
    assert result.stdout.count("Training resnet18") == 1  # only rank 0 prints

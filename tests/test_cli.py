"""The command line: a mistake ends with one line that names the flag, exit code 2, no traceback."""

import os
import subprocess
import sys

import pytest
from _tiny_cifar import write_tiny_tarball


def run_cli(*flags, cache):
    return subprocess.run([sys.executable, "-m", "resnet_edu", "--quick", "--no-progress", "--device", "cpu",
                           *flags], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, RESNET_EDU_CACHE=str(cache)))


@pytest.mark.parametrize("flags, message", [
    (["--epochs", "0"], "--epochs must be at least 1; got 0"),
    (["--lr", "-1"], "--lr must be a positive number"),
    (["--batch-size", "0"], "--batch-size must be at least 1"),
    (["--data", "no/such/folder"], "CIFAR-10 was not found at no/such/folder (--data): no such file or folder"),
    (["--resume", "--out", "{tmp}/empty", "--batch-size", "8"],
     "no checkpoint at {tmp}/empty/checkpoint.pt; train with --out set"),
    (["--batch-size", "64"], "--batch-size 64 leaves not one full batch per epoch: there are 24 training images."),
])
def test_a_mistake_ends_with_one_line_naming_the_flag(tmp_path, flags, message):
    result = run_cli(*[f.format(tmp=tmp_path) for f in flags] + ["--data", str(write_tiny_tarball(tmp_path))]
                     if "--data" not in flags else flags, cache=tmp_path / "cache")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "error: " + message.format(tmp=tmp_path) in result.stderr.replace("\n", " ")


def test_a_damaged_tarball_is_named(tmp_path):
    bad = tmp_path / "cifar.tar.gz"
    bad.write_bytes(b"this is not a tarball")
    result = run_cli("--data", str(bad), cache=tmp_path / "cache")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot read the tarball {bad}" in result.stderr and "damaged" in result.stderr


def test_the_full_recipe_on_a_cpu_says_how_long_it_would_take_before_it_starts(tmp_path):
    result = run_cli("--data", str(write_tiny_tarball(tmp_path)), "--recipe", "full", "--epochs", "1",
                     "--batch-size", "16", "--out", str(tmp_path / "run"), cache=tmp_path / "cache")
    assert result.returncode == 0, result.stderr[-2000:]
    warning = next(line for line in result.stdout.splitlines() if "warning" in line)
    assert "the cifar stem on this CPU trains at about" in warning and "would take about" in warning
    assert result.stdout.index("would take about") < result.stdout.index("Done (finished): 1 of 1 epochs")

"""The test command on a machine without CIFAR-10: the notebooks that train on it (05-07) are
skipped with the reason, as the tests that need the data are, instead of failing cell after cell."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from _tiny_cifar import write_tiny_tarball

ROOT = Path(__file__).resolve().parents[1]


def run_pytest_on_a_notebook(tmp_path, **env):
    """pytest with the repository's conftest.py over a one-cell notebook named like notebook 05."""
    repo = tmp_path / "repo"
    (repo / "notebooks").mkdir(parents=True)
    shutil.copy(ROOT / "conftest.py", repo)
    cell = nbformat.v4.new_code_cell("print(6 * 7)", execution_count=1,
                                     outputs=[nbformat.v4.new_output("stream", text="42\n")])
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), repo / "notebooks" / "05_train_on_gpu.ipynb")
    clean = {k: v for k, v in os.environ.items() if k != "RESNET_EDU_DATA"}
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
                           "-rs", "notebooks"], cwd=repo, capture_output=True, text=True, timeout=600,
                          env=dict(clean, RESNET_EDU_CACHE=str(tmp_path / "cache"), **env))


def test_notebook_05_is_skipped_with_the_reason_when_no_data_can_be_found(tmp_path):
    result = run_pytest_on_a_notebook(tmp_path)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 skipped" in result.stdout and "passed" not in result.stdout and "failed" not in result.stdout
    assert "CIFAR-10 is not on this machine: set RESNET_EDU_DATA to a copy" in result.stdout


def test_notebook_05_runs_when_the_data_is_named(tmp_path):
    result = run_pytest_on_a_notebook(tmp_path, RESNET_EDU_DATA=str(write_tiny_tarball(tmp_path)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "1 passed" in result.stdout and "skipped" not in result.stdout

"""The benchmark harness measures what it says (a seconds-long run on tiny batches)."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import parity  # noqa: E402
import report  # noqa: E402

from resnet_edu.inspect import count_macs  # noqa: E402
from resnet_edu.resnet import build  # noqa: E402


@pytest.fixture(scope="module")
def cifar_result():
    return parity.measure_config("resnet18", "cifar", 32, 10, torch.device("cpu"),
                                 repeats=2, steps=1, warmup=1, batch_size=2)


def test_both_implementations_get_identical_weights():
    ours, theirs = parity.model_pair("resnet18", "cifar", 10)
    for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(a, b), key


def test_parity_result_is_complete(cifar_result):
    for impl in ("resnet_edu", "torchvision"):
        r = cifar_result[impl]
        assert r["images_per_s_min"] <= r["images_per_s"] <= r["images_per_s_max"]
        assert r["peak_memory_bytes"] > 0
    assert cifar_result["speed_ratio"] > 0


def test_a_training_step_costs_about_three_forward_passes(cifar_result):
    # backward computes two products per forward product (input and weight gradients), except
    # that the first convolution needs no input gradient: a little under 3 x 2 FLOPs per MAC.
    forward_macs = count_macs(build("resnet18", stem="cifar", num_classes=10), 32)
    ratio = cifar_result["train_step_flops_per_image"] / (2 * forward_macs)
    assert 2.9 < ratio <= 3.0


def test_report_renders_a_result(cifar_result):
    stamp = {"date": "2026-01-01", "torch": "2", "torchvision": "0"}
    row = dict(cifar_result, achieved_flops_per_s=1e9, fraction_of_matmul_peak=0.5)
    result = {"hardware": {"description": "test machine"},
              "parity": dict(stamp, repeats=2, steps=1, warmup=1, rows=[row]),
              "not_measured": ["GPU figures"]}
    text = report.render(result)
    assert "| resnet18 (cifar stem) | 32x32 | 2 |" in text
    assert "Not measured here: GPU figures" in text


def test_readme_has_a_results_section():
    readme = (ROOT / "README.md").read_text()
    assert report.START in readme and report.END in readme

"""The benchmark harness measures what it says (a seconds-long run on tiny batches)."""

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import loop  # noqa: E402
import parity  # noqa: E402
import report  # noqa: E402

from resnet_edu.measure import count_macs  # noqa: E402
from resnet_edu.resnet import build  # noqa: E402


@pytest.fixture(scope="module")
def cifar_result():
    return parity.measure_config("resnet18", "cifar", 32, 10, torch.device("cpu"),
                                 repeats=2, steps=1, warmup=1, batch_size=2)


def test_both_implementations_get_identical_weights():
    ours, theirs = parity.model_pair("resnet18", "cifar", 10)
    for (key, a), (_, b) in zip(ours.state_dict().items(), theirs.state_dict().items()):
        assert torch.equal(a, b), key


@pytest.mark.slow
def test_parity_times_the_same_work_in_both_implementations(cifar_result):
    """After the warm-up and timed steps (and the memory probe's step on a GPU) both models took the
    same SGD steps from the same weights, so they must hold the same weights: the ratio compares like
    with like. On a CPU, bit for bit."""
    assert cifar_result["max_weight_difference"] == 0.0
    for impl in ("resnet_edu", "torchvision"):
        assert cifar_result[impl]["peak_memory_bytes"] > 10 * 2**20  # ResNet18's weights alone are 45 MB
    # The same network doing the same work runs at about the same speed in both (timing noise on a busy
    # CPU aside): a ratio far from 1 would mean one side timed something else.
    assert 1 / 3 < cifar_result["speed_ratio"] < 3


@pytest.mark.slow
def test_a_training_step_costs_about_three_forward_passes(cifar_result):
    # backward computes two products per forward product (input and weight gradients), except
    # that the first convolution needs no input gradient: a little under 3 x 2 FLOPs per MAC.
    forward_macs = count_macs(build("resnet18", stem="cifar", num_classes=10), 32)
    ratio = cifar_result["train_step_flops_per_image"] / (2 * forward_macs)
    assert 2.9 < ratio <= 3.0


@pytest.mark.slow
def test_the_measured_peak_bounds_what_a_model_reaches():
    """A 'share of peak' above 100% would mean the peak was no peak (it read 101% once, when only a
    matrix product was timed, while oneDNN's Winograd convolutions are credited more FLOPs than they do)."""
    device = torch.device("cpu")
    result = parity.measure_config("resnet18", "cifar", 32, 10, device, repeats=3, steps=2, warmup=1)
    achieved = result["train_step_flops_per_image"] * max(result[i]["images_per_s_max"]
                                                          for i in ("resnet_edu", "torchvision"))
    assert achieved < parity.measured_peak_flops(device, torch.float32)


def test_the_trainer_and_the_plain_loop_train_on_the_same_images():
    from resnet_edu.speed import synthetic_data

    data = synthetic_data(100)  # 3 batches of 32, the last 4 images dropped by both
    # medians of 3 alternating pairs: one pair read 3.01 once, with two test suites sharing 2 cores
    result = loop.compare(data, "quick", torch.device("cpu"), repeats=3, batch_size=32)
    assert result["images"] == 96 and len(result["all_seconds"]["trainer"]) == 3
    # fit adds little around the same steps (a loss sum on the device, a NaN check, the progress calls):
    # the two run at about the same speed, within the timing noise of a busy CPU
    assert 1 / 3 < result["ratio"] < 3


@pytest.mark.slow
def test_report_renders_a_result(cifar_result):
    stamp = {"date": "2026-01-01", "torch": "2", "torchvision": "0"}
    row = dict(cifar_result, achieved_flops_per_s=1e9, fraction_of_peak=0.5)
    recipe = {"recipe": "full: resnet18", "runs": [{"test_images": 10_000}], "test_accuracies": [0.9412, 0.9398],
              "mean_test_accuracy": 0.9405, "stdev_test_accuracy": 0.001, "median_train_seconds": 27.4,
              "median_total_seconds": 80, "median_warmup_seconds": 41, "target": {"accuracy": 0.94},
              "target_met": False}
    result = {"hardware": {"description": "test machine"},
              "parity": dict(stamp, repeats=2, steps=1, warmup=1, rows=[row], peak_method="a test"),
              "gpu_recipe": [dict(stamp, **recipe)], "not_measured": ["GPU figures"]}
    text = report.render(result)
    assert "| resnet18 (cifar stem) | 32x32 | 2 |" in text and "(50%) |" in text
    assert "seeds: 94.12%, 93.98%) on 10,000 test images; training time 27.4 s" in text
    assert "of which compilation 41 s" in text and "Target, at least 94% test accuracy: NOT met." in text
    assert "Not measured here: GPU figures" in text


def test_readme_has_a_results_section():
    readme = (ROOT / "README.md").read_text()
    assert report.START in readme and report.END in readme

"""Measured counts: MACs reproduce torchvision's published figures; per-stage counts add up."""

import pytest
import torch

from resnet_edu.measure import (
    compare_with_torchvision, copy_weights, count_macs, count_parameters, format_table,
    macs_by_stage, parameters_by_stage, shape_trace, stage_table,
)
from resnet_edu.resnet import build

# torchvision's model documentation, the "GFLOPS" column (multiply-accumulates) at 224x224.
PUBLISHED_GMACS = {"resnet18": 1.81, "resnet34": 3.66, "resnet50": 4.09}


@pytest.mark.parametrize("name,expected", [("resnet18", 1.814), ("resnet34", 3.664), ("resnet50", 4.089)])
def test_macs_reproduce_published_figures(name, expected):
    gmacs = count_macs(build(name), 224) / 1e9
    assert round(gmacs, 3) == expected
    assert round(gmacs, 2) == PUBLISHED_GMACS[name]


def test_per_stage_counts_add_up():
    model = build("resnet50")
    assert sum(parameters_by_stage(model).values()) == count_parameters(model)
    assert sum(macs_by_stage(model, 64).values()) == count_macs(model, 64)


def test_resnet18_stage_table():
    rows = stage_table(build("resnet18"), 224)
    assert [(r["stage"], r["channels"], r["resolution"]) for r in rows] == [
        ("stem", 64, "56x56"), ("layer1", 64, "56x56"), ("layer2", 128, "28x28"),
        ("layer3", 256, "14x14"), ("layer4", 512, "7x7"), ("head", 1000, "-"),
    ]
    # layer1: four 3x3 convs of 64 -> 64 channels, each followed by BN (64 weights, 64 biases)
    assert rows[1]["parameters"] == 4 * (64 * 64 * 9 + 128)
    assert "layer4" in format_table(rows)


def test_shape_trace_through_the_cifar_stem():
    trace = dict(shape_trace(build("resnet18", stem="cifar", num_classes=10), 32))
    assert trace["maxpool"] == (1, 64, 32, 32)
    assert trace["layer4"] == (1, 512, 4, 4)
    assert trace["fc"] == (1, 10)


def test_inspection_leaves_training_mode_alone():
    model = build("resnet18").train()
    count_macs(model, 64), shape_trace(model, 64)
    assert model.training


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_compare_with_torchvision_reports_zero_difference(name):
    report = compare_with_torchvision(build(name), name, image_size=64)
    assert report["parameters"] == report["torchvision_parameters"]
    assert report["max_abs_diff"] < 1e-5


def test_copy_weights_names_what_differs():
    with pytest.raises(ValueError, match="shapes that differ \\(1\\).*conv1.weight"):
        copy_weights(build("resnet18"), build("resnet18", stem="cifar"))

"""Measured counts: MACs reproduce torchvision's published figures; per-stage counts add up."""

import pytest
from torch import nn

from resnet_edu.measure import (
    WHOLE_MAP, compare_with_torchvision, copy_weights, count_macs, count_parameters, feature_map_sides,
    format_table, growth_per_step, growth_table, macs_by_stage, medians_over_seeds, parameters_by_stage,
    pooling_by_image_size, shape_trace, sizes_pooled_whole, stage_table, strict_load_works, sweep_table,
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
    with pytest.raises(ValueError, match="shapes that differ, weights vs model \\(1\\).*conv1.weight"):
        copy_weights(build("resnet18"), build("resnet18", stem="cifar"))


def test_medians_over_seeds_and_growth_per_step():
    def measure(depth, seed):  # seed 1 is an outlier that the median ignores
        return depth * (10 if seed == 1 else 1), -depth

    assert medians_over_seeds(measure, [8, 16], [0, 1, 2]) == [[8, 16], [-8, -16]]
    assert growth_per_step([1.0, 4.0, 4.0], [0, 2, 3]) == [2.0, 1.0]
    table = sweep_table([8, 16], {"first": [1.234, 20.0]})
    assert "1.23" in table and "20" in table
    assert "x2.00" in growth_table([0, 2], {"plain": [1.0, 4.0]})


def test_pooling_by_image_size_fixed_window_against_adaptive():
    model = build("resnet18")
    rows = pooling_by_image_size(nn.AvgPool2d(7), model)
    assert [row["image sizes"] for row in rows] == ["32-192", "193-224", "225-416", "417-512"]
    assert rows[1]["layer4 map"] == "7x7" and rows[1]["what the pool and the classifier give"] == WHOLE_MAP
    assert "top-left 7x7" in rows[2]["what the pool and the classifier give"]
    assert sizes_pooled_whole(nn.AvgPool2d(7), model) == "193-224"
    assert sizes_pooled_whole(nn.AdaptiveAvgPool2d(1), model) == "32-512"
    assert feature_map_sides(model, [224, 225, 600]) == {224: 7, 225: 8, 600: 19}


def test_strict_load_works():
    assert strict_load_works(build("resnet18"), build("resnet18").state_dict())
    assert not strict_load_works(build("resnet18"), build("resnet34").state_dict())

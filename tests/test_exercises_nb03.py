"""Notebook 03: the predict-then-check questions of exercise 3 and the facts its new sections
state (the image sizes a fixed 7x7 pool handles, the equal cost of the 3x3 convolutions, what
global average pooling saves), each checked against what PyTorch computes; check_resnet_forward
(exercise 2), the forward pass of the ResNet class, with its named mistakes; and the closing check
that assembles the learner's ResNet18 from exercises 1 and 2."""

import json
import math
import re
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from _checker_results import assert_names, assert_passes, mistakes

from resnet_edu.exercises import check_resnet18_predictions, check_resnet_forward, check_stage
from resnet_edu.exercises.four_stages import forward_with
from resnet_edu.exercises.solutions.resnet_forward import resnet_forward
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import make_stage as reference_stage
from resnet_edu.resnet import resnet18, resnet50

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_resnet18_four_stages.ipynb"
EMPTY = {"parameters_100_classes": None, "layer4_shape_600x400": None, "bottleneck_conv_blocks": None,
         "gmacs_at_448": None}
CONV_BLOCKS = {"layer1[0]", "layer2[0]", "layer3[0]", "layer4[0]"}
RIGHT = {"parameters_100_classes": 11_227_812, "layer4_shape_600x400": (1, 512, 19, 13),
         "bottleneck_conv_blocks": CONV_BLOCKS, "gmacs_at_448": 7.255}
# what must stay hidden; layer1[0] is the Conv Block that ResNet18 does not have
TRUTHS = ("11227812", "11,227,812", "(1, 512, 19, 13)", "19, 13", "layer1[0]", "7.25")


# ---------------------------------------------------------------- exercise 3: check_resnet18_predictions


def test_empty_predictions_fail_one_line_each_and_give_nothing_away(capsys):
    result = check_resnet18_predictions(dict(EMPTY))
    out = capsys.readouterr().out
    assert mistakes(result) == ["no-prediction"] * 4 and not result
    assert not any(truth in out for truth in TRUTHS)
    assert 'show_solution("resnet18_predictions")' in out


def test_right_predictions_pass_and_show_the_measurements(capsys):
    assert_passes(check_resnet18_predictions(dict(RIGHT)))


def test_wrong_predictions_get_a_nudge_but_never_the_answer(capsys):
    wrong = {"parameters_100_classes": 11_689_512, "layer4_shape_600x400": (1, 512, 18, 12),
             "bottleneck_conv_blocks": ["layer2[0]", "layer3[0]", "layer4[0]"], "gmacs_at_448": 1.814}
    result = check_resnet18_predictions(wrong)
    out = capsys.readouterr().out
    assert mistakes(result) == ["too-high", "wrong-answer", "wrong-answer", "too-low"]
    assert "the code measures" not in out
    assert not any(truth in out for truth in TRUTHS)


@pytest.mark.parametrize("gmacs,passes", [(7.2, True), (7.11, True), (7.39, True), (7.10, False), (7.40, False)])
def test_the_448_question_accepts_two_percent(gmacs, passes):  # of the measured 7.2548: 7.1097 to 7.3999
    result = check_resnet18_predictions(dict(RIGHT, gmacs_at_448=gmacs))
    assert result.passed is passes


def test_a_list_of_names_counts_as_the_set(capsys):
    answers = dict(RIGHT, bottleneck_conv_blocks=["layer4[0]", "layer2[0]", "layer3[0]", "layer1[0]"])
    assert_passes(check_resnet18_predictions(answers), capsys)


def test_pytorchs_module_names_and_numpy_or_torch_numbers_count_too(capsys):
    import numpy as np

    answers = dict(RIGHT, bottleneck_conv_blocks={"layer1.0", "layer2.0", "layer3.0", "layer4.0"},
                   parameters_100_classes=np.int64(11_227_812), gmacs_at_448=torch.tensor(7.255))
    assert_passes(check_resnet18_predictions(answers), capsys)


def test_answers_that_are_not_a_dict_are_reported_not_raised():
    assert mistakes(check_resnet18_predictions([11_227_812])) == ["answers-not-a-dict"]


def test_the_worked_answer_predicts_every_measurement_and_passes_the_checker(capsys):
    runpy.run_module("resnet_edu.exercises.solutions.resnet18_predictions")
    out = capsys.readouterr().out
    pairs = re.findall(r"^(\d)\. (.+) predicted, (.+) measured$", out, re.M)
    assert [number for number, _, _ in pairs] == ["1", "2", "3", "4"]
    assert all(predicted == measured for _, predicted, measured in pairs)
    assert "2. (1, 512, 19, 13) predicted" in out  # ceil(600 / 32), ceil(400 / 32)
    assert "3. ['layer1[0]', 'layer2[0]', 'layer3[0]', 'layer4[0]'] predicted" in out
    assert "4. 7,254,757,376 predicted" in out  # 4 x (1,814,073,344 - 512,000) + 512,000
    assert "FAIL" not in out


# ---------------------------------------------------------------- what the notebook stores


def _stored_output(marker):
    """The stored text output of the notebook's code cell whose source contains ``marker``."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"]))
    return "".join("".join(o.get("text", "")) for o in cell["outputs"])


def test_the_stored_exercise_outputs_give_no_answer_away():
    predictions = " ".join(_stored_output("check_resnet18_predictions(my_predictions)").split())  # unwrapped
    assert predictions.count("no prediction yet") == 4 and "the code measures" not in predictions
    stage = _stored_output("check_stage(make_stage)")
    assert stage.count("FAIL  expected") == 4  # the empty starter: only the number of blocks is named
    assert "instead of" not in stage and "flow into it" not in stage  # no stride, no bookkeeping
    assert "Conv Block" not in stage and "Identity Block" not in stage  # exercise 3, question 3 asks for them


def _your_resnet18_verdict(capsys, **learners):
    """What the notebook's closing cell prints, run after its set-up cell with the learner's functions."""
    cells = [c for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    namespace = dict(learners)
    markers = ("notebook_start = time.perf_counter()", "def randomise_batchnorm", "class YourResNet18",
               "print(is_your_resnet18_torchvisions())")
    for marker in markers:  # the set-up cell, the BN randomiser of the torchvision check, the model, the check
        capsys.readouterr()  # only the last cell's words are the verdict
        exec("".join(next(c for c in cells if marker in "".join(c["source"]))["source"]), namespace)
    return capsys.readouterr().out


def _starter_stage(block, in_channels, width, num_blocks, stride):
    return nn.Sequential()


def _starter_forward(model, x):
    raise NotImplementedError("your code here")


def _relu_before_bn1(model, x):
    x = model.maxpool(model.bn1(model.relu(model.conv1(x))))
    x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    return model.fc(torch.flatten(model.avgpool(x), 1))


def test_your_resnet18_is_torchvisions_with_the_solutions(capsys):
    from resnet_edu.exercises.solutions.stage import make_stage

    out = _your_resnet18_verdict(capsys, make_stage=make_stage, resnet_forward=resnet_forward)
    assert out.startswith("Your ResNet18 is torchvision's") and out.count("\n") == 1


@pytest.mark.parametrize("learners,exercise", [
    (dict(make_stage=_starter_stage, resnet_forward=_starter_forward), "exercise 1"),  # the stored run
    (dict(), "exercise 1"),  # neither exercise's cell was run
    (dict(make_stage=reference_stage, resnet_forward=_starter_forward), "exercise 2"),
    (dict(make_stage=reference_stage, resnet_forward=lambda model, x: model.fc(x.mean((2, 3)))), "exercise 2"),
    # a ReLU before the stem's BN: invisible while every BN has its default statistics, so the check randomises them
    (dict(make_stage=reference_stage, resnet_forward=_relu_before_bn1), "exercises 1 and 2"),
])
def test_your_resnet18_says_in_one_line_which_exercise_to_finish(capsys, learners, exercise):
    out = _your_resnet18_verdict(capsys, **learners)
    assert out.startswith("Not yet") and out.count("\n") == 1 and exercise in out


def test_the_stored_closing_check_is_the_starters_not_yet():
    out = _stored_output("print(is_your_resnet18_torchvisions())")
    assert out.startswith("Not yet") and "exercise 1" in out and out.count("\n") == 1


def test_the_empty_starter_stage_is_told_only_how_many_blocks_are_missing():
    def make_stage(block, in_channels, width, num_blocks, stride):
        return nn.Sequential()

    assert mistakes(check_stage(make_stage)) == ["wrong-number-of-blocks"] * 4  # one line per case


@pytest.mark.parametrize("answer", [resnet18().layer2, None], ids=["a built stage", "None"])
def test_a_built_stage_or_none_is_told_to_pass_the_function_itself(answer):
    assert mistakes(check_stage(answer)) == ["result-not-function"]


def test_the_in_channels_nudge_gives_the_counts_but_not_the_formula():
    def first_block_gets_the_width(block, in_channels, width, num_blocks, stride):
        blocks = [block(width, width, stride)]  # should be block(in_channels, ...)
        blocks += [block(width * block.expansion, width, 1) for _ in range(num_blocks - 1)]
        return nn.Sequential(*blocks)

    result = check_stage(first_block_gets_the_width)
    # ResNet34's layer2 (64 -> 128) and ResNet50's (256 -> width 128); in ResNet18's and ResNet50's
    # layer1 width = in_channels
    assert mistakes(result) == ["wrong-in-channels"] * 2
    failures = " ".join(result.failures)
    assert "expansion =" not in failures and "width *" not in failures


# ---------------------------------------------------------------- the facts of the new sections


@pytest.fixture(scope="module")
def shapes_only():
    with torch.device("meta"):
        return resnet18().eval()


def _layer4_side(model, size):
    return model.forward_features(torch.empty(1, 3, size, size, device="meta")).shape[-1]


@pytest.mark.parametrize("size", [32, 33, 64, 192, 193, 200, 224, 225, 256, 416, 417, 448, 512])
def test_layer4_map_side_is_the_image_side_over_32_rounded_up(shapes_only, size):
    assert _layer4_side(shapes_only, size) == math.ceil(size / 32)


def test_exactly_the_sizes_193_to_224_give_a_7x7_map(shapes_only):
    sides = {size: _layer4_side(shapes_only, size) for size in (192, 193, 224, 225)}
    assert sides == {192: 6, 193: 7, 224: 7, 225: 8}


@pytest.mark.parametrize("side", range(8, 14))
def test_a_fixed_7x7_pool_averages_only_the_top_left_corner_of_an_8x8_to_13x13_map(side):
    features = torch.randn(1, 512, side, side)
    pooled = nn.AvgPool2d(7)(features)
    assert pooled.shape == (1, 512, 1, 1)
    assert torch.allclose(pooled, features[..., :7, :7].mean((-2, -1), keepdim=True), atol=1e-6)
    assert not torch.allclose(pooled, features.mean((-2, -1), keepdim=True), atol=1e-6)


def test_a_fixed_7x7_pool_fails_below_7_and_feeds_the_classifier_2048_numbers_at_14():
    with pytest.raises(RuntimeError):
        nn.AvgPool2d(7)(torch.randn(1, 512, 6, 6))
    pooled = torch.flatten(nn.AvgPool2d(7)(torch.randn(1, 512, 14, 14)), 1)
    assert pooled.shape == (1, 2048)
    with pytest.raises(RuntimeError):
        nn.Linear(512, 1000)(pooled)


def test_every_shape_keeping_3x3_convolution_costs_the_same_at_224():
    model = resnet18().eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, 224, 224))
    macs = {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert macs[f"ResNet.{stage}.1.conv1"] == macs[f"ResNet.{stage}.1.conv2"] == 115_605_504
    for stage in ("layer2", "layer3", "layer4"):  # reads half the channels: half the cost
        assert macs[f"ResNet.{stage}.0.conv1"] == 57_802_752
        assert macs[f"ResNet.{stage}.0.downsample.0"] == 6_422_528


def test_a_flatten_head_would_hold_49_times_the_gap_heads_parameters():
    gap_head, flatten_head = nn.Linear(512, 1000), nn.Linear(512 * 7 * 7, 1000)
    assert (count_parameters(gap_head), count_parameters(flatten_head)) == (513_000, 25_089_000)
    assert count_parameters(flatten_head) > 2 * count_parameters(resnet18())


# ---------------------------------------------------------------- exercise 2: check_resnet_forward

def test_the_solution_of_the_forward_pass_passes():
    assert_passes(check_resnet_forward(resnet_forward))


@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_the_checkers_forward_equals_the_models(stem):
    model = resnet18(num_classes=10, stem=stem).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(forward_with(model, x), model(x), atol=1e-5)


def learners_forward(model, x, *, maxpool=True, relu=True, bn1=True, stages=("layer1", "layer2", "layer3", "layer4"),
                     pool="adaptive", flatten=True, fc_first=False, softmax=False):
    """The forward pass as a learner might write it, with one step that can be done wrongly per keyword."""
    x = model.conv1(x)
    x = model.bn1(x) if bn1 else x
    x = F.relu(x) if relu else x
    x = model.maxpool(x) if maxpool else x
    for stage in stages:
        x = getattr(model, stage)(x)
    if fc_first:
        x = model.fc(x)
    pooled = {"adaptive": lambda t: model.avgpool(t), "max": lambda t: F.adaptive_max_pool2d(t, 1),
              "fixed7": lambda t: F.avg_pool2d(t, 7)}[pool](x)
    x = torch.flatten(pooled, 1) if flatten else pooled
    x = x if fc_first else model.fc(x)
    return x.softmax(1) if softmax else x


def with_mistake(**mistake):
    return lambda model, x: learners_forward(model, x, **mistake)


def test_a_learners_right_version_passes():
    assert_passes(check_resnet_forward(with_mistake()))


@pytest.mark.parametrize("mistake,named", [
    (dict(maxpool=False), "maxpool-left-out"),  # the CIFAR stem has none: its cases pass
    (dict(relu=False), "relu-after-bn1-left-out"),
    (dict(bn1=False), "bn1-left-out"),
    (dict(stages=("layer2", "layer3", "layer4")), "stage-skipped"),
    (dict(stages=("layer1", "layer1", "layer2", "layer3", "layer4")), "stage-run-twice"),
    (dict(pool="max"), "max-pooling-at-the-end"),
    (dict(softmax=True), "softmax-at-the-end"),
    (dict(flatten=False), "fc-input-not-flat"),
    (dict(fc_first=True), "fc-input-not-flat"),
    (dict(pool="fixed7"), "pooling-not-global"),
])
def test_each_mistake_of_the_forward_pass_is_named(mistake, named):
    assert_names(check_resnet_forward(with_mistake(**mistake)), named)


def test_a_mistake_that_cannot_run_in_resnet50_does_not_break_the_diagnosis_of_another():
    result = check_resnet_forward(with_mistake(softmax=True))  # the stage mistakes cannot run on bottlenecks
    assert set(mistakes(result)) == {"softmax-at-the-end"}


def test_a_stage_skipped_where_the_channels_change_is_named_from_the_error():
    result = check_resnet_forward(with_mistake(stages=("layer1", "layer3", "layer4")))
    assert set(mistakes(result)) == {"stages-out-of-order"}


@pytest.mark.parametrize("candidate,named", [
    (lambda model, x: model(x), "calls-the-model"),
    (lambda model, x: model.forward(x), "calls-the-model"),
    (lambda model, x: model.fc(torch.flatten(model.avgpool(model.forward_features(x)), 1)), "calls-the-model"),
    (lambda model, x: 1 / 0, "function-raises"),
    (lambda model, x: None, "not-a-tensor"),
    (lambda model, x: resnet_forward(model, x).squeeze(), "wrong-output-shape"),  # (10,) for one image
    (lambda model, x: resnet_forward(model, x).detach(), "no-graph"),
    (torch.no_grad()(resnet_forward), "no-graph"),
    (torch.inference_mode()(resnet_forward), "no-graph"),
    (None, "not-callable"),
    (resnet50(), "not-callable"),
])
def test_anything_else_is_reported_never_raised(candidate, named):
    assert_names(check_resnet_forward(candidate), named)


def test_a_stage_that_guesses_its_input_channels_from_the_width_is_caught_in_resnet50s_layer2():
    def from_the_width(block, in_channels, width, num_blocks, stride):
        channels, blocks = width // stride, []
        for i in range(num_blocks):
            blocks.append(block(channels, width, stride if i == 0 else 1))
            channels = width * block.expansion
        return nn.Sequential(*blocks)

    assert mistakes(check_stage(from_the_width)) == ["wrong-in-channels"]


def test_a_module_list_is_told_to_return_a_sequential():
    def module_list(block, in_channels, width, num_blocks, stride):
        blocks = [block(in_channels, width, stride)]
        return nn.ModuleList(blocks + [block(width * block.expansion, width, 1) for _ in range(num_blocks - 1)])

    assert set(mistakes(check_stage(module_list))) == {"returned-a-list"}

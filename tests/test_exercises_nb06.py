"""Notebook 06: the plain-twin checker names each mistake, the deletion questions check against the
measurements they are given, and the worked answers run."""

import copy
import re
import runpy

import torch
from torch import nn

from _checker_results import assert_names, assert_passes, mistakes

from resnet_edu.blocks import BasicBlock, PlainBlock
from resnet_edu.exercises.solutions.plain_twin import plain_twin
from resnet_edu.exercises.why_residuals_work import check_deletion_predictions, check_plain_twin
from resnet_edu.resnet import make_stage


def twin_of(stage, copy_weights=True, final_relu=True, relu_before_bn=False, copy_statistics=True):
    twin = nn.Sequential()
    for block in stage:
        plain = PlainBlock(block.conv1.in_channels, block.conv2.out_channels, block.stride)
        if copy_weights:
            plain.load_state_dict(block.state_dict())
        if not copy_statistics:
            for bn in (plain.bn1, plain.bn2):
                bn.reset_running_stats()
        if not final_relu:
            plain.forward = lambda x, p=plain: p.bn2(p.conv2(p.relu(p.bn1(p.conv1(x)))))
        if relu_before_bn:
            plain.forward = lambda x, p=plain: p.relu(p.bn2(p.conv2(p.bn1(p.relu(p.conv1(x))))))
        twin.append(plain)
    return twin


def test_layers_in_another_order_and_missing_statistics_are_told_apart(capsys):
    assert mistakes(check_plain_twin(lambda stage: twin_of(stage, relu_before_bn=True))) == \
        ["layers-in-another-order"] * 2
    assert mistakes(check_plain_twin(lambda stage: twin_of(stage, copy_statistics=False))) == \
        ["bn-statistics-not-copied"] * 2


def test_a_twin_without_batchnorm_is_named(capsys):
    def without_bn(stage):
        layers = []
        for block in stage:
            layers += [copy.deepcopy(block.conv1), nn.ReLU(), copy.deepcopy(block.conv2), nn.ReLU()]
        return nn.Sequential(*layers)
    assert mistakes(check_plain_twin(without_bn)) == ["batchnorm-missing"] * 2


def test_the_stride_on_the_second_convolution_is_named(capsys):
    def stride_on_conv2(stage):
        twin = twin_of(stage)
        first = twin[0]
        if first.conv1.stride != (1, 1):
            first.conv1.stride, first.conv2.stride = first.conv2.stride, first.conv1.stride
        return twin
    assert mistakes(check_plain_twin(stride_on_conv2)) == ["stride-on-wrong-conv"]


def test_shortcuts_kept_in_some_blocks_are_named_with_the_blocks(capsys):
    def only_the_first_block_plain(stage):
        twin = copy.deepcopy(stage)
        twin[0] = twin_of(stage)[0]
        return twin
    result = check_plain_twin(only_the_first_block_plain)
    assert mistakes(result) == ["shortcuts-kept"] * 2
    assert "blocks 1 and 2 (counting from 0)" in " ".join(capsys.readouterr().out.split())


def test_a_twin_with_an_extra_projection_is_told_it_has_more_convolutions(capsys):
    def option_b(stage):
        twin = make_stage(BasicBlock, stage[0].conv1.in_channels, stage[0].conv2.out_channels, len(stage),
                          stage[0].conv1.stride[0], shortcut="B")
        twin.load_state_dict(stage.state_dict(), strict=False)
        return twin
    result = check_plain_twin(option_b)
    assert mistakes(result) == ["shortcuts-kept", "weights-not-copied"]
    assert "the twin has 7 convolutions, the stage 6" in " ".join(capsys.readouterr().out.split())


def test_the_worked_answer_passes(capsys):
    assert_passes(check_plain_twin(plain_twin), capsys)


def test_keeping_the_shortcuts_is_named(capsys):
    assert mistakes(check_plain_twin(lambda stage: copy.deepcopy(stage))) == ["shortcuts-kept"] * 2


def test_fresh_weights_are_named(capsys):
    assert mistakes(check_plain_twin(lambda stage: twin_of(stage, copy_weights=False))) == ["weights-not-copied"] * 2


def test_missing_final_relu_is_named(capsys):
    assert mistakes(check_plain_twin(lambda stage: twin_of(stage, final_relu=False))) == ["no-final-relu"] * 2


def test_changing_the_stage_in_place_is_named(capsys):
    def in_place(stage):
        for i, block in enumerate(stage):
            stage[i] = twin_of([block])[0]
        return stage
    assert mistakes(check_plain_twin(in_place)) == ["changed-the-stage"] * 2


def _without_additions(stage):
    """Replace each block's forward on the stage itself by the plain block's: no state_dict changes."""
    for block in stage:
        block.forward = lambda x, b=block: b.relu(b.bn2(b.conv2(b.relu(b.bn1(b.conv1(x))))))
    return stage


def test_replacing_the_stages_forward_is_named_with_or_without_a_copy(capsys):
    assert mistakes(check_plain_twin(lambda stage: copy.deepcopy(_without_additions(stage)))) == \
        ["changed-the-stage"] * 2
    assert mistakes(check_plain_twin(_without_additions)) == ["changed-the-stage"] * 2


def test_a_copy_that_keeps_its_shortcuts_is_named_on_the_stage_that_downsamples(capsys):
    def no_projection(stage):
        twin = copy.deepcopy(stage)
        for block in twin:
            block.downsample = None  # the first block of layer2 then adds an x of another shape
        return twin
    assert mistakes(check_plain_twin(no_projection)) == ["shortcuts-kept"] * 2


def test_sharing_weight_tensors_is_named(capsys):
    def sharing(stage):
        twin = twin_of(stage)
        for plain, block in zip(twin, stage):
            plain.conv1.weight = block.conv1.weight
        return twin
    assert_names(check_plain_twin(sharing), "shares-weights")


def test_errors_and_wrong_types_are_reported_not_raised(capsys):
    assert mistakes(check_plain_twin(lambda stage: 1 / 0)) == ["function-raises"] * 2
    assert mistakes(check_plain_twin(lambda stage: list(stage))) == ["not-a-module"] * 2
    assert mistakes(check_plain_twin(None)) == ["not-callable"]


DROPS = {"layer1.0": 0.01, "layer2.0": 0.30, "layer3.0": 0.12, "layer2.4": 0.02}
PLAIN = {"layer2.4": 0.104}


def test_deletion_predictions_check_against_the_measurements_given(capsys):
    right = check_deletion_predictions({"worst_stage": "layer2", "plain_accuracy_without_layer2.4": 0.1},
                                       DROPS, PLAIN)
    assert right
    capsys.readouterr()
    wrong = check_deletion_predictions({"worst_stage": "layer3", "plain_accuracy_without_layer2.4": 0.5},
                                       DROPS, PLAIN)
    out = capsys.readouterr().out
    assert mistakes(wrong) == ["wrong-answer", "too-high"]
    assert "measures" not in out  # a wrong answer's nudge never shows the measurement
    empty = check_deletion_predictions({"worst_stage": None, "plain_accuracy_without_layer2.4": None}, DROPS, PLAIN)
    assert mistakes(empty) == ["no-prediction"] * 2
    assert mistakes(check_deletion_predictions({}, None, None)) == ["no-measurements"]


def test_the_accuracy_question_accepts_answers_within_ten_points_of_the_unrounded_measurement():
    plain = {"layer2.4": 0.075}  # near chance: a relative margin would reject the reasoned answer 0.1

    def verdict(answer):
        return check_deletion_predictions({"worst_stage": "layer2", "plain_accuracy_without_layer2.4": answer},
                                          DROPS, plain).mistakes

    assert verdict(0.1) == [] and verdict(0.0) == [] and verdict(0.175) == []
    assert verdict(0.176) == ["too-high"] and verdict(0.5) == ["too-high"]
    assert check_deletion_predictions({"worst_stage": "layer2", "plain_accuracy_without_layer2.4": 0.1},
                                      DROPS, {"layer2.4": 0.25}).mistakes == ["too-low"]


def test_the_worked_deletion_answer_passes_on_the_stored_networks_measurements(capsys):
    example = runpy.run_module("resnet_edu.exercises.solutions.deletion_predictions")["example"]
    stored = {"layer1.0": 0.175, "layer2.0": 0.127, "layer1.1": 0.078, "layer3.0": 0.059}  # notebook 06's stored sweep
    assert check_deletion_predictions(example, stored, {"layer2.4": 0.075}).mistakes == []


def test_the_worked_deletion_answer_quotes_no_points_of_one_run():
    from resnet_edu.exercises.engine import solution_source
    # the sweep's numbers change with the run and the machine: the reasoning points at what it printed
    assert not re.search(r"\d+(\.\d+)? points", solution_source("deletion_predictions"))


def test_the_worked_deletion_answer_runs(capsys):
    runpy.run_module("resnet_edu.exercises.solutions.deletion_predictions")
    assert "worst_stage" in capsys.readouterr().out


def test_the_residual_stage_the_checker_builds_is_option_a():
    from resnet_edu.exercises.why_residuals_work import TWIN_CASES, _residual_stage
    stage = _residual_stage(*TWIN_CASES[1][1])
    assert all(isinstance(block, BasicBlock) for block in stage)
    assert sum(p.numel() for p in stage.parameters()) == sum(p.numel() for p in plain_twin(stage).parameters())
    assert torch.is_tensor(stage[0].conv1.weight)


def test_the_stored_exercise_outputs_give_no_answer_away():
    import json
    from pathlib import Path
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "06_why_residuals_work.ipynb"
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    checks = ["".join("".join(o.get("text", "")) for o in cell.get("outputs", [])) for cell in cells
              if cell["cell_type"] == "code" and "result = check_" in "".join(cell["source"])]
    assert len(checks) == 2
    assert all("no prediction yet" in out or "raised NotImplementedError" in out for out in checks)
    assert not any("the code measures" in out or "ok " in out for out in checks)

"""The checkers of notebooks 01 and 02 accept the reference solutions and name each known mistake in
plain words; ``show_solution`` prints the solution files, one per exercise."""

import json
import re
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import resnet_edu.exercises
from _checker_results import assert_names, assert_passes, mistakes

from resnet_edu.exercises import check_basic_block, check_downsample, show_solution
from resnet_edu.exercises.engine import SOLUTIONS, solution_names, solution_source
from resnet_edu.exercises.solutions.basic_block import MyBasicBlock as Solution
from resnet_edu.exercises.solutions.downsample import make_downsample
from resnet_edu.exercises.solutions.residual_block import MyBasicBlock as IdentityOnlySolution

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


# ---------------------------------------------------------------- check_basic_block


def test_reference_solution_passes_every_case(capsys):
    out = assert_passes(check_basic_block(Solution), capsys)
    assert "Identity Block:" in out and "Conv Block (stride 2, channels doubled):" in out
    assert "Conv Block (channels doubled, stride 1):" in out


def test_identity_only_solution_passes_notebook_01_and_fails_the_conv_block(capsys):
    out = assert_passes(check_basic_block(IdentityOnlySolution, identity_only=True), capsys)
    assert "Conv Block" not in out  # notebook 01 has not taught it yet
    assert set(mistakes(check_basic_block(IdentityOnlySolution))) == {"missing-projection"}


def test_checker_does_not_disturb_the_learners_random_state():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_basic_block(Solution)
    assert torch.equal(torch.rand(3), expected)


class BiasBeforeBN(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=True)


def test_bias_before_bn_is_named_with_its_cost():
    # in each case the biases, and the parameters they add, are the only mistake
    assert mistakes(check_basic_block(BiasBeforeBN)) == ["bias-before-bn", "wrong-parameter-count"] * 3


class ReluBeforeAdd(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


def test_relu_before_the_addition_is_detected_from_the_outputs(capsys):
    assert mistakes(check_basic_block(ReluBeforeAdd)) == ["relu-before-addition"] * 3  # nothing else wrong
    assert capsys.readouterr().out.count("  FAIL  ") == 3  # the report is printed once


class NoFinalRelu(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity


class PlainBlock(Solution):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class NoMiddleRelu(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))) + identity)


class ReluOnlyBeforeAdd(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))) + identity


@pytest.mark.parametrize("candidate,named", [
    (NoFinalRelu, "no-relu-after-addition"),
    (PlainBlock, "shortcut-never-added"),
    (NoMiddleRelu, "no-relu-between-convolutions"),
    (ReluOnlyBeforeAdd, "relu-moved-before-addition"),
])
def test_other_known_mistakes_are_named(candidate, named):
    assert mistakes(check_basic_block(candidate, identity_only=True)) == [named]


class StrideOnlyShortcut(Solution):
    """The blog's test: project only when the stride changes, not when the channels do."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if stride == 1:
            self.downsample = None


def test_missing_projection_when_only_the_channels_change():
    assert mistakes(check_basic_block(StrideOnlyShortcut)) == ["missing-projection"]  # the stride-1 Conv Block


class WrongStride(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride=1)  # forgets the stride everywhere


def test_wrong_output_shape_says_expected_and_got():
    assert_names(check_basic_block(WrongStride), "wrong-output-shape")


class OtherNames(nn.Module):
    """Correct, but with its own names and the shortcut declared first and computed last."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.left = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
        )

    def forward(self, x):
        return F.relu(self.left(x) + self.shortcut(x))


def test_other_layer_names_and_order_are_accepted(capsys):
    assert_passes(check_basic_block(OtherNames), capsys)


class ShortcutWithoutBN(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if self.downsample is not None:
            self.downsample = self.downsample[0]


def test_projection_without_bn_is_reported():
    assert_names(check_basic_block(ShortcutWithoutBN), "layers-differ")


class Unfinished(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)

    def forward(self, x):
        pass  # TODO


class NoSuperInit(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1):
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1)


class ModifiesInput(Solution):
    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        identity = x if self.downsample is None else self.downsample(x)
        identity += out  # in place on x itself in the identity case
        return self.relu(identity)


@pytest.mark.parametrize("candidate,named", [
    (Unfinished, "not-a-tensor"),
    (NoSuperInit, "constructor-raises"),
    (Unfinished(64, 64), "instance-not-class"),
    (lambda in_channels: None, "constructor-raises"),
    (ModifiesInput, "modifies-input"),
])
def test_broken_code_is_reported_not_raised(candidate, named):
    assert_names(check_basic_block(candidate), named)


class ReluBeforeBN(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn1(self.relu(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ShortcutBeforeBN2(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out) + identity))


class UnpaddedConv2(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=0, bias=False)


def test_layer_order_mistakes_are_named():
    assert mistakes(check_basic_block(ReluBeforeBN, identity_only=True)) == ["relu-before-bn"]
    assert mistakes(check_basic_block(ShortcutBeforeBN2, identity_only=True)) == ["shortcut-added-before-bn"]


def test_a_branch_that_changes_the_shape_of_an_identity_block_is_not_blamed_on_the_shortcut():
    # notebook 01 has not taught projections yet: not "missing-projection"
    assert mistakes(check_basic_block(UnpaddedConv2, identity_only=True)) == ["shape-mismatch-in-addition"]


def test_a_failing_check_points_to_its_solution(capsys):
    check_basic_block(ReluBeforeAdd, identity_only=True)
    assert 'show_solution("residual_block") prints a solution.' in capsys.readouterr().out


# ---------------------------------------------------------------- check_downsample


def test_downsample_solution_passes(capsys):
    assert_passes(check_downsample(make_downsample), capsys)


def always_project(in_channels, out_channels, stride=1):
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                         nn.BatchNorm2d(out_channels))


def stride_only(in_channels, out_channels, stride=1):  # the blog's test, with a bias
    if stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))


def with_relu(in_channels, out_channels, stride=1):
    module = make_downsample(in_channels, out_channels, stride)
    return None if module is None else nn.Sequential(*module, nn.ReLU())


def test_downsample_mistakes_are_named():
    assert mistakes(check_downsample(always_project)) == ["needless-projection"]
    assert_names(check_downsample(stride_only), "missing-projection", "bias-before-bn")
    assert mistakes(check_downsample(with_relu)) == ["relu-in-shortcut"] * 3


# ---------------------------------------------------------------- the worked answers of notebooks 01 and 02


def _run_solution(name, capsys):
    runpy.run_module(f"resnet_edu.exercises.solutions.{name}")
    return capsys.readouterr().out


def test_zero_init_stack_prints_which_parameters_get_a_gradient(capsys):
    out = _run_solution("zero_init_stack", capsys)
    assert "16 of 48 parameters get a gradient:" in out
    moving = re.search(r"get a gradient: (\[.*\])", out).group(1)
    assert set(re.findall(r"'\d+\.(\w+\.\w+)'", moving)) == {"bn2.weight", "bn2.bias"}
    assert "after one SGD step: 48 parameters get a gradient" in out


def test_option_a_resnet50_prints_that_a_quarter_of_the_channels_carry_x(capsys):
    out = _run_solution("option_a_resnet50", capsys)
    assert "-> (1, 256, 56, 56) | channels that carry x: 64 of 256" in out


# ---------------------------------------------------------------- show_solution and the solution files


@pytest.mark.parametrize("name", solution_names())
def test_show_solution_prints_exactly_the_file(name, capsys):
    show_solution(name)
    assert capsys.readouterr().out == (SOLUTIONS / f"{name}.py").read_text(encoding="utf-8")


def test_an_unknown_name_lists_the_exercises(capsys):
    show_solution("no_such_exercise")
    out = capsys.readouterr().out
    assert out.startswith("There is no exercise called 'no_such_exercise'. Choose one of: ")
    assert all(name in out for name in ("basic_block", "zero_init_stack", "random_flip"))
    with pytest.raises(KeyError, match="the exercises are .*'basic_block'"):
        solution_source("no_such_exercise")


def _names_the_checkers_hint_at(capsys):
    """Every exercise whose name a failing checker prints in its show_solution("...") hint."""
    checkers = [getattr(resnet_edu.exercises, name) for name in resnet_edu.exercises.__all__
                if name.startswith("check_")]
    for check in checkers:
        check(None)  # fails in every checker, so each prints its hint
    check_basic_block(None, identity_only=True)
    return set(re.findall(r'show_solution\("(\w+)"\)', capsys.readouterr().out))


def _names_the_notebooks_show():
    """The names the notebooks' code cells pass to show_solution (the worked answers among them)."""
    cells = [cell for path in NOTEBOOKS.glob("*.ipynb")
             for cell in json.loads(path.read_text(encoding="utf-8"))["cells"] if cell["cell_type"] == "code"]
    return {name for cell in cells for name in re.findall(r'show_solution\("(\w+)"\)', "".join(cell["source"]))}


def test_there_is_one_solution_file_per_exercise_the_checkers_and_notebooks_name(capsys):
    hinted = _names_the_checkers_hint_at(capsys)
    assert {"residual_block", "basic_block", "decay_groups"} <= hinted
    assert set(solution_names()) == hinted | _names_the_notebooks_show()

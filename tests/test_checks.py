"""The exercise checkers accept the reference solutions and name each known mistake in plain words."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_edu.checks import (
    check_basic_block,
    check_downsample,
    load_solution,
    show_solution,
    solution_source,
)

Solution = load_solution("basic_block", "MyBasicBlock")


def _failures(result):
    return " | ".join(result.failures)


def test_reference_solution_passes_every_case(capsys):
    result = check_basic_block(Solution)
    assert result.passed and bool(result)
    out = capsys.readouterr().out
    assert "FAIL" not in out and "All 15 checks passed." in out


def test_identity_only_solution_passes_notebook_01_and_fails_the_conv_block(capsys):
    identity_only = load_solution("residual_block", "MyBasicBlock")
    assert check_basic_block(identity_only, identity_only=True).passed
    result = check_basic_block(identity_only)
    assert not result.passed
    assert _failures(result).count("missing projection") == 2  # the two Conv Block cases


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
    result = check_basic_block(BiasBeforeBN)
    failures = _failures(result)
    assert "bias before BN: conv1 (3x3 conv 64->64) and conv2 (3x3 conv 64->64) have a bias" in failures
    assert "(128 parameters that learn nothing)" in failures  # identity case: 2 x 64 biases
    assert "128 more: exactly the biases before BN" in failures
    assert "outputs differ" not in failures  # the biases are the only mistake


class ReluBeforeAdd(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(out + identity)


def test_relu_before_the_addition_is_detected_from_the_outputs():
    result = check_basic_block(ReluBeforeAdd)
    assert len(result.failures) == 3  # once per case, nothing else wrong
    assert all(f.startswith("ReLU before the addition:") for f in result.failures)


class NoFinalRelu(Solution):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity


class PlainBlock(Solution):
    def forward(self, x):
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))


@pytest.mark.parametrize("candidate,message", [
    (NoFinalRelu, "no ReLU after the addition"),
    (PlainBlock, "the shortcut is never added"),
])
def test_other_known_mistakes_are_named(candidate, message):
    result = check_basic_block(candidate, identity_only=True)
    assert _failures(result).startswith(message)


class StrideOnlyShortcut(Solution):
    """The blog's test: project only when the stride changes, not when the channels do."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if stride == 1:
            self.downsample = None


def test_missing_projection_when_only_the_channels_change():
    result = check_basic_block(StrideOnlyShortcut)
    assert len(result.failures) == 1
    assert result.failures[0].startswith("missing projection: forward of StrideOnlyShortcut(64, 128, stride=1)")
    assert "x must be projected" in result.failures[0]


class WrongStride(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride=1)  # forgets the stride everywhere


def test_wrong_output_shape_says_expected_and_got():
    result = check_basic_block(WrongStride)
    assert "wrong output shape: expected (4, 128, 4, 4), got (4, 128, 8, 8)" in _failures(result)


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


def test_other_layer_names_and_order_are_accepted():
    assert check_basic_block(OtherNames).passed


class ShortcutWithoutBN(Solution):
    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__(in_channels, out_channels, stride)
        if self.downsample is not None:
            self.downsample = self.downsample[0]


def test_projection_without_bn_is_reported():
    result = check_basic_block(ShortcutWithoutBN)
    assert "the 1x1 conv 64->128 stride 2 has no BN after it" in _failures(result)


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


@pytest.mark.parametrize("candidate,message", [
    (Unfinished, "returned NoneType, expected a tensor"),
    (NoSuperInit, "call super().__init__() on the first line of __init__"),
    (Unfinished(64, 64), "expected the class Unfinished itself, got an instance"),
    (lambda in_channels: None, "raised TypeError"),
    (ModifiesInput, "forward changed its input x in place"),
])
def test_broken_code_is_reported_not_raised(candidate, message):
    result = check_basic_block(candidate)
    assert not result.passed
    assert message in _failures(result)


def test_downsample_solution_passes_and_mistakes_are_named():
    make_downsample = load_solution("downsample", "make_downsample")
    assert check_downsample(make_downsample).passed

    def always_project(in_channels, out_channels, stride=1):
        return make_downsample(in_channels, out_channels, 2 if stride == 1 else stride) and \
            nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                          nn.BatchNorm2d(out_channels))

    failures = _failures(check_downsample(always_project))
    assert "returned Sequential, expected None" in failures

    def stride_only(in_channels, out_channels, stride=1):  # the blog's test, with a bias
        if stride == 1:
            return None
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride), nn.BatchNorm2d(out_channels))

    failures = _failures(check_downsample(stride_only))
    assert "returned None, but the shape changes (64 -> 128 channels)" in failures
    assert "bias before BN: layer 0 of your nn.Sequential (1x1 conv 64->128 stride 2) has a bias" in failures

    def with_relu(in_channels, out_channels, stride=1):
        module = make_downsample(in_channels, out_channels, stride)
        return None if module is None else nn.Sequential(*module, nn.ReLU())

    assert _failures(check_downsample(with_relu)).startswith("ReLU in the shortcut")


def test_show_solution_prints_it_and_unknown_names_list_the_exercises(capsys):
    show_solution("basic_block")
    assert capsys.readouterr().out == solution_source("basic_block")
    show_solution("no_such_exercise")
    out = capsys.readouterr().out
    assert "There is no exercise called 'no_such_exercise'" in out and "basic_block" in out


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
    assert "ReLU before BN: the first unit runs conv-ReLU-BN" in _failures(
        check_basic_block(ReluBeforeBN, identity_only=True))
    assert "shortcut added before bn2" in _failures(check_basic_block(ShortcutBeforeBN2, identity_only=True))


def test_a_branch_that_changes_the_shape_of_an_identity_block_is_not_blamed_on_the_shortcut():
    failures = _failures(check_basic_block(UnpaddedConv2, identity_only=True))
    assert "shape mismatch in the addition" in failures and "padding=1" in failures
    assert "projected" not in failures  # notebook 01 has not taught projections yet


@pytest.mark.parametrize("name, expected", [
    ("zero_init_stack", ["16 of 48 parameters get a gradient", "after one SGD step: 48 parameters"]),
    ("option_a_resnet50", ["channels that carry x: 64 of 256"]),
])
def test_worked_answers_run_and_print_what_their_comments_say(name, expected, capsys):
    exec(compile(solution_source(name), name, "exec"), {})
    out = capsys.readouterr().out
    assert all(text in out for text in expected), out


def test_every_solution_is_shown_whichever_checker_module_was_imported():
    # notebook 05's solutions live in checks_train; asking through checks must still find them
    import subprocess
    import sys

    code = "from resnet_edu.checks import show_solution; show_solution('decay_groups')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "def " in out and "There is no exercise" not in out

"""Notebook 02's exercises: the option A checker accepts the reference solution and names each known
mistake in plain words; the questions' checkers accept the right answers and reveal nothing before;
the worked answers print what they claim; the stored outputs of the exercise cells give no fix away."""

import json
import runpy
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from _checker_results import assert_passes, mistakes

from resnet_edu.blocks import BasicBlock, ZeroPadShortcut
from resnet_edu.exercises import (check_downsample, check_option_a_resnet50, check_stride_only_shortcut,
                                  check_zero_pad_shortcut)
from resnet_edu.exercises.solutions.zero_pad_shortcut import MyZeroPadShortcut as Solution

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_identity_and_conv_blocks.ipynb"


# ---------------------------------------------------------------- exercise 2: option A


def test_zero_pad_solution_passes_every_case(capsys):
    assert_passes(check_zero_pad_shortcut(Solution))


@pytest.mark.parametrize("in_channels,out_channels,stride,size",
                         [(64, 128, 2, 8), (16, 32, 2, 9), (64, 256, 1, 5)])
def test_zero_pad_solution_equals_the_package_and_serves_as_a_blocks_shortcut(in_channels, out_channels,
                                                                               stride, size):
    x = torch.randn(2, in_channels, size, size)
    assert torch.equal(Solution(in_channels, out_channels, stride)(x),
                       ZeroPadShortcut(in_channels, out_channels, stride)(x))
    block = BasicBlock(in_channels, out_channels, stride, shortcut="A").eval()
    expected = block(x)
    block.downsample = Solution(in_channels, out_channels, stride)
    assert torch.equal(block(x), expected)


class Starter(Solution):
    def forward(self, x):
        return x


class NotWrittenYet(Solution):  # the notebook's starter
    def forward(self, x):
        raise NotImplementedError("write forward: subsample x, then append the zero channels")


class NotBuildableYet(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        raise NotImplementedError


def _pad_channels(x, before, after):
    return F.pad(x, (0, 0, 0, 0, before, after))


class ZerosFirst(Solution):
    def forward(self, x):
        return _pad_channels(x[:, :, ::self.stride, ::self.stride], self.extra_channels, 0)


class ZerosBothSides(Solution):  # akamaster/pytorch_resnet_cifar10's convention
    def forward(self, x):
        half = self.extra_channels // 2
        return _pad_channels(x[:, :, ::self.stride, ::self.stride], half, self.extra_channels - half)


class OddPixels(Solution):
    def forward(self, x):
        s = self.stride
        return _pad_channels(x[:, :, s - 1::s, s - 1::s], 0, self.extra_channels)


class AveragePooling(Solution):
    def forward(self, x):
        return _pad_channels(F.avg_pool2d(x, self.stride), 0, self.extra_channels)


class MaxPooling(Solution):
    def forward(self, x):
        return _pad_channels(F.max_pool2d(x, self.stride), 0, self.extra_channels)


class NoSubsampling(Solution):
    def forward(self, x):
        return _pad_channels(x, 0, self.extra_channels)


class FixedStrideTwo(Solution):
    def forward(self, x):
        return _pad_channels(x[:, :, ::2, ::2], 0, self.extra_channels)


class PadsTheWidth(Solution):
    def forward(self, x):
        return F.pad(x[:, :, ::self.stride, ::self.stride], (0, self.extra_channels))


class OnesNotZeros(Solution):
    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return torch.cat([x, x.new_ones(x.shape[0], self.extra_channels, *x.shape[2:])], dim=1)


class Projection(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x):
        return self.conv(x)


class Detached(Solution):
    def forward(self, x):
        return super().forward(x).detach()


class DropsTheBatch(Solution):
    def forward(self, x):
        return super().forward(x)[:1]


class Raises(Solution):
    def forward(self, x):
        return torch.cat([x, torch.zeros(1)], dim=1)


class ReturnsAList(Solution):
    def forward(self, x):
        return [super().forward(x)]


@pytest.mark.parametrize("candidate,first_mistake", [
    (Starter, "wrong-output-shape"),
    (ZerosFirst, "zeros-before-x"),
    (ZerosBothSides, "zeros-on-both-sides"),
    (OddPixels, "wrong-pixels"),
    (AveragePooling, "average-pooling"),
    (MaxPooling, "max-pooling"),
    (NoSubsampling, "wrong-output-shape"),
    (PadsTheWidth, "padded-height-or-width"),
    (OnesNotZeros, "appended-channels-not-zero"),
    (DropsTheBatch, "wrong-output-shape"),
    (Projection, "has-parameters"),
    (Detached, "gradient-does-not-reach-x"),
    (Raises, "forward-raises"),
    (ReturnsAList, "not-a-tensor"),
    (Solution(64, 128, 2), "instance-not-class"),
    (None, "not-callable"),
])
def test_zero_pad_mistakes_are_named_not_raised(candidate, first_mistake):
    result = check_zero_pad_shortcut(candidate)
    assert not result
    assert mistakes(result)[0] == first_mistake


def test_an_unwritten_starter_gets_one_line_that_names_no_case(capsys):
    assert mistakes(check_zero_pad_shortcut(NotWrittenYet)) == ["not-written-yet"]
    out = capsys.readouterr().out
    assert "(2, " not in out and "64" not in out and "7" not in out
    assert mistakes(check_zero_pad_shortcut(NotBuildableYet)) == ["not-written-yet"]


def test_pooling_and_odd_pixels_lose_a_row_of_an_odd_size():
    for candidate in (AveragePooling, OddPixels):
        result = check_zero_pad_shortcut(candidate)
        assert mistakes(result)[1] == "wrong-output-shape"  # the 7x7 case: 3 rows, not 4


def test_a_fixed_stride_is_caught_where_the_stride_is_1():
    result = check_zero_pad_shortcut(FixedStrideTwo)
    assert mistakes(result) == ["wrong-output-shape"]
    assert result.checks[-1].status == "FAIL"  # the third case, at stride 1


class ZerosOnTheCpu(Solution):
    """Right on a CPU in float32; on a GPU torch.cat would raise, its zeros being on the CPU."""

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return torch.cat([x, torch.zeros(x.shape[0], self.extra_channels, x.shape[2], x.shape[3])], dim=1)


class ZerosOnXsDeviceOnly(Solution):
    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        zeros = torch.zeros(x.shape[0], self.extra_channels, x.shape[2], x.shape[3], device=x.device)
        return torch.cat([x, zeros], dim=1)


class ZerosLikeX(Solution):
    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return torch.cat([x, x.new_zeros(x.shape[0], self.extra_channels, x.shape[2], x.shape[3])], dim=1)


def test_zeros_made_on_the_cpu_or_in_float32_are_named():
    assert mistakes(check_zero_pad_shortcut(ZerosOnTheCpu)) == ["zeros-on-wrong-device"]
    assert mistakes(check_zero_pad_shortcut(ZerosOnXsDeviceOnly)) == ["zeros-of-wrong-dtype"]
    assert_passes(check_zero_pad_shortcut(ZerosLikeX))


class ZerosInABuffer(Solution):
    """Right: the zeros are a buffer, which model.to(device) and .to(dtype) move with the module."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__(in_channels, out_channels, stride)
        self.register_buffer("zeros", torch.zeros(1, out_channels - in_channels, 1, 1))

    def forward(self, x):
        x = x[:, :, ::self.stride, ::self.stride]
        return torch.cat([x, self.zeros.expand(x.shape[0], -1, x.shape[2], x.shape[3])], dim=1)


def test_zeros_in_a_buffer_move_with_the_module_and_pass(capsys):
    assert_passes(check_zero_pad_shortcut(ZerosInABuffer))
    assert mistakes(check_zero_pad_shortcut(ZerosOnTheCpu)) == ["zeros-on-wrong-device"]


class ChangesXInPlace(Solution):
    def forward(self, x):
        x.mul_(1.0)  # the same values, but x changed in place: the branch's backward needs x as it was
        return super().forward(x)


def test_changing_x_in_place_is_named_as_such_not_as_a_cut_gradient(capsys):
    assert mistakes(check_zero_pad_shortcut(ChangesXInPlace)) == ["modifies-input"] * 3
    assert mistakes(check_zero_pad_shortcut(Detached)) == ["gradient-does-not-reach-x"] * 3


def test_the_device_hint_names_the_tools_but_not_the_answer(capsys):
    check_zero_pad_shortcut(ZerosOnTheCpu)
    out = capsys.readouterr().out
    assert "new_zeros" in out and "F.pad(" not in out and "::" not in out


# ---------------------------------------------------------------- the questions of exercises 1 and 3


def test_stride_only_shortcut_questions(capsys):
    assert_passes(check_stride_only_shortcut({"wrong_in_resnet18": 0, "wrong_in_resnet50": 1}), capsys)
    result = check_stride_only_shortcut({"wrong_in_resnet18": 1, "wrong_in_resnet50": 0})
    assert mistakes(result) == ["too-high", "too-low"]


def test_option_a_resnet50_questions(capsys):
    right = {"padded_blocks": 4, "channels_carrying_x": 64, "parameters_b_adds": 2_776_576}
    assert_passes(check_option_a_resnet50(right))
    weights_only = 64 * 256 + 256 * 512 + 512 * 1024 + 1024 * 2048  # BN's parameters left out: within 0.5%
    assert check_option_a_resnet50({**right, "parameters_b_adds": weights_only})
    without_stage_1 = 2_776_576 - (64 * 256 + 2 * 256)  # the exercise's trap: 0.6% low
    assert mistakes(check_option_a_resnet50({**right, "parameters_b_adds": without_stage_1})) == ["too-low"]
    result = check_option_a_resnet50({**right, "padded_blocks": 3, "parameters_b_adds": 2_500_000})
    assert mistakes(result) == ["too-low", "too-low"]


@pytest.mark.parametrize("check,keys", [
    (check_stride_only_shortcut, ["wrong_in_resnet18", "wrong_in_resnet50"]),
    (check_option_a_resnet50, ["padded_blocks", "channels_carrying_x", "parameters_b_adds"]),
])
def test_unanswered_questions_reveal_nothing(check, keys, capsys):
    result = check(dict.fromkeys(keys))
    assert mistakes(result) == ["no-prediction"] * len(keys)
    assert "measures" not in capsys.readouterr().out


# ---------------------------------------------------------------- the worked answers


def _run_solution(name, capsys):
    runpy.run_module(f"resnet_edu.exercises.solutions.{name}")
    return capsys.readouterr().out


def test_stride_only_shortcut_solution_prints_its_answers(capsys):
    out = _run_solution("stride_only_shortcut", capsys)
    assert "resnet18: the stride-only test gets 0 block(s) wrong" in out
    assert "resnet50: the stride-only test gets 1 block(s) wrong" in out


def test_option_a_resnet50_solution_prints_its_answers(capsys):
    out = _run_solution("option_a_resnet50", capsys)
    assert "1. 4 blocks with a zero-padded shortcut" in out
    assert "channels that carry x: 64 of 256" in out
    assert "3. option B adds 2,776,576 parameters, 10.9% of its 25,557,032" in out


# ---------------------------------------------------------------- the notebook's stored outputs


def _exercise_outputs():
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return {"".join(c["source"]): "".join("".join(o.get("text", "")) for o in c["outputs"])
            for c in cells if c["cell_type"] == "code" and "result = check_" in "".join(c["source"])}


FIXES = ["in_channels != out_channels", "bias=False", "F.pad", "::", "torch.cat", "zeros(", "measures",
         "64 of 256", "2,776,576", "2776576"]
LEAKS = {  # what each exercise's stored output must not show either
    # exercise 1: the failing case's arguments or shape change point at the mistake
    "check_downsample": ["channels", "64", "128", "stride 1", "stride=1", "stride-only", "only at the stride"],
    # exercise 2: the shapes the learner is asked to predict, and exercise 3's ResNet50 block
    "check_zero_pad_shortcut": ["(2, ", "4, 4)", "7, 7", "256", "ResNet50", "layer1"],
    # exercise 3: nothing names ResNet50's block whose shape changes at stride 1
    "check_stride_only_shortcut": ["stride-only", "only at the stride", "layer1", "256"],
    "check_option_a_resnet50": ["layer1", "64 ", "stride 1"],
}


def test_every_exercise_cell_fails_from_its_starter_and_gives_no_fix_away():
    outputs = _exercise_outputs()
    assert len(outputs) == 4
    for source, text in outputs.items():
        if "check_downsample(" in source:  # exercise 1's report is not stored: it would point at the mistake
            assert text == "", source
            continue
        assert "problem(s)" in text, source
        checker = source.split("result = ")[1].split("(")[0]
        assert not [fix for fix in FIXES + LEAKS[checker] if fix in text], (source, text)


def _stride_only_starter(in_channels, out_channels, stride=1):  # the notebook's starter of exercise 1
    if stride == 1:
        return None
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                         nn.BatchNorm2d(out_channels))


def test_the_starter_of_exercise_1_fails_only_on_the_channel_change():
    assert mistakes(check_downsample(_stride_only_starter)) == ["missing-projection"]  # 64 -> 128 at stride 1


def test_the_notebook_runs_exercise_1_without_naming_the_failing_case(capsys):
    result = check_downsample(_stride_only_starter, show_cases=False)
    assert mistakes(result) == ["missing-projection"]
    out = capsys.readouterr().out
    assert "Case 3 of 4: a Conv Block" in out
    assert not [s for s in ("64", "128", "stride 1", "stride=1", "(4, ") if s in out], out


@pytest.mark.parametrize("show_cases", [True, False])
def test_passing_what_make_downsample_returns_is_named(show_cases, capsys):
    from resnet_edu.exercises.solutions.downsample import make_downsample

    for returned in (make_downsample(64, 128, 2), make_downsample(64, 64, 1)):  # an nn.Sequential, None
        assert mistakes(check_downsample(returned, show_cases=show_cases)) == ["result-not-function"]
    assert mistakes(check_downsample(42, show_cases=show_cases)) == ["not-callable"]


def test_exercise_1_without_names_passes_the_solution_and_still_names_other_mistakes(capsys):
    from resnet_edu.exercises.solutions.downsample import make_downsample

    assert_passes(check_downsample(make_downsample, show_cases=False))

    def biased(in_channels, out_channels, stride=1):
        module = make_downsample(in_channels, out_channels, stride)
        return None if module is None else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride), module[1])

    assert mistakes(check_downsample(biased, show_cases=False))[0] == "bias-before-bn"


def test_option_a_given_for_exercise_1_is_told_its_parameters_are_missing_not_that_backward_fails():
    def option_a(in_channels, out_channels, stride):
        if stride == 1 and in_channels == out_channels:
            return None
        return ZeroPadShortcut(in_channels, out_channels, stride)
    found = mistakes(check_downsample(option_a, show_cases=False))
    assert "backward-raises" not in found and found[0] == "wrong-parameter-count"

"""The stage and bottleneck checkers (notebooks 03 and 04): reference solutions pass, and the
typical mistakes are reported in plain words without raising."""

import re
import runpy

import torch
from torch import nn

from _checker_results import assert_passes, failure_text

from resnet_edu.blocks import BasicBlock, Bottleneck
from resnet_edu.exercises import check_bottleneck, check_stage
from resnet_edu.exercises.solutions.bottleneck import MyBottleneck
from resnet_edu.exercises.solutions.stage import make_stage
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import make_stage as reference_stage
from resnet_edu.resnet import resnet18, resnet34, resnet50


# ---------------------------------------------------------------- the references are resnet_edu's


def test_reference_stage_is_the_stage_resnet_builds():
    for model, block, layers in ((resnet18(), BasicBlock, (2, 2, 2, 2)),
                                 (resnet34(), BasicBlock, (3, 4, 6, 3)),
                                 (resnet50(), Bottleneck, (3, 4, 6, 3))):
        in_channels = 64
        for i, (width, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            stage = reference_stage(block, in_channels, width, layers[i], stride)
            stage.load_state_dict(getattr(model, f"layer{i + 1}").state_dict(), strict=True)
            in_channels = width * block.expansion


def test_solutions_build_the_same_modules_as_the_package():
    torch.manual_seed(0)
    stage = make_stage(Bottleneck, 256, 128, 4, 2)
    stage.load_state_dict(resnet50().layer2.state_dict(), strict=True)
    block = MyBottleneck(64, 64)
    block.load_state_dict(Bottleneck(64, 64).state_dict(), strict=True)
    assert count_parameters(block) == count_parameters(Bottleneck(64, 64)) == 75_008


# ---------------------------------------------------------------- check_stage


def test_reference_stage_solution_passes(capsys):
    out = assert_passes(check_stage(make_stage), capsys)
    assert "ResNet50's layer1: a Conv Block at stride 1" in out  # the bottleneck case ran too


def starter_stage(block, in_channels, width, num_blocks, stride):
    """Notebook 03's starter: every block gets the stride and the stage's in_channels."""
    return nn.Sequential(*[block(in_channels, width, stride) for _ in range(num_blocks)])


def test_starter_stage_names_the_stride_and_the_bookkeeping():
    result = check_stage(starter_stage)
    failures = failure_text(result)
    assert not result.passed
    assert "stage[1], stage[2] and stage[3] of 4 blocks: stride 2 instead of 1" in failures
    assert "built for 64 input channels, but 128 flow into it" in failures
    assert ("built for 64 input channels, but 256 flow into it: how many channels does a block of "
            "width 64 give out?") in failures  # the ResNet50 case
    assert "block.expansion =" not in failures  # a nudge with the counts, not the formula


def forgets_expansion(block, in_channels, width, num_blocks, stride):
    blocks = [block(in_channels, width, stride)]
    blocks += [block(width, width, 1) for _ in range(num_blocks - 1)]  # forgets * block.expansion
    return nn.Sequential(*blocks)


def test_forgetting_the_expansion_fails_only_for_the_bottleneck_stage():
    result = check_stage(forgets_expansion)
    block_failures = [f for f in result.failures if f.startswith("stage[")]
    # one line for the two Identity Blocks of ResNet50's layer1, nothing else
    assert block_failures == ["stage[1] and stage[2] of 3 blocks: built for 64 input channels, but 256 "
                              "flow into it: how many channels does a block of width 64 give out?"]


def hard_coded_two_blocks(block, in_channels, width, num_blocks, stride):
    return make_stage(block, in_channels, width, 2, stride)


def test_a_hard_coded_block_count_is_reported():
    failures = failure_text(check_stage(hard_coded_two_blocks))
    assert "expected 4 blocks (num_blocks=4), got 2" in failures
    assert "expected 3 blocks (num_blocks=3), got 2" in failures


def returns_a_list(block, in_channels, width, num_blocks, stride):
    return list(make_stage(block, in_channels, width, num_blocks, stride))


def test_a_list_instead_of_a_module_is_reported_without_raising():
    failures = failure_text(check_stage(returns_a_list))
    assert "returned a list of blocks, expected one module: return nn.Sequential(*blocks)" in failures


def test_passing_a_built_stage_instead_of_the_function_is_reported():
    failures = failure_text(check_stage(make_stage(BasicBlock, 64, 64, 2, 1)))
    assert "expected the class Sequential itself, got an instance of it" in failures


# ---------------------------------------------------------------- check_bottleneck


def test_reference_bottleneck_solution_passes(capsys):
    out = assert_passes(check_bottleneck(MyBottleneck), capsys)
    assert "the stride sits on the 3x3 convolution (v1.5, as torchvision)" in out


class StrideOnFirst1x1(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)


def test_stride_on_the_first_1x1_is_named_as_v1():
    failures = failure_text(check_bottleneck(StrideOnFirst1x1))
    assert "stride on the first 1x1 (the paper's v1)" in failures
    assert "the 3x3 convolution has stride 1, expected 2" in failures
    assert "parameters" not in failures  # moving the stride changes no parameter
    # it ends with a question, not with the fix
    assert "which of the three convolutions can take the stride and still read every pixel?" in failures
    assert "conv2 gets the stride" not in failures


class ProjectsOnlyOnStride(MyBottleneck):
    """The blog's rule `if stride != 1`: no projection for 64 -> 256 channels at stride 1."""

    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        if stride == 1:
            self.downsample = None


def test_a_missing_projection_at_stride_1_is_named():
    failures = check_bottleneck(ProjectsOnlyOnStride).failures
    # the precise reason, and not the crash it causes in the addition
    assert failures and all(f.startswith("missing projection: the channels change (64 -> 256)") for f in failures)
    # it asks which shape changes the learner's test looks at, and does not state the rule
    assert all(f.endswith("Which shape changes does your test for a projection look at?") for f in failures)
    assert not any("in_channels != width * expansion" in f for f in failures)


class NoExpansionAttribute(MyBottleneck):
    expansion = 1


def test_a_wrong_expansion_attribute_is_reported():
    failures = failure_text(check_bottleneck(NoExpansionAttribute))
    assert "the class attribute expansion should be 4, got 1" in failures


class ReluBeforeAdd(MyBottleneck):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn3(self.conv3(out)))  # the extra ReLU
        return self.relu(out + identity)


def test_relu_before_the_addition_is_named():
    assert "ReLU before the addition" in failure_text(check_bottleneck(ReluBeforeAdd))


class BrokenConstructor(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        raise NotImplementedError("TODO")


def test_a_constructor_that_raises_is_reported_not_raised():
    result = check_bottleneck(BrokenConstructor)
    assert not result.passed
    assert "raised NotImplementedError: TODO" in failure_text(result)


# ---------------------------------------------------------------- exercise 2 of notebooks 03 and 04


def _run_solution(name, capsys):
    runpy.run_module(f"resnet_edu.exercises.solutions.{name}")
    return capsys.readouterr().out


def _predicted_equals_measured(out):
    pairs = re.findall(r"([\d,]+) predicted, ([\d,]+) measured", out)
    return bool(pairs) and all(predicted == measured for predicted, measured in pairs)


def test_the_resnet18_predictions_equal_the_measurements(capsys):
    out = _run_solution("resnet18_predictions", capsys)
    assert re.search(r"^1\. [\d,]+ predicted, [\d,]+ measured$", out, re.M) and _predicted_equals_measured(out)
    assert "2. (1, 512, 19, 13)" in out
    assert "3. ['layer1[0]', 'layer2[0]', 'layer3[0]', 'layer4[0]']" in out


def test_the_resnet50_predictions_equal_the_measurements(capsys):
    out = _run_solution("resnet50_predictions", capsys)
    assert re.findall(r"^(\d)\. [\d,]+ predicted", out, re.M) == ["1", "2"] and _predicted_equals_measured(out)
    assert "1. 280,064 predicted" in out  # the Identity Block of width 128
    extra = re.findall(r"^3\. (resnet\d+) v1\.5 costs ([\d.]+) M MACs more, ([\d.]+)%", out, re.M)
    assert [name for name, _, _ in extra] == ["resnet50", "resnet101"]
    (_, macs50, share50), (_, macs101, share101) = extra
    assert macs50 == macs101 and float(share101) < float(share50)  # the same extra, a smaller share

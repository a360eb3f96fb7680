"""The stage and bottleneck checkers (notebooks 03 and 04): reference solutions pass, and the
typical mistakes are reported in plain words without raising."""

import re
import runpy

import torch
import torchvision
from torch import nn

from _checker_results import assert_names, assert_passes, mistakes

from resnet_edu.blocks import BasicBlock, Bottleneck
from resnet_edu.exercises import check_bottleneck, check_stage
from resnet_edu.exercises.solutions.bottleneck import MyBottleneck
from resnet_edu.exercises.solutions.stage import make_stage
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import make_stage as reference_stage
from resnet_edu.resnet import resnet50


# ---------------------------------------------------------------- the references are resnet_edu's


def test_reference_stage_computes_what_torchvisions_stage_computes():
    """make_stage, given torchvision's weights for a stage, gives torchvision's outputs: the stride,
    the channels and the block kinds are right, not only the names and shapes of the weights."""
    torch.manual_seed(0)
    for name, block, layers in (("resnet18", BasicBlock, (2, 2, 2, 2)), ("resnet50", Bottleneck, (3, 4, 6, 3))):
        theirs = getattr(torchvision.models, name)().eval()
        x, in_channels = torch.randn(2, 64, 16, 16), 64
        for i, (width, stride) in enumerate(zip((64, 128, 256, 512), (1, 2, 2, 2))):
            stage = reference_stage(block, in_channels, width, layers[i], stride).eval()
            their_stage = getattr(theirs, f"layer{i + 1}")
            stage.load_state_dict(their_stage.state_dict(), strict=True)
            with torch.no_grad():
                expected = their_stage(x)
                assert torch.allclose(stage(x), expected, atol=1e-5), f"{name} layer{i + 1}"
            x, in_channels = expected, width * block.expansion


def test_solutions_build_the_same_modules_as_the_package():
    torch.manual_seed(0)
    stage = make_stage(Bottleneck, 256, 128, 4, 2)
    stage.load_state_dict(resnet50().layer2.state_dict(), strict=True)
    block = MyBottleneck(64, 64)
    block.load_state_dict(Bottleneck(64, 64).state_dict(), strict=True)
    assert count_parameters(block) == count_parameters(Bottleneck(64, 64)) == 75_008


# ---------------------------------------------------------------- check_stage


def test_reference_stage_solution_passes(capsys):
    result = check_stage(make_stage)
    assert_passes(result)
    assert len(result.checks) > 3 * 2  # every case ran its checks, the bottleneck case too


def starter_stage(block, in_channels, width, num_blocks, stride):
    """Notebook 03's starter: every block gets the stride and the stage's in_channels."""
    return nn.Sequential(*[block(in_channels, width, stride) for _ in range(num_blocks)])


def test_starter_stage_names_the_stride_and_the_bookkeeping():
    result = check_stage(starter_stage)
    # ResNet34's and ResNet50's layer2: the later blocks get the stride (and the wrong in_channels);
    # ResNet50's layer1: in_channels
    assert mistakes(result) == ["stride-on-wrong-block", "wrong-in-channels", "stride-on-wrong-block"]
    assert "block.expansion =" not in " ".join(result.failures)  # a nudge with the counts, not the formula


def forgets_expansion(block, in_channels, width, num_blocks, stride):
    blocks = [block(in_channels, width, stride)]
    blocks += [block(width, width, 1) for _ in range(num_blocks - 1)]  # forgets * block.expansion
    return nn.Sequential(*blocks)


def test_forgetting_the_expansion_fails_only_for_the_bottleneck_stages():
    # one line for the Identity Blocks of each of ResNet50's two stages, nothing for the basic blocks
    assert mistakes(check_stage(forgets_expansion)) == ["wrong-in-channels"] * 2


def hard_coded_two_blocks(block, in_channels, width, num_blocks, stride):
    return make_stage(block, in_channels, width, 2, stride)


def test_a_hard_coded_block_count_is_reported():
    assert mistakes(check_stage(hard_coded_two_blocks)) == ["wrong-number-of-blocks"] * 3


def returns_a_list(block, in_channels, width, num_blocks, stride):
    return list(make_stage(block, in_channels, width, num_blocks, stride))


def test_a_list_instead_of_a_module_is_reported_without_raising():
    assert mistakes(check_stage(returns_a_list)) == ["returned-a-list"] * 4


def test_passing_a_built_stage_instead_of_the_function_is_reported():
    assert mistakes(check_stage(make_stage(BasicBlock, 64, 64, 2, 1))) == ["result-not-function"]


# ---------------------------------------------------------------- check_bottleneck


def test_reference_bottleneck_solution_passes(capsys):
    assert_passes(check_bottleneck(MyBottleneck))


class StrideOnFirst1x1(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)


def test_stride_on_the_first_1x1_is_named_as_v1():
    result = check_bottleneck(StrideOnFirst1x1)
    assert mistakes(result) == ["stride-on-first-1x1"]  # moving the stride changes no parameter
    assert "conv2 gets the stride" not in " ".join(result.failures)  # a question, not the fix


class ProjectsOnlyOnStride(MyBottleneck):
    """The blog's rule `if stride != 1`: no projection for 64 -> 256 channels at stride 1."""

    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        if stride == 1:
            self.downsample = None


def test_a_missing_projection_at_stride_1_is_named():
    result = check_bottleneck(ProjectsOnlyOnStride)
    # the precise reason (once, for ResNet50's layer1[0]), and not the crash it causes in the addition
    assert mistakes(result) == ["missing-projection"]
    assert not any("in_channels != width * expansion" in f for f in result.failures)  # never the rule


class NoExpansionAttribute(MyBottleneck):
    expansion = 1


def test_a_wrong_expansion_attribute_is_reported():
    assert_names(check_bottleneck(NoExpansionAttribute), "missing-expansion")


class ReluBeforeAdd(MyBottleneck):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn3(self.conv3(out)))  # the extra ReLU
        return self.relu(out + identity)


def test_relu_before_the_addition_is_named():
    assert mistakes(check_bottleneck(ReluBeforeAdd)) == ["relu-before-addition"] * 3


class BrokenConstructor(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        raise NotImplementedError("TODO")


def test_a_constructor_that_raises_is_reported_not_raised():
    assert mistakes(check_bottleneck(BrokenConstructor)) == ["constructor-raises"] * 3


# ---------------------------------------------------------------- the predictions: 03's exercise 3, 04's exercise 2


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


def test_one_block_placed_several_times_is_named(capsys):
    """nn.Sequential(*[block] * n) has n places but one block object: children() lists it once, so
    the report used to say 'got 1 block: loop over num_blocks', though the learner did."""
    def shared_stage(block, in_channels, width, num_blocks, stride):
        first = block(in_channels, width, stride)
        rest = block(width * block.expansion, width, 1)
        return nn.Sequential(first, *[rest] * (num_blocks - 1))

    result = check_stage(shared_stage)
    assert "same-block-repeated" in mistakes(result)
    assert "wrong-number-of-blocks" not in mistakes(result)


def test_named_blocks_are_told_to_be_numbered():
    """A stage of the right blocks under names of its own builds and runs, but torchvision's weights
    (loaded strictly at the end of notebook 03) find no layer1.0.conv1.weight in it."""
    from collections import OrderedDict

    def named_stage(block, in_channels, width, num_blocks, stride):
        blocks = [(f"block{i}", block(in_channels if i == 0 else width * block.expansion, width,
                                      stride if i == 0 else 1)) for i in range(num_blocks)]
        return nn.Sequential(OrderedDict(blocks))

    assert set(mistakes(check_stage(named_stage))) == {"blocks-not-numbered"}

    def numbered_stage(*args):
        return nn.Sequential(OrderedDict((str(i), b) for i, b in enumerate(make_stage(*args))))

    assert_passes(check_stage(numbered_stage))


def test_a_block_built_with_the_wrong_width_is_named_where_it_is():
    """width * expansion passed as every block's width: the first block takes the right input, so
    only a width check names it; without one the FAIL landed on the later blocks' in_channels."""
    def widened_stage(block, in_channels, width, num_blocks, stride):
        out = width * block.expansion
        return nn.Sequential(*[block(in_channels if i == 0 else out * block.expansion, out, stride if i == 0 else 1)
                               for i in range(num_blocks)])

    result = check_stage(widened_stage)
    assert_names(result, "wrong-width")
    assert "wrong-in-channels" not in mistakes(result)  # the first block's input is right; its width is not

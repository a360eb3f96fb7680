"""The stage and bottleneck checkers (notebooks 03 and 04): reference solutions pass, and the
typical mistakes are reported in plain words without raising."""

import torch
from torch import nn

from resnet_edu.blocks import BasicBlock, Bottleneck
from resnet_edu.checks import (
    check_bottleneck,
    check_stage,
    load_solution,
    reference_stage,
    show_solution,
)
from resnet_edu.inspect import count_parameters
from resnet_edu.resnet import resnet18, resnet34, resnet50

make_stage = load_solution("stage", "make_stage")
MyBottleneck = load_solution("bottleneck", "MyBottleneck")


def _failures(result):
    return " | ".join(result.failures)


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
    result = check_stage(make_stage)
    assert result.passed
    out = capsys.readouterr().out
    assert "FAIL" not in out and "All 18 checks passed." in out


def starter_stage(block, in_channels, width, num_blocks, stride):
    """Notebook 03's starter: every block gets the stride and the stage's in_channels."""
    return nn.Sequential(*[block(in_channels, width, stride) for _ in range(num_blocks)])


def test_starter_stage_names_the_stride_and_the_bookkeeping():
    result = check_stage(starter_stage)
    failures = _failures(result)
    assert not result.passed
    assert "stage[1], stage[2] and stage[3] of 4 blocks: stride 2 instead of 1" in failures
    assert "built for 64 input channels, but 128 flow into it" in failures
    assert "width * block.expansion = 64 * 4 = 256" in failures  # the ResNet50 case


def forgets_expansion(block, in_channels, width, num_blocks, stride):
    blocks = [block(in_channels, width, stride)]
    blocks += [block(width, width, 1) for _ in range(num_blocks - 1)]  # forgets * block.expansion
    return nn.Sequential(*blocks)


def test_forgetting_the_expansion_fails_only_for_the_bottleneck_stage():
    result = check_stage(forgets_expansion)
    block_failures = [f for f in result.failures if f.startswith("stage[")]
    # one line for the two Identity Blocks of ResNet50's layer1, nothing else
    assert block_failures == ["stage[1] and stage[2] of 3 blocks: built for 64 input channels, but 256 "
                              "flow into it: after the first block, in_channels becomes width * "
                              "block.expansion = 64 * 4 = 256"]


def hard_coded_two_blocks(block, in_channels, width, num_blocks, stride):
    return make_stage(block, in_channels, width, 2, stride)


def test_a_hard_coded_block_count_is_reported():
    failures = _failures(check_stage(hard_coded_two_blocks))
    assert "expected 4 blocks (num_blocks=4), got 2" in failures
    assert "expected 3 blocks (num_blocks=3), got 2" in failures


def returns_a_list(block, in_channels, width, num_blocks, stride):
    return list(make_stage(block, in_channels, width, num_blocks, stride))


def test_a_list_instead_of_a_module_is_reported_without_raising():
    failures = _failures(check_stage(returns_a_list))
    assert "returned a list of blocks, expected one module: return nn.Sequential(*blocks)" in failures


def test_passing_a_built_stage_instead_of_the_function_is_reported():
    failures = _failures(check_stage(make_stage(BasicBlock, 64, 64, 2, 1)))
    assert "expected the class Sequential itself, got an instance of it" in failures


# ---------------------------------------------------------------- check_bottleneck


def test_reference_bottleneck_solution_passes(capsys):
    result = check_bottleneck(MyBottleneck)
    assert result.passed
    out = capsys.readouterr().out
    assert "FAIL" not in out and "All 20 checks passed." in out


class StrideOnFirst1x1(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        self.conv1.stride, self.conv2.stride = (stride, stride), (1, 1)


def test_stride_on_the_first_1x1_is_named_as_v1():
    failures = _failures(check_bottleneck(StrideOnFirst1x1))
    assert "stride on the first 1x1 (the paper's v1)" in failures
    assert "the 3x3 convolution has stride 1, expected 2" in failures
    assert "parameters" not in failures  # moving the stride changes no parameter


class ProjectsOnlyOnStride(MyBottleneck):
    """The blog's rule `if stride != 1`: no projection for 64 -> 256 channels at stride 1."""

    def __init__(self, in_channels, width, stride=1):
        super().__init__(in_channels, width, stride)
        if stride == 1:
            self.downsample = None


def test_a_missing_projection_at_stride_1_is_named():
    result = check_bottleneck(ProjectsOnlyOnStride)
    failures = _failures(result)
    assert "missing projection: the channels change (64 -> 256)" in failures
    assert len(result.failures) == 1  # case 1 only, and the precise reason rather than the crash


class NoExpansionAttribute(MyBottleneck):
    expansion = 1


def test_a_wrong_expansion_attribute_is_reported():
    failures = _failures(check_bottleneck(NoExpansionAttribute))
    assert "the class attribute expansion should be 4, got 1" in failures


class ReluBeforeAdd(MyBottleneck):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.relu(self.bn3(self.conv3(out)))  # the extra ReLU
        return self.relu(out + identity)


def test_relu_before_the_addition_is_named():
    assert "ReLU before the addition" in _failures(check_bottleneck(ReluBeforeAdd))


class BrokenConstructor(MyBottleneck):
    def __init__(self, in_channels, width, stride=1):
        raise NotImplementedError("TODO")


def test_a_constructor_that_raises_is_reported_not_raised():
    result = check_bottleneck(BrokenConstructor)
    assert not result.passed
    assert "raised NotImplementedError: TODO" in _failures(result)


def test_show_solution_prints_both_references(capsys):
    show_solution("stage")
    show_solution("bottleneck")
    out = capsys.readouterr().out
    assert "def make_stage(block, in_channels, width, num_blocks, stride):" in out
    assert "class MyBottleneck(nn.Module):" in out


# ---------------------------------------------------------------- exercise 2 of notebooks 03 and 04


def test_the_prediction_solutions_run_and_predict_what_they_measure(capsys):
    import re

    from resnet_edu.checks import solution_source

    for name in ("resnet18_predictions", "resnet50_predictions"):
        exec(compile(solution_source(name), f"<solution {name}>", "exec"), {})
    out = capsys.readouterr().out
    pairs = re.findall(r"([\d,]+) predicted, ([\d,]+) measured", out)
    assert len(pairs) == 3 and all(predicted == measured for predicted, measured in pairs)
    assert "(1, 512, 10, 10)" in out and "['layer2[0]', 'layer3[0]', 'layer4[0]']" in out
    percents = [float(p) for p in re.findall(r"MACs more, ([\d.]+)%", out)]
    assert len(percents) == 2 and percents[1] < percents[0]  # ResNet101 pays a smaller share

"""The checker of notebook 04's bottleneck block, ``check_bottleneck``, and the block's known mistakes.

A learner's ``MyBottleneck(in_channels, width, stride=1)`` is compared with
:class:`resnet_edu.blocks.Bottleneck` in the three places ResNet50 uses it: first the facts of
the exercise (the expansion, where the stride sits, whether the shortcut projects), then the
engine's generic checks.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import Bottleneck
from .engine import Case, Mistake, check_facts_then_reference, checking, conv_bn_units, is_buildable
from .residual_block import shortcut


def _bottleneck_v1(ref, x):
    """The reference block with the stride moved from the 3x3 to the first 1x1 (the paper's v1)."""
    stride = ref.conv2.stride
    out = F.relu(ref.bn1(F.conv2d(x, ref.conv1.weight, stride=stride)))
    out = F.relu(ref.bn2(F.conv2d(out, ref.conv2.weight, padding=1)))
    return F.relu(ref.bn3(ref.conv3(out)) + shortcut(ref, x))


def _bottleneck_branch(ref, x, relu_after_3x3=True):
    out = F.relu(ref.bn1(ref.conv1(x)))
    out = ref.bn2(ref.conv2(out))
    return ref.bn3(ref.conv3(F.relu(out) if relu_after_3x3 else out))


V1_MISTAKE = Mistake(
    "stride on the first 1x1 (the paper's v1)", _bottleneck_v1,
    "the 1x1 reduction carries the stride, so it skips three of every four pixels before any "
    "convolution looks at them. torchvision and resnet_edu put the stride on the 3x3 (ResNet v1.5): "
    "conv1 gets stride 1, conv2 gets the stride.")

BOTTLENECK_MISTAKES = [
    V1_MISTAKE,
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_bottleneck_branch(r, x)) + shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so it can only add. End the "
            "branch with bn3; apply the ReLU once, after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _bottleneck_branch(r, x) + shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_bottleneck_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) before the final ReLU."),
    Mistake("no ReLU after the 3x3",
            lambda r, x: F.relu(_bottleneck_branch(r, x, relu_after_3x3=False) + shortcut(r, x)),
            "bn2's output goes into the expanding 1x1 without a ReLU. The branch is "
            "conv1-BN-ReLU, conv2-BN-ReLU, conv3-BN."),
]

BOTTLENECK_CASES = [
    Case("ResNet50's layer1[0]: a Conv Block at stride 1 (64 -> 256 channels)", (64, 64),
         {"stride": 1}, (2, 64, 8, 8)),
    Case("an Identity Block (256 -> 256 channels)", (256, 64), {"stride": 1}, (2, 256, 8, 8)),
    Case("ResNet50's layer2[0]: a Conv Block with stride 2 (256 -> 512 channels)", (256, 128),
         {"stride": 2}, (2, 256, 8, 8)),
]


def _check_expansion(result, candidate_class):
    expansion = getattr(candidate_class, "expansion", None)
    if expansion == Bottleneck.expansion:
        result.ok("expansion = 4: the block gives out 4 * width channels, and builders can read it")
    else:
        result.fail(f"the class attribute expansion should be {Bottleneck.expansion}, got "
                    f"{expansion!r}: ResNet's builder reads block.expansion to know that 4 * width "
                    "channels leave the block. Add `expansion = 4` to the class body.")


def _check_projection(result, block, case):
    """Whether the shortcut projects exactly where it must."""
    in_channels, width = case.args
    stride = case.kwargs["stride"]
    must_project = Bottleneck(in_channels, width, stride).downsample is not None
    projects = len([m for m in block.modules() if isinstance(m, nn.Conv2d)]) > 3
    if must_project and not projects:
        why = "the stride is 2" if stride != 1 else f"the channels change ({in_channels} -> {4 * width})"
        result.fail(f"missing projection: {why}, so x must pass a 1x1 convolution with the block's "
                    f"stride and a BN before the addition. Project when stride != 1 or "
                    f"in_channels != width * expansion, not only when the stride changes.")
    elif projects and not must_project:
        result.fail("a projection where none is needed: the input and output shapes are equal, so "
                    "the shortcut is x itself (downsample = None)")
    else:
        result.ok("a projection shortcut" if must_project else "the shortcut is x itself")


def _check_stride_position(result, block, case):
    """Which convolution carries the stride of a strided block."""
    width, stride = case.args[1], case.kwargs["stride"]
    try:
        units = conv_bn_units(block, torch.zeros(case.input_shape))
    except Exception:  # forward fails: the generic checks report it
        return
    threes = [conv for conv, _ in units if conv.kernel_size == (3, 3)]
    strided_reduce = [conv for conv, _ in units
                      if conv.kernel_size == (1, 1) and conv.out_channels == width and conv.stride != (1, 1)]
    if threes and threes[0].stride == (stride, stride) and not strided_reduce:
        result.ok("the stride sits on the 3x3 convolution (v1.5, as torchvision)")
    elif strided_reduce:
        three_stride = threes[0].stride[0] if threes else "?"
        result.fail(f"{V1_MISTAKE.name}: the 3x3 convolution has stride {three_stride}, "
                    f"expected {stride}; {V1_MISTAKE.explanation}")
    elif threes:
        result.fail(f"the 3x3 convolution has stride {threes[0].stride[0]}, expected {stride}: the "
                    "first block of a stage halves the resolution with the stride of its 3x3")


def _check_bottleneck_layout(result, block, case):
    """Whether a projection exists where it must, and, in a strided block, where the stride sits."""
    _check_projection(result, block, case)
    if case.kwargs["stride"] != 1:
        _check_stride_position(result, block, case)


def check_bottleneck(candidate_class):
    """Check a learner's ``MyBottleneck(in_channels, width, stride=1)`` against Bottleneck."""
    with checking("bottleneck", "Checking your bottleneck against resnet_edu.blocks.Bottleneck") as result:
        if is_buildable(result, candidate_class):
            _check_expansion(result, candidate_class)
            name = getattr(candidate_class, "__name__", "your block")
            for case in BOTTLENECK_CASES:
                check_facts_then_reference(result, candidate_class, Bottleneck, case, name,
                                           _check_bottleneck_layout, BOTTLENECK_MISTAKES)
    return result

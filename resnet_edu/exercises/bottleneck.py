"""The checkers of notebook 04: ``check_bottleneck`` (the bottleneck block and its known mistakes)
and ``check_resnet50_predictions`` (exercise 2, predict, then check).

A learner's ``MyBottleneck(in_channels, width, stride=1)`` is compared with
:class:`resnet_edu.blocks.Bottleneck` in the three places ResNet50 uses it: first the facts of
the exercise (the expansion, whether the shortcut projects, which convolution carries the stride),
then the engine's generic checks. :func:`resnet_edu.resnet.stride_on_first_1x1` builds the v1 placement that the
checker recognises, the notebook measures and the solutions use.
"""

import copy
import functools

import torch.nn.functional as F
from torch import nn

from ..blocks import Bottleneck
from ..measure import count_macs, count_parameters, on_meta
from ..resnet import ResNet, resnet50, resnet101, stride_on_first_1x1
from .engine import (REFERENCE_MISTAKES, Case, Mistake, catalogue, check_facts_then_reference, checking,
                     describe_conv, is_buildable)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions
from .residual_block import residual_mistakes, shortcut


def _bottleneck_branch(ref, x, relu_after_3x3=True, last_bn=True):
    out = F.relu(ref.bn1(ref.conv1(x)))
    out = ref.bn2(ref.conv2(out))
    out = ref.conv3(F.relu(out) if relu_after_3x3 else out)
    return ref.bn3(out) if last_bn else out


V1_MISTAKE = Mistake(
    "stride-on-first-1x1", "stride on the first 1x1 (the paper's v1)",
    lambda ref, x: stride_on_first_1x1(copy.deepcopy(ref))(x),
    "the 1x1 reduction carries the stride, as in the models the paper's authors released (ResNet "
    "v1), so it skips three of every four pixels before any convolution looks at them. The exercise "
    "asks for torchvision's placement (ResNet v1.5): which of the three convolutions can take the "
    "stride and still read every pixel?")

BOTTLENECK_MISTAKES = [
    V1_MISTAKE,
    *residual_mistakes(_bottleneck_branch, "bn3"),
    Mistake("no-relu-after-3x3", "no ReLU after the 3x3",
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

# The convolutions of a strided bottleneck, told apart by their shapes: (in, out, kernel) as
# functions of the case's in_channels and width. The branch's three come in the order they run.
BRANCH_ROLES = {"the 1x1 reduction": lambda c, w: (c, w, (1, 1)),
                "the 3x3": lambda c, w: (w, w, (3, 3)),
                "the expanding 1x1": lambda c, w: (w, 4 * w, (1, 1))}
PROJECTION_ROLE = ("the projection", lambda c, w: (c, 4 * w, (1, 1)))

LAYOUT_MISTAKES = {  # what the facts of the exercise can report, before the generic checks
    "missing-expansion": "the class attribute expansion is not 4",
    "wrong-expansion": "the expanding 1x1 gives out another multiple of width than 4",
    "missing-projection": "no projection where the stride or the channels change",
    "needless-projection": "a projection where the shortcut can be x itself",
    "unstrided-projection": "the projection does not carry the block's stride",
    "branch-downsamples-twice": "more than one convolution of the branch carries the stride",
    "branch-never-downsamples": "no convolution of the branch carries the stride",
    "stride-not-on-3x3": "the stride sits on one convolution, but not on the 3x3 (nor on the first 1x1 alone)",
}


def _check_expansion(result, candidate_class):
    expansion = getattr(candidate_class, "expansion", None)
    if expansion == Bottleneck.expansion:
        result.ok("expansion = 4: the block gives out 4 * width channels, and builders can read it")
    else:
        result.fail("missing-expansion", f"the class attribute expansion should be {Bottleneck.expansion}, got "
                    f"{expansion!r}: ResNet's builder reads block.expansion to know that 4 * width "
                    "channels leave the block. Add `expansion = 4` to the class body.")


def _convs_by_role(block, case):
    """{role: the learner's convolution with that shape}, or None when the shapes do not tell the
    roles apart (a missing or extra convolution: the generic checks report it)."""
    in_channels, width = case.args
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    found = {}
    for role, shape in list(BRANCH_ROLES.items()) + [PROJECTION_ROLE]:
        wanted = shape(in_channels, width)
        matches = [c for c in convs if (c.in_channels, c.out_channels, c.kernel_size) == wanted]
        if len(matches) > 1:
            return None
        if matches:
            found[role] = matches[0]
    return found if all(role in found for role in BRANCH_ROLES) else None


def _size_after(size, conv):
    """The height (= width) of a square map of ``size`` after ``conv``."""
    (k, _), (s, _), (p, _), (d, _) = conv.kernel_size, conv.stride, conv.padding, conv.dilation
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _check_projection(result, block, case, convs):
    """Whether the shortcut projects exactly where it must, with the block's stride."""
    in_channels, width = case.args
    stride = case.kwargs["stride"]
    expanding = [m for m in block.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)
                 and m.in_channels == width and m.out_channels != width]
    if expanding and all(m.out_channels != 4 * width for m in expanding):
        out = expanding[0].out_channels
        result.fail("wrong-expansion",
                    f"the expanding 1x1 gives out {out} channels ({out / width:g} x width), expected 4 x width = "
                    f"{4 * width}: a bottleneck widens its output four times (expansion = 4), and the shortcut, "
                    "projection or not, follows from that. Build the last 1x1 with width * self.expansion.")
        return
    must_project = Bottleneck(in_channels, width, stride).downsample is not None
    projects = len([m for m in block.modules() if isinstance(m, nn.Conv2d)]) > 3
    projection = (convs or {}).get(PROJECTION_ROLE[0])
    if must_project and not projects:
        why = "the stride is 2" if stride != 1 else f"the channels change ({in_channels} -> {4 * width})"
        result.fail("missing-projection",
                    f"missing projection: {why}, so x cannot be added to F(x) as it is. Which shape "
                    "changes does your test for a projection look at?")
    elif projects and not must_project:
        result.fail("needless-projection",
                    "a projection where none is needed: the input and output shapes are equal, so "
                    "the shortcut is x itself (downsample = None)")
    elif projection is not None and projection.stride != (stride, stride):
        result.fail("unstrided-projection",
                    f"the projection ({describe_conv(projection)}) has stride {projection.stride[0]}, "
                    f"expected {stride}: the shortcut must change the resolution exactly as the "
                    "branch does, or x and F(x) cannot be added. Build it with the block's stride.")
    else:
        result.ok("a projection shortcut" if must_project else "the shortcut is x itself")


def _stride_problem(strided, convs, case):
    """(mistake id, words) for why the branch's strides are wrong, or None when only the 3x3 carries it."""
    stride, size = case.kwargs["stride"], case.input_shape[-1]
    three = convs["the 3x3"]
    branch_size = size
    for role in BRANCH_ROLES:  # in the order the branch runs them
        branch_size = _size_after(branch_size, convs[role])
    expected_size = (size - 1) // stride + 1
    sizes = (f"so F(x) comes out {branch_size}x{branch_size} while the shortcut gives "
             f"{expected_size}x{expected_size}")
    if strided == ["the 3x3"] and three.stride == (stride, stride):
        return None
    if strided == ["the 1x1 reduction"] and three.stride == (1, 1):
        return V1_MISTAKE.id, (f"{V1_MISTAKE.name}: the 3x3 convolution has stride 1, expected {stride}; "
                f"{V1_MISTAKE.explanation}")
    if len(strided) > 1:
        named = " and ".join(f"{role} ({describe_conv(convs[role])})" for role in strided)
        times = "twice" if len(strided) == 2 else f"{len(strided)} times"
        return "branch-downsamples-twice", (f"the branch downsamples {times}: {named} each carry a stride, {sizes}: "
                f"1/{(expected_size // branch_size) ** 2} of the pixels. The shortcut is right; the "
                "branch must halve the resolution once. Keep the stride on the 3x3 alone (v1.5): "
                "the 1x1 convolutions get stride 1.")
    if not strided:
        return "branch-never-downsamples", (f"the branch never downsamples: none of its convolutions has a stride, "
                                            f"{sizes}. Give the 3x3 convolution stride={stride} (v1.5).")
    where = strided[0]
    return "stride-not-on-3x3", (f"the stride sits on {where} ({describe_conv(convs[where])}), not on the 3x3: the 3x3 "
            f"convolution has stride {three.stride[0]}, expected {stride}. Put the stride on the 3x3 "
            "(v1.5); every other convolution of the branch gets stride 1.")


def _check_stride_position(result, convs, case):
    """Which convolution of the branch carries the stride of a strided block (read from the
    modules, so that a branch whose shape is wrong is named before the addition fails)."""
    strided = [role for role in BRANCH_ROLES if convs[role].stride != (1, 1)]
    problem = _stride_problem(strided, convs, case)
    if problem is None:
        result.ok("the stride sits on the 3x3 convolution (v1.5, as torchvision)")
    else:
        result.fail(*problem)


def _check_bottleneck_layout(result, block, case):
    """Whether a projection exists where it must, and, in a strided block, where the stride sits."""
    convs = _convs_by_role(block, case) if case.kwargs["stride"] != 1 else None
    _check_projection(result, block, case, convs)
    if convs is not None:
        _check_stride_position(result, convs, case)


BOTTLENECK_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, LAYOUT_MISTAKES, BOTTLENECK_MISTAKES)


def check_bottleneck(candidate_class):
    """Check a learner's ``MyBottleneck(in_channels, width, stride=1)`` against Bottleneck."""
    title = "Checking your bottleneck against resnet_edu.blocks.Bottleneck"
    with checking("bottleneck", title, BOTTLENECK_MISTAKE_IDS) as result:
        if is_buildable(result, candidate_class):
            _check_expansion(result, candidate_class)
            name = getattr(candidate_class, "__name__", "your block")
            for case in BOTTLENECK_CASES:
                check_facts_then_reference(result, candidate_class, Bottleneck, case, name,
                                           _check_bottleneck_layout, BOTTLENECK_MISTAKES)
    return result


# ---------------------------------------------------------------------------------------- exercise 2


@functools.cache  # the checker may run many times; the models do not change
def _measure(build, v1=False):
    """(parameters, MACs at 224x224) of a model built on the meta device (shapes, no values),
    with the stride on the 3x3 (v1.5) or, if ``v1``, on the first 1x1."""
    model = on_meta(build)
    if v1:
        stride_on_first_1x1(model)
    return count_parameters(model), count_macs(model)


def _v15_extra_macs(build):
    """How many more MACs the v1.5 stride placement costs than v1, at 224x224."""
    return _measure(build)[1] - _measure(build, v1=True)[1]


def _v15_extra_percent(build):
    """That extra as a percentage of the v1 model's MACs."""
    return 100 * _v15_extra_macs(build) / _measure(build, v1=True)[1]


def _resnet_3_4_12_3():
    """ResNet50 with 12 blocks in layer3 instead of 6: a model that no table of notebook 04 shows."""
    return ResNet(Bottleneck, [3, 4, 12, 3])


RESNET50_QUESTIONS = [
    Question("bottleneck_512_128_parameters", "1. parameters of Bottleneck(512, 128)",
             lambda: count_parameters(Bottleneck(512, 128)),
             hint="Count the weights of the three convolutions (none has a bias), then a weight and a "
                  "bias per channel of each BN; there is no projection, since 512 = 4 x 128."),
    Question("resnet_3_4_12_3_extra_parameters",
             "2. parameters ResNet(Bottleneck, [3, 4, 12, 3]) has more than ResNet50",
             lambda: _measure(_resnet_3_4_12_3)[0] - _measure(resnet50)[0],
             hint="Only layer3 differs: how many more blocks, and what does one of them hold? All the "
                  "extra blocks are Identity Blocks of width 256 (1024 channels in and out)."),
    Question("resnet101_v15_extra_macs_millions",
             "3. millions of MACs that v1.5 costs more than v1 in ResNet101 (224x224)",
             lambda: _v15_extra_macs(resnet101) / 1e6, tolerance=0.01,
             hint="Which blocks differ between v1 and v1.5, and does ResNet101 have more of them "
                  "than ResNet50?"),
    Question("resnet101_v15_extra_percent",
             "4. that extra as a percentage of ResNet101's MACs in v1 (224x224)",
             lambda: _v15_extra_percent(resnet101),
             within=0.05,  # percentage points: 3.05 and 3.1 both pass
             hint="Within 0.05 percentage points. Divide question 3's extra by ResNet101's MACs in v1, "
                  "not v1.5: its v1.5 MACs (in the "
                  "table of the family) less that extra. Then times 100."),
]


def check_resnet50_predictions(answers):
    """Exercise 2 of notebook 04: each prediction in the dict ``answers`` against the measurement."""
    return check_predictions("resnet50_predictions", "Checking your predictions against measurements",
                             RESNET50_QUESTIONS, answers)


MISTAKE_IDS = catalogue(BOTTLENECK_MISTAKE_IDS, PREDICTION_MISTAKES)  # every mistake this module's checkers can report

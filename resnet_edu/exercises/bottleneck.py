"""The checkers of notebook 04: ``check_bottleneck`` (the bottleneck block and its known mistakes)
and ``check_resnet50_predictions`` (exercise 2, predict, then check).

A learner's ``MyBottleneck(in_channels, width, stride=1)`` is compared with
:class:`resnet_edu.blocks.Bottleneck` in the three places ResNet50 uses it: first the facts of
the exercise (the expansion, whether the shortcut projects, which convolution carries the stride,
which convolutions keep the map's size), then the engine's generic checks. The facts read the
learner's convolutions in the order forward runs them, so they hold whatever the layers are called.
:func:`resnet_edu.resnet.stride_on_first_1x1` builds the v1 placement that the checker recognises,
the notebook measures and the solutions use.
"""

import copy
import functools
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import Bottleneck
from ..measure import count_macs, count_parameters, on_meta
from ..resnet import ResNet, resnet50, resnet101, stride_on_first_1x1
from .engine import (REFERENCE_MISTAKES, SEED, Case, Mistake, catalogue, check_facts_then_reference, checking,
                     describe_conv, is_buildable)
from .predictions import PREDICTION_MISTAKES, Question, check_predictions
from .residual_block import residual_mistakes, shortcut


def _bottleneck_branch(ref, x, relu_after_3x3=True, last_bn=True):
    out = F.relu(ref.bn1(ref.conv1(x)))
    out = ref.bn2(ref.conv2(out))
    out = ref.conv3(F.relu(out) if relu_after_3x3 else out)
    return ref.bn3(out) if last_bn else out


def _relu_before_bn(units):
    """What the reference gives when its units numbered in ``units`` (1, 2) run conv-ReLU-BN."""
    def output(ref, x):
        out = x
        for i in (1, 2):
            conv, bn = getattr(ref, f"conv{i}"), getattr(ref, f"bn{i}")
            out = bn(F.relu(conv(out))) if i in units else F.relu(bn(conv(out)))
        return F.relu(ref.bn3(ref.conv3(out)) + shortcut(ref, x))
    return output


V1_MISTAKE = Mistake(
    "stride-on-first-1x1", "stride on the first 1x1 (v1, the authors' released models)",
    lambda ref, x: stride_on_first_1x1(copy.deepcopy(ref))(x),
    "the 1x1 reduction carries the stride, as in the models the paper's authors released (ResNet "
    "v1), so it skips three of every four pixels before any convolution looks at them. The exercise "
    "asks for torchvision's placement (ResNet v1.5): which of the three convolutions can take the "
    "stride and still read every pixel?")

_RELU_BEFORE_BN_TEXT = ("a ReLU sits between a convolution and its BN (conv-ReLU-BN) in {where}, so that BN "
                        "normalises what the ReLU let through instead of the convolution's output, and nothing "
                        "cuts the negative values BN gives out. Each BN belongs right after its convolution, "
                        "and the ReLU acts on what BN gives out: compare the order of your layers in forward "
                        "with the exercise's description.")

BOTTLENECK_MISTAKES = [
    V1_MISTAKE,
    *residual_mistakes(_bottleneck_branch, "bn3"),
    Mistake("no-relu-after-3x3", "no ReLU after the 3x3",
            lambda r, x: F.relu(_bottleneck_branch(r, x, relu_after_3x3=False) + shortcut(r, x)),
            "bn2's output goes into the expanding 1x1 without a ReLU. The branch is "
            "conv1-BN-ReLU, conv2-BN-ReLU, conv3-BN."),
    *[Mistake("relu-before-bn", "ReLU before BN", _relu_before_bn(units),
              _RELU_BEFORE_BN_TEXT.format(where=where))
      for units, where in (((1, 2), "the first two units (after the 1x1 reduction and after the 3x3)"),
                           ((1,), "the first unit (after the 1x1 reduction)"),
                           ((2,), "the second unit (after the 3x3)"))],
]

BOTTLENECK_CASES = [
    Case("ResNet50's layer1[0]: a Conv Block at stride 1 (64 -> 256 channels)", (64, 64),
         {"stride": 1}, (2, 64, 8, 8)),
    Case("an Identity Block (256 -> 256 channels)", (256, 64), {"stride": 1}, (2, 256, 8, 8)),
    Case("ResNet50's layer2[0]: a Conv Block with stride 2 (256 -> 512 channels)", (256, 128),
         {"stride": 2}, (2, 256, 8, 8)),
]

# The roles of the branch's three convolutions, in the order they run, with their kernel sizes.
BRANCH_ROLES = {"the 1x1 reduction": (1, 1), "the 3x3": (3, 3), "the expanding 1x1": (1, 1)}

LAYOUT_MISTAKES = {  # what the facts of the exercise can report, before the generic checks
    "missing-expansion": "the class attribute expansion is not 4",
    "wrong-expansion": "the expanding 1x1 gives out another multiple of width than 4",
    "width-taken-as-out-channels": "the block gives out width channels: the second argument taken for "
                                   "out_channels (notebooks 01-03)",
    "missing-projection": "no projection where the stride or the channels change",
    "no-projection-for-stride-alone": "no projection where only the stride changes (equal channels at "
                                      "stride 2)",
    "needless-projection": "a projection where the shortcut can be x itself",
    "unstrided-projection": "the projection does not carry the block's stride",
    "branch-downsamples-twice": "more than one convolution of the branch carries the stride",
    "branch-never-downsamples": "no convolution of the branch carries the stride",
    "stride-not-on-3x3": "the stride sits on one convolution, but not on the 3x3 (nor on the first 1x1 alone)",
    "downsamples-at-stride-1": "a convolution of the branch downsamples in a block built with stride=1",
    "wrong-padding-on-3x3": "the 3x3's padding changes the map's size (padding=1 missing, or another value)",
    "padding-on-1x1": "a 1x1 convolution has padding, so it adds a border and the map grows",
}


def _check_expansion(result, candidate_class):
    expansion = getattr(candidate_class, "expansion", None)
    if expansion == Bottleneck.expansion:
        result.ok("expansion = 4: the block gives out 4 * width channels, and builders can read it")
    else:
        result.fail("missing-expansion", f"the class attribute expansion should be {Bottleneck.expansion}, got "
                    f"{expansion!r}: ResNet's builder reads block.expansion to know that 4 * width "
                    "channels leave the block. Add `expansion = 4` to the class body.")


# ---------------------------------------------------------------------------------------- the facts


@dataclass
class Layout:
    """A learner's block as forward runs it: the branch's three convolutions in their order, and
    the projection (None where the shortcut is x itself)."""

    branch: list
    projection: Optional[nn.Conv2d] = None

    @property
    def roles(self):
        return dict(zip(BRANCH_ROLES, self.branch))


def _convs_in_run_order(block, x):
    """[(convolution, whether it reads x itself)] in the order forward runs them, as far as forward
    gets: a forward that fails in the addition has run them all."""
    inp, order = x.clone(), []

    def record(m, inputs, output):
        order.append((m, bool(inputs) and inputs[0] is inp))

    hooks = [m.register_forward_hook(record) for m in block.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            block.eval()(inp)
    except Exception:  # noqa: BLE001 - the learner's forward: the generic checks report how it fails
        pass
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _layout(block, case):
    """The block's Layout, or None when forward does not run a branch of a 1x1, a 3x3 and a 1x1
    after one another, each once, beside at most one convolution of x (the generic checks report
    what is missing or extra)."""
    x = torch.randn(case.input_shape, generator=torch.Generator().manual_seed(SEED))
    order = _convs_in_run_order(block, x)
    convs = [conv for conv, _ in order]
    if len(set(convs)) != len(convs):  # one convolution applied twice
        return None
    readers = [conv for conv, reads in order if reads]
    rest = [conv for conv, reads in order if not reads]
    if len(rest) != 2 or not 1 <= len(readers) <= 2:
        return None
    # the branch's first convolution feeds the 3x3; if the projection could too (expansion = 1),
    # it is the one that ran last before the 3x3
    firsts = [conv for conv in readers if conv.out_channels == rest[0].in_channels
              and convs.index(conv) < convs.index(rest[0])]
    if not firsts:
        return None
    first = firsts[-1]
    branch = [first, *rest]
    if [conv.kernel_size for conv in branch] != list(BRANCH_ROLES.values()):
        return None
    projection = next((conv for conv in readers if conv is not first), None)
    return Layout(branch, projection)


def _padding(conv):
    """The convolution's padding per side as a pair, or "same"."""
    if conv.padding == "same":
        return "same"
    return (0, 0) if conv.padding == "valid" else conv.padding


def _size_after(size, conv):
    """The height (= width) of a square map of ``size`` after ``conv``."""
    padding = _padding(conv)
    if padding == "same":  # PyTorch allows it at stride 1 only
        return size
    (k, _), (s, _), (p, _), (d, _) = conv.kernel_size, conv.stride, padding, conv.dilation
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _keeps_size(conv):
    """Whether ``conv`` at stride 1 gives out a map of the size it reads."""
    padding = _padding(conv)
    return padding == "same" or all(2 * p == d * (k - 1) for k, p, d in
                                    zip(conv.kernel_size, padding, conv.dilation))


def _check_output_channels(result, layout, case):
    """Whether the branch's last convolution gives out 4 x width channels; False after a FAIL line."""
    _, width = case.args
    expanding = layout.branch[-1]
    out = expanding.out_channels
    if out == 4 * width:
        return True
    if out == width and layout.branch[1].out_channels != width:  # not expansion = 1: the 3x3 is narrower
        result.fail("width-taken-as-out-channels",
                    f"your block gives out {out} channels, the value of its second argument, width: your "
                    f"expanding 1x1 ({describe_conv(expanding)}) ends the branch with width channels, and "
                    f"your 3x3 runs at {layout.branch[1].out_channels}. In MyBottleneck the second "
                    f"argument is not the block's output, as out_channels was in notebooks 01 to 03: it is "
                    f"the width of the 3x3, and the block gives out 4 x width = {4 * width} channels. "
                    "Which channel count does each of your three convolutions need, given width?")
    else:
        result.fail("wrong-expansion",
                    f"the expanding 1x1 ({describe_conv(expanding)}) gives out {out} channels "
                    f"({out / width:g} x width), expected 4 x width = {4 * width}: a bottleneck widens its "
                    "output four times (expansion = 4), and the shortcut, projection or not, follows from "
                    "that. Which number does your last 1x1 multiply width by?")
    return False


def _has_projection(block):
    return len([m for m in block.modules() if isinstance(m, nn.Conv2d)]) > 3


def _check_stride_alone(result, candidate_class, name, case):
    """In a strided case whose channels change: whether the learner's class also projects where
    only the stride changes (equal channels at stride 2), which ResNet50 never builds but the rule
    "a projection exactly when the shape changes" covers."""
    _, width = case.args
    stride = case.kwargs["stride"]
    probe = Case("equal channels at stride 2", (4 * width, width), {"stride": stride},
                 (case.input_shape[0], 4 * width, *case.input_shape[2:]))
    try:
        block = candidate_class(*probe.args, **probe.kwargs)
    except Exception:  # noqa: BLE001 - the generic checks of the real cases report a constructor that fails
        return
    if not isinstance(block, nn.Module) or _has_projection(block):
        return
    size = case.input_shape[-1]
    half = (size - 1) // stride + 1
    result.fail("no-projection-for-stride-alone",
                f"{probe.call_text(name)}, a block ResNet50 does not build but another network's stage can, "
                f"has no projection: its input and its output both have "
                f"{4 * width} channels, but stride {stride} turns a map of {size}x{size} into {half}x{half}, "
                f"so x cannot be added to F(x) as it is. A block that only halves the resolution must "
                "project x too: which shape changes does your test for a projection look at?")


def _check_projection(result, block, case, layout, candidate_class, name):
    """Whether the shortcut projects exactly where it must, with the block's stride."""
    in_channels, width = case.args
    stride = case.kwargs["stride"]
    must_project = Bottleneck(in_channels, width, stride).downsample is not None
    projects = _has_projection(block)
    projection = layout.projection if layout is not None else None
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
        failures_before = len(result.failures)
        if must_project and stride != 1 and in_channels != 4 * width:
            _check_stride_alone(result, candidate_class, name, case)
        if len(result.failures) == failures_before:
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
                f"1/{(expected_size // max(branch_size, 1)) ** 2} of the pixels. The shortcut is right; the "
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


def _check_no_stride(result, convs, case):
    """In a block of stride 1: that no convolution of the branch downsamples anyway (a stride
    written as a number instead of the block's argument)."""
    size = case.input_shape[-1]
    branch_size = size
    for conv in convs.values():
        branch_size = _size_after(branch_size, conv)
    for role, conv in convs.items():
        if conv.stride != (1, 1):
            result.fail("downsamples-at-stride-1",
                        f"{role} ({describe_conv(conv)}) downsamples, though this block is built with "
                        f"stride=1: F(x) comes out {branch_size}x{branch_size} while the shortcut gives "
                        f"{size}x{size}, and the two cannot be added. Where does each of your convolutions "
                        "get its stride from?")


def _check_padding(result, layout, case):
    """Whether every convolution keeps the size of the map it reads, apart from its stride: a 3x3
    needs padding, a 1x1 none (named before the addition fails, whatever changes shape)."""
    size = case.input_shape[-1]
    sizes, branch_size = [], size
    for conv in layout.branch:  # the size each reads, in the order the branch runs them
        sizes.append(branch_size)
        branch_size = _size_after(branch_size, conv)
    named = [(role, conv, read) for (role, conv), read in zip(layout.roles.items(), sizes)]
    shortcut_size = size
    if layout.projection is not None:
        named.append(("the projection", layout.projection, size))
        shortcut_size = _size_after(size, layout.projection)
    sizes_text = (f" F(x) comes out {branch_size}x{branch_size} while the shortcut gives "
                  f"{shortcut_size}x{shortcut_size}, and the two cannot be added."
                  if branch_size != shortcut_size else "")
    for role, conv, read in named:
        if _keeps_size(conv):
            continue
        padding = _padding(conv)[0]
        out = _size_after(read, conv)
        seen = (f"{role} ({describe_conv(conv)}) has padding {padding}: it reads a map of {read}x{read} "
                f"and gives out {out}x{out}.{sizes_text}")
        if conv.kernel_size == (1, 1):
            result.fail("padding-on-1x1", f"{seen} A 1x1 convolution keeps the size of its input without "
                        "any padding, so padding only adds a border of zeros around the map. Which "
                        "convolutions of the block need padding, and which do not?")
        else:
            result.fail("wrong-padding-on-3x3", f"{seen} A 3x3 convolution without the right padding "
                        "changes the size of the map (its stride aside). How much padding on each side "
                        "keeps a 3x3's output the size of its input?")


def _check_bottleneck_layout(result, block, case, candidate_class, name):
    """The facts of one case, in the order a learner fixes them: the channels the block gives out,
    the projection, where the stride sits (or that none does, at stride 1), the padding."""
    layout = _layout(block, case)
    if layout is not None and not _check_output_channels(result, layout, case):
        return
    failures_before = len(result.failures)
    _check_projection(result, block, case, layout, candidate_class, name)
    if layout is None:
        return
    if case.kwargs["stride"] != 1:
        _check_stride_position(result, layout.roles, case)
    else:
        _check_no_stride(result, layout.roles, case)
    if len(result.failures) == failures_before:
        _check_padding(result, layout, case)


BOTTLENECK_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, LAYOUT_MISTAKES, BOTTLENECK_MISTAKES)


def check_bottleneck(candidate_class):
    """Check a learner's ``MyBottleneck(in_channels, width, stride=1)`` against Bottleneck."""
    title = "Checking your bottleneck against resnet_edu.blocks.Bottleneck"
    with checking("bottleneck", title, BOTTLENECK_MISTAKE_IDS) as result:
        if is_buildable(result, candidate_class):
            _check_expansion(result, candidate_class)
            name = getattr(candidate_class, "__name__", "your block")
            facts = functools.partial(_check_bottleneck_layout, candidate_class=candidate_class, name=name)
            for case in BOTTLENECK_CASES:
                check_facts_then_reference(result, candidate_class, Bottleneck, case, name, facts,
                                           BOTTLENECK_MISTAKES)
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

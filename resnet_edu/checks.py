"""Exercise checkers for the blocks and stages of notebooks 01 to 04, and their hidden solutions.

Each checker runs a learner's code against the reference in ``resnet_edu`` and prints, in plain
words, what is right and what is wrong; it never raises on a wrong answer. ``show_solution(name)``
prints a solution. The shared machinery (cases, known mistakes, weight copying, the report) is in
:mod:`resnet_edu.check_engine`, re-exported here so that ``from resnet_edu.checks import ...``
finds everything a notebook needs.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import BasicBlock, make_shortcut
from .check_engine import (  # noqa: F401 (re-exported for notebooks and other checker modules)
    Case,
    CheckResult,
    Mistake,
    add_solution,
    check_against_reference,
    checking,
    conv_bn_units,
    copy_reference_weights,
    describe_conv,
    explain_exception,
    is_buildable,
    load_solution,
    match_units,
    show_solution,
    solution_source,
)

# ---------------------------------------------------------------------------------------- the basic block


def _branch(ref, x, relu_inside=True):
    out = ref.bn1(ref.conv1(x))
    return ref.bn2(ref.conv2(F.relu(out) if relu_inside else out))


def _shortcut(ref, x):
    return x if ref.downsample is None else ref.downsample(x)


BASIC_BLOCK_MISTAKES = [
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_branch(r, x)) + _shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so F(x) can only add "
            "non-negative values and never subtract. End the branch with bn2; apply the ReLU once, "
            "after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _branch(r, x) + _shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) to the branch before the final ReLU."),
    Mistake("no ReLU between the two convolutions",
            lambda r, x: F.relu(_branch(r, x, relu_inside=False) + _shortcut(r, x)),
            "bn1's output goes into conv2 without a ReLU. The branch is conv-BN-ReLU-conv-BN."),
    Mistake("ReLU before BN", lambda r, x: F.relu(
                r.bn2(r.conv2(r.bn1(F.relu(r.conv1(x))))) + _shortcut(r, x)),
            "the first unit runs conv-ReLU-BN. The block's order is conv1, bn1, ReLU, conv2, bn2: "
            "each BN normalises the output of the convolution right in front of it."),
    Mistake("shortcut added before bn2",
            lambda r, x: F.relu(r.bn2(r.conv2(F.relu(r.bn1(r.conv1(x)))) + _shortcut(r, x))),
            "x is added to conv2's output and the sum goes through bn2, so BN rescales the shortcut "
            "too and x no longer passes through unchanged. Add the shortcut after bn2: "
            "out = relu(bn2(conv2(...)) + identity)."),
    Mistake("ReLU before the addition only (no ReLU after it)",
            lambda r, x: F.relu(_branch(r, x)) + _shortcut(r, x),
            "the ReLU is applied to the branch and then x is added. Move it after the addition: "
            "out = relu(bn2(conv2(...)) + identity)."),
]

IDENTITY_CASE = Case("Identity Block", (64, 64), {"stride": 1}, (4, 64, 8, 8))
CONV_BLOCK_CASES = [
    Case("Conv Block (stride 2, channels doubled)", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block (channels doubled, stride 1)", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
]


def check_basic_block(candidate_class, identity_only=False):
    """Check a learner's ``MyBasicBlock(in_channels, out_channels, stride=1)`` against BasicBlock.

    identity_only=True checks only the Identity Block (notebook 01, before the Conv Block is taught).
    """
    exercise = "residual_block" if identity_only else "basic_block"
    cases = [IDENTITY_CASE] + ([] if identity_only else CONV_BLOCK_CASES)
    with checking(exercise, "Checking your block against resnet_edu.blocks.BasicBlock") as result:
        for case in cases if is_buildable(result, candidate_class) else []:
            check_against_reference(result, candidate_class, BasicBlock, case, BASIC_BLOCK_MISTAKES)
    return result


add_solution("residual_block", '''
    from torch import nn


    class MyBasicBlock(nn.Module):
        """The Identity Block: the input and output shapes are equal, the shortcut is x itself."""

        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))  # no ReLU here: F(x) may be negative
            return self.relu(out + x)
''')

add_solution("basic_block", '''
    from torch import nn


    class MyBasicBlock(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(out_channels)
            self.downsample = None  # Identity Block: the shortcut is x itself
            if stride != 1 or in_channels != out_channels:  # Conv Block: project x to the new shape
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))  # no ReLU here: F(x) may be negative
            return self.relu(out + identity)
''')


add_solution("zero_init_stack", '''
    # Notebook 01, exercise 2, question 2: which parameters get a gradient in a zero-initialised
    # residual stack? (Question 1: rerun section 5 with channels=64 and compare the tables.)
    import torch
    import torch.nn.functional as F
    from torch import nn

    from resnet_edu.blocks import BasicBlock

    torch.manual_seed(0)
    stack = nn.Sequential(*[BasicBlock(16, 16) for _ in range(8)])
    for block in stack:
        block.zero_init_residual()  # bn2.weight = 0, so F(x) = 0 in every block
    x, target = torch.randn(16, 16, 8, 8), torch.randn(16, 16, 8, 8)


    def parameters_with_gradient():
        stack.zero_grad(set_to_none=True)
        F.mse_loss(stack(x), target).backward()
        return [name for name, p in stack.named_parameters() if p.grad is not None and p.grad.any()]


    moving = parameters_with_gradient()
    print(f"{len(moving)} of {len(list(stack.parameters()))} parameters get a gradient:", moving)
    # Only bn2.weight and bn2.bias of each block (16 of 48): they are the only parameters that can
    # change F(x) while bn2.weight is zero. conv1, bn1 and conv2 sit behind the zero scale, so their
    # gradient is exactly zero. The stack still passes the gradient to its input through the shortcuts.

    torch.optim.SGD(stack.parameters(), lr=0.1).step()
    print("after one SGD step:", len(parameters_with_gradient()), "parameters get a gradient")
    # One step makes bn2.weight non-zero, and from then on every parameter learns: each block starts
    # as the identity and grows its residual only as far as the loss asks for it.
''')


# ---------------------------------------------------------------------------------------- the shortcut


DOWNSAMPLE_MISTAKES = [
    Mistake("ReLU in the shortcut", lambda r, x: F.relu(r(x)),
            "the projection ends in a ReLU; the shortcut is a 1x1 conv and BN only, the ReLU comes "
            "after the addition."),
]
DOWNSAMPLE_CASES = [
    Case("Identity Block: same shape", (64, 64), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, channels doubled", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block: channels doubled at stride 1", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
    Case("Conv Block: stride 2, same channels", (64, 64), {"stride": 2}, (4, 64, 8, 8)),
]


def _reference_downsample(in_channels, out_channels, stride=1):
    return make_shortcut(in_channels, out_channels, stride, option="B")


def _shape_change(case):
    (in_channels, out_channels), stride = case.args, case.kwargs["stride"]
    changes = [f"{in_channels} -> {out_channels} channels"] if in_channels != out_channels else []
    return ", ".join(changes + ([f"stride {stride}"] if stride != 1 else []))


def _check_downsample_case(result, candidate_function, case, name):
    result.note(f"{case.title}: {case.call_text(name)}")
    try:
        got = candidate_function(*case.args, **case.kwargs)
    except Exception as exc:
        result.fail(f"{case.call_text(name)} raised {explain_exception(exc)}")
        return
    needed = _reference_downsample(*case.args, **case.kwargs) is not None
    if not needed and got is None:
        result.ok("returns None: the block will add x itself")
    elif not needed:
        result.fail(f"returned {type(got).__name__}, expected None: the shape does not change, so "
                    "the shortcut is x itself (no parameters, no computation)")
    elif got is None:
        result.fail(f"returned None, but the shape changes ({_shape_change(case)}), so x and F(x) "
                    "cannot be added: project x whenever stride != 1 or in_channels != out_channels")
    else:
        check_against_reference(result, candidate_function, _reference_downsample, case,
                                DOWNSAMPLE_MISTAKES, name, announce=False)


def check_downsample(candidate_function):
    """Check a learner's ``make_downsample(in_channels, out_channels, stride)``: None when the block
    keeps its shape, else a module that projects x (1x1 conv with the stride, then BN)."""
    name = getattr(candidate_function, "__name__", "make_downsample")
    with checking("downsample", "Checking your shortcut against resnet_edu.blocks.make_shortcut") as result:
        for case in DOWNSAMPLE_CASES if is_buildable(result, candidate_function) else []:
            _check_downsample_case(result, candidate_function, case, name)
    return result


add_solution("downsample", '''
    from torch import nn


    def make_downsample(in_channels, out_channels, stride=1):
        if stride == 1 and in_channels == out_channels:
            return None  # Identity Block: the block adds x itself
        return nn.Sequential(  # Conv Block: project x to the branch's shape
            nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
            nn.BatchNorm2d(out_channels),
        )
''')


add_solution("option_a_resnet50", '''
    # Notebook 02, exercise 3: option A on ResNet50's first block (64 -> 256 channels, stride 1).
    import torch

    from resnet_edu.blocks import make_shortcut

    shortcut = make_shortcut(64, 256, 1, option="A")
    y = shortcut(torch.randn(1, 64, 56, 56))
    carrying = int((y.abs().sum(dim=(0, 2, 3)) > 0).sum())
    print(shortcut, "->", tuple(y.shape), f"| channels that carry x: {carrying} of {y.shape[1]}")
    # 64 of 256: the other 192 channels of the shortcut are zeros. Three quarters of F(x) are added
    # to nothing, so in those channels the block is a plain block, ReLU(F(x)), with no residual
    # learning; the paper's argument for preferring B over A (section 4.1), in its strongest form.
''')


# --- Stages and bottleneck (notebooks 03, 04) ---
#
# check_stage: a learner's make_stage(block, in_channels, width, num_blocks, stride), built for
# stages of ResNet18, ResNet34 and ResNet50 and compared with the stage resnet_edu.resnet.ResNet
# builds. check_bottleneck: a learner's MyBottleneck(in_channels, width, stride=1) against
# resnet_edu.blocks.Bottleneck in the three places ResNet50 uses it. Both reuse the engine above
# and add the facts specific to their exercise (which blocks project, the in_channels
# bookkeeping, where the stride sits, the expansion).

from .blocks import Bottleneck, block_kind  # noqa: E402
from .resnet import make_stage  # noqa: E402


class StageCase(Case):
    """A Case whose arguments start with a block class: printed by name, not as <class '...'>."""

    def call_text(self, name):
        block, *rest = self.args
        return f"{name}({', '.join([block.__name__] + [repr(a) for a in rest])})"


STAGE_CASES = [
    StageCase("ResNet18's layer1: two Identity Blocks", (BasicBlock, 64, 64, 2, 1), {}, (2, 64, 8, 8)),
    StageCase("ResNet34's layer2: a Conv Block with stride 2, then three Identity Blocks",
              (BasicBlock, 64, 128, 4, 2), {}, (2, 64, 8, 8)),
    StageCase("ResNet50's layer1: a Conv Block at stride 1 (64 -> 256 channels), then two Identity Blocks",
              (Bottleneck, 64, 64, 3, 1), {}, (2, 64, 8, 8)),
]


def reference_stage(block, in_channels, width, num_blocks, stride):
    """The stage exactly as resnet_edu.resnet.ResNet builds it (make_stage, torchvision's option B)."""
    return make_stage(block, in_channels, width, num_blocks, stride)


def _build_quietly(factory, case):
    """What the learner's factory returns for one case, or None if it raises: the generic checks
    report that failure."""
    try:
        return factory(*case.args, **case.kwargs)
    except Exception:
        return None


def _facts_then_generic(result, factory, reference_factory, case, name, facts, mistakes=()):
    """One case: the exercise's own facts first, then the engine's generic checks, but only when
    every fact holds, so that the learner reads the precise reason rather than the crash it causes."""
    result.note(f"{case.title}: {case.call_text(name)} on an input of shape {case.input_shape}")
    module = _build_quietly(factory, case)
    if isinstance(module, (list, tuple)):  # a builder's most common slip; the engine's advice is for classes
        result.fail(f"{case.call_text(name)} returned a {type(module).__name__} of blocks, expected one "
                    "module: return nn.Sequential(*blocks), which runs the blocks in order")
        return
    if isinstance(module, nn.Module):
        failures_before = len(result.failures)
        try:
            facts(result, module, case)
        except Exception as exc:  # a learner's module can be anything: report, never raise
            result.fail(f"the check could not finish: {explain_exception(exc)}")
        if len(result.failures) > failures_before:
            return
    check_against_reference(result, factory, reference_factory, case, mistakes, name, announce=False)


def _describe_block(block):
    out_channels = block.conv1.out_channels * block.expansion
    stride = f", stride {block.stride}" if block.stride != 1 else ""
    return f"a {block_kind(block)} ({block.conv1.in_channels} -> {out_channels} channels{stride})"


def _which_blocks(indices, num_blocks):
    """'stage[0], the first block' or 'stage[1], stage[2] and stage[3]': indexed as the learner
    would index the nn.Sequential, with the first block named as such."""
    names = [f"stage[{i}]" for i in indices]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    if indices == [0]:
        return f"{listed}, the first block"
    return f"{listed} of {num_blocks} blocks"


def _stride_problem(index, mine, theirs):
    if index == 0:
        return (f"stride {mine.stride} instead of {theirs.stride}: the first block of a stage gets "
                "the stage's stride (stride 2 halves the resolution)")
    return (f"stride {mine.stride} instead of {theirs.stride}: only the first block of a stage gets "
            "the stride, the others keep the resolution (stride 1)")


def _check_stage_blocks(result, stage, case):
    """The facts of a stage one block at a time: count, stride, in_channels, projection. Blocks
    with the same problem are reported on one line."""
    block_class, in_channels, width, num_blocks, stride = case.args
    reference = reference_stage(*case.args)
    blocks = list(stage.children())
    if len(blocks) != num_blocks:
        result.fail(f"expected {num_blocks} blocks (num_blocks={num_blocks}), got {len(blocks)}: "
                    "loop for i in range(num_blocks)")
        return
    strange = [type(b).__name__ for b in blocks if not isinstance(b, block_class)]
    if strange:
        result.fail(f"build every block with the block argument, block(...), here "
                    f"{block_class.__name__}, not a fixed class: found {strange}")
        return
    blocks_with_problem = {}  # problem text -> indices of the blocks that have it
    for i, (mine, theirs) in enumerate(zip(blocks, reference)):
        problems = []
        if mine.stride != theirs.stride:
            problems.append(_stride_problem(i, mine, theirs))
        if mine.conv1.in_channels != theirs.conv1.in_channels:
            problems.append(f"built for {mine.conv1.in_channels} input channels, but "
                            f"{theirs.conv1.in_channels} flow into it: after the first block, "
                            f"in_channels becomes width * block.expansion = {width} * "
                            f"{block_class.expansion} = {width * block_class.expansion}")
        if not problems and block_kind(mine) != block_kind(theirs):
            problems.append(f"it is {_describe_block(mine)}, expected {_describe_block(theirs)}")
        if problems:
            blocks_with_problem.setdefault("; ".join(problems), []).append(i)
    for problem, indices in blocks_with_problem.items():
        result.fail(f"{_which_blocks(indices, num_blocks)}: {problem}")
    if not blocks_with_problem:
        kinds = ", ".join(block_kind(b) for b in blocks)
        result.ok(f"the right blocks with the right in_channels and strides: {kinds}")


def check_stage(candidate_function):
    """Check a learner's ``make_stage(block, in_channels, width, num_blocks, stride)``.

    It must return an nn.Sequential of ``num_blocks`` blocks, ``block(in_channels, width, stride)``
    first and ``block(width * block.expansion, width, 1)`` after it, as ResNet's stages are built.
    """
    name = getattr(candidate_function, "__name__", "make_stage")
    with checking("stage", "Checking your stage builder against resnet_edu's ResNet stages") as result:
        for case in STAGE_CASES if is_buildable(result, candidate_function) else []:
            _facts_then_generic(result, candidate_function, reference_stage, case, name,
                                _check_stage_blocks)
    return result


add_solution("stage", '''
    from torch import nn


    def make_stage(block, in_channels, width, num_blocks, stride):
        blocks = [block(in_channels, width, stride)]  # may change the shape: a Conv Block if so
        in_channels = width * block.expansion  # what every later block receives
        for _ in range(num_blocks - 1):
            blocks.append(block(in_channels, width, 1))  # Identity Blocks: the shape stays
        return nn.Sequential(*blocks)
''')


add_solution("resnet18_predictions", '''
    # Notebook 03, exercise 2: the predictions, then the measurements.
    from resnet_edu.blocks import BasicBlock, block_kind
    from resnet_edu.inspect import count_parameters, shape_trace
    from resnet_edu.resnet import ResNet, resnet18

    # 1. Only the classifier depends on the number of classes: 512 weights and 1 bias per class.
    predicted = count_parameters(resnet18()) - 1000 * (512 + 1) + 100 * (512 + 1)
    print("1.", f"{predicted:,} predicted,", f"{count_parameters(resnet18(num_classes=100)):,} measured")

    # 2. The stem and stages 2 to 4 halve the size five times in all, so 320 / 32 = 10.
    print("2.", dict(shape_trace(resnet18(), image_size=320))["layer4"])

    # 3. The first block of stages 2, 3 and 4 (stride 2, channels doubled). Stage 1 opens with an
    #    Identity Block however many blocks it holds: 64 channels in, 64 out, stride 1.
    resnet26 = ResNet(BasicBlock, [2, 3, 4, 3])
    print("3.", [f"{stage}[{i}]" for stage in ("layer1", "layer2", "layer3", "layer4")
                 for i, block in enumerate(getattr(resnet26, stage)) if block_kind(block) == "Conv Block"])
''')


add_solution("resnet50_predictions", '''
    # Notebook 04, exercise 2: the predictions, then the measurements.
    import torch

    from resnet_edu.blocks import Bottleneck
    from resnet_edu.inspect import count_macs, count_parameters
    from resnet_edu.resnet import resnet50, resnet101

    # 1. No projection (512 in = 4 * 128 out): three convolutions without bias, and a scale and
    #    a shift per channel in each of the three BNs.
    predicted = 512 * 128 + 128 * 128 * 3 * 3 + 128 * 512 + 2 * (128 + 128 + 512)
    print("1.", f"{predicted:,} predicted,", f"{count_parameters(Bottleneck(512, 128)):,} measured")

    # 2. 23 - 6 = 17 more Identity Blocks of width 256, each with 4 * 256 = 1024 channels in and out.
    with torch.device("meta"):  # shapes only: counting needs no values
        predicted = 17 * count_parameters(Bottleneck(1024, 256))
        measured = count_parameters(resnet101()) - count_parameters(resnet50())
    print("2.", f"{predicted:,} predicted,", f"{measured:,} measured")


    # 3. The same function as in the notebook: move each stage's stride to the first 1x1.
    def stride_on_first_1x1(model):
        for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
            first = stage[0]
            first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)
        return model


    for build in (resnet50, resnet101):
        with torch.device("meta"):
            v15, v1 = build(), stride_on_first_1x1(build())
        extra = count_macs(v15) - count_macs(v1)
        print("3.", build.__name__, f"v1.5 costs {extra / 1e6:.1f} M MACs more, {extra / count_macs(v1):.1%}")
    # The same extra MACs in both: only the three downsampling blocks differ, and ResNet101's extra
    # blocks in layer3 are Identity Blocks with stride 1. Spread over a larger total, the same
    # extra is a smaller percentage.
''')


def _bottleneck_v1(ref, x):
    """The reference block with the stride moved from the 3x3 to the first 1x1 (the paper's v1)."""
    stride = ref.conv2.stride
    out = F.relu(ref.bn1(F.conv2d(x, ref.conv1.weight, stride=stride)))
    out = F.relu(ref.bn2(F.conv2d(out, ref.conv2.weight, padding=1)))
    return F.relu(ref.bn3(ref.conv3(out)) + _shortcut(ref, x))


def _bottleneck_branch(ref, x, relu_after_3x3=True):
    out = F.relu(ref.bn1(ref.conv1(x)))
    out = ref.bn2(ref.conv2(out))
    return ref.bn3(ref.conv3(F.relu(out) if relu_after_3x3 else out))


BOTTLENECK_MISTAKES = [
    Mistake("stride on the first 1x1 (the paper's v1)", _bottleneck_v1,
            "the 1x1 reduction carries the stride, so it skips three of every four pixels before "
            "any convolution looks at them. torchvision and resnet_edu put the stride on the 3x3 "
            "(ResNet v1.5): conv1 gets stride 1, conv2 gets the stride."),
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_bottleneck_branch(r, x)) + _shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so it can only add. End the "
            "branch with bn3; apply the ReLU once, after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _bottleneck_branch(r, x) + _shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_bottleneck_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) before the final ReLU."),
    Mistake("no ReLU after the 3x3",
            lambda r, x: F.relu(_bottleneck_branch(r, x, relu_after_3x3=False) + _shortcut(r, x)),
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


def _check_bottleneck_layout(result, block, case):
    """Which convolution carries the stride, and whether a projection exists where it must."""
    in_channels, width = case.args
    x = torch.zeros(case.input_shape)
    stride = case.kwargs["stride"]
    reference = Bottleneck(in_channels, width, stride)
    must_project = reference.downsample is not None
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    projects = len(convs) > 3
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
    if stride == 1:
        return
    try:
        units = conv_bn_units(block, x)
    except Exception:  # forward fails: the generic checks report it
        return
    threes = [conv for conv, _ in units if conv.kernel_size == (3, 3)]
    strided_reduce = [conv for conv, _ in units
                      if conv.kernel_size == (1, 1) and conv.out_channels == width and conv.stride != (1, 1)]
    if threes and threes[0].stride == (stride, stride) and not strided_reduce:
        result.ok("the stride sits on the 3x3 convolution (v1.5, as torchvision)")
    elif strided_reduce:
        v1 = BOTTLENECK_MISTAKES[0]
        result.fail(f"{v1.name}: the 3x3 convolution has stride {threes[0].stride[0] if threes else '?'}, "
                    f"expected {stride}; {v1.explanation}")
    elif threes:
        result.fail(f"the 3x3 convolution has stride {threes[0].stride[0]}, expected {stride}: the "
                    "first block of a stage halves the resolution with the stride of its 3x3")


def check_bottleneck(candidate_class):
    """Check a learner's ``MyBottleneck(in_channels, width, stride=1)`` against Bottleneck."""
    with checking("bottleneck", "Checking your bottleneck against resnet_edu.blocks.Bottleneck") as result:
        if is_buildable(result, candidate_class):
            _check_expansion(result, candidate_class)
            name = getattr(candidate_class, "__name__", "your block")
            for case in BOTTLENECK_CASES:
                _facts_then_generic(result, candidate_class, Bottleneck, case, name,
                                    _check_bottleneck_layout, BOTTLENECK_MISTAKES)
    return result


add_solution("bottleneck", '''
    from torch import nn


    class MyBottleneck(nn.Module):
        expansion = 4  # the block gives out 4 * width channels

        def __init__(self, in_channels, width, stride=1):
            super().__init__()
            out_channels = width * self.expansion
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, bias=False)  # reduce
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1,
                                   bias=False)  # stride on the 3x3: v1.5
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, out_channels, kernel_size=1, bias=False)  # expand
            self.bn3 = nn.BatchNorm2d(out_channels)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = None  # Identity Block
            if stride != 1 or in_channels != out_channels:  # Conv Block, also at stride 1
                self.downsample = nn.Sequential(
                    nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            return self.relu(out + identity)
''')

"""The checkers of notebook 03: ``check_stage`` (exercise 1, the stage builder) and
``check_resnet18_predictions`` (exercise 2, predict, then check).

A learner's ``make_stage(block, in_channels, width, num_blocks, stride)`` is built for stages of
ResNet18, ResNet34 and ResNet50 and compared with :func:`resnet_edu.resnet.make_stage`, which
ResNet builds its four stages with: first the facts of a stage (how many blocks, which one gets
the stride, the in_channels bookkeeping, which blocks project), then the engine's generic checks.
"""

import torch

from ..blocks import BasicBlock, Bottleneck, block_kind
from ..measure import count_macs, count_parameters
from ..resnet import ResNet, make_stage, resnet18
from .engine import Case, check_facts_then_reference, checking, is_buildable
from .predictions import Question, check_predictions


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


def _block_problems(index, mine, theirs, width):
    """What is wrong with one block of the learner's stage, compared with the reference's."""
    problems = []
    if mine.stride != theirs.stride:
        problems.append(_stride_problem(index, mine, theirs))
    if mine.conv1.in_channels != theirs.conv1.in_channels:
        # a nudge, not the fix: the counts and a question, never the formula
        question = ("the first block receives the stage's in_channels" if index == 0 else
                    f"how many channels does a block of width {width} give out?")
        problems.append(f"built for {mine.conv1.in_channels} input channels, but "
                        f"{theirs.conv1.in_channels} flow into it: {question}")
    if not problems and block_kind(mine) != block_kind(theirs):
        problems.append(f"it is {_describe_block(mine)}, expected {_describe_block(theirs)}")
    return "; ".join(problems)


def _check_stage_blocks(result, stage, case):
    """The facts of a stage one block at a time: count, stride, in_channels, projection. Blocks
    with the same problem are reported on one line."""
    block_class, _, width, num_blocks, _ = case.args
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
    for i, (mine, theirs) in enumerate(zip(blocks, make_stage(*case.args))):
        problem = _block_problems(i, mine, theirs, width)
        if problem:
            blocks_with_problem.setdefault(problem, []).append(i)
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
            check_facts_then_reference(result, candidate_function, make_stage, case, name,
                                       _check_stage_blocks)
    return result


# ---------------------------------------------------------------------------------------- exercise 2


def _on_meta(build, *args, **kwargs):
    """A model with every shape and no values: counting parameters, MACs and shapes needs no more."""
    with torch.device("meta"):
        return build(*args, **kwargs)


def conv_block_names(model):
    """The Conv Blocks of a ResNet as a set of names such as {'layer2[0]'}."""
    return {f"{stage}[{i}]" for stage in ("layer1", "layer2", "layer3", "layer4")
            for i, block in enumerate(getattr(model, stage)) if block_kind(block) == "Conv Block"}


RESNET18_QUESTIONS = [
    Question("parameters_100_classes", "1. parameters of resnet18(num_classes=100)",
             lambda: count_parameters(_on_meta(resnet18, num_classes=100)),
             hint="Only the classifier depends on the number of classes: it has 512 weights and one "
                  "bias per class; start from ResNet18's 11,689,512 parameters."),
    Question("layer4_shape_600x400",
             "2. the shape leaving layer4 for one image 600 pixels high and 400 wide, (N, C, H, W)",
             lambda: tuple(_on_meta(resnet18).forward_features(
                 torch.empty(1, 3, 600, 400, device="meta")).shape),
             hint="How many times do the stem and the stages halve the height and the width, and which "
                  "way do they round an odd side? Work out the height and the width separately, and give "
                  "all four numbers as a tuple, the batch of one included."),
    Question("bottleneck_conv_blocks", "3. the Conv Blocks of ResNet(Bottleneck, [2, 3, 4, 3])",
             lambda: conv_block_names(_on_meta(ResNet, Bottleneck, [2, 3, 4, 3])),
             hint="A block needs a projection where the stride or the channel count changes: compare "
                  "the channels that flow into each block with the channels it gives out (a block of "
                  "width w gives out w * block.expansion). Name the blocks as a set of strings such as "
                  "{'layer2[1]', 'layer3[2]'} (the index counts from 0)."),
    Question("gmacs_at_448", "4. G MACs of ResNet18 for one 448x448 image (within 2%)",
             lambda: round(count_macs(_on_meta(resnet18), image_size=448) / 1e9, 3), tolerance=0.02,
             hint="A convolution's MACs are its output pixels times its weights. How many more output "
                  "pixels does every convolution have at 448x448 than at 224x224 (1.814 G MACs)?"),
]


def check_resnet18_predictions(answers):
    """Exercise 2 of notebook 03: each prediction in the dict ``answers`` against the measurement."""
    return check_predictions("resnet18_predictions", "Checking your predictions against measurements",
                             RESNET18_QUESTIONS, answers)

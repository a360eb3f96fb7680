"""The checker of the basic block, ``check_basic_block``, and the block's known mistakes.

Notebook 01 checks the Identity Block alone (``identity_only=True``); notebook 02 checks the whole
block, Identity and Conv Blocks, with the same function. The mistakes are computed from the
reference, :class:`resnet_edu.blocks.BasicBlock`.
"""

import torch.nn.functional as F

from ..blocks import BasicBlock
from .engine import Case, Mistake, check_against_reference, checking, is_buildable


def shortcut(block, x):
    """What a reference block adds to its branch: x itself, or x projected by ``downsample``."""
    return x if block.downsample is None else block.downsample(x)


def _branch(ref, x, relu_inside=True):
    out = ref.bn1(ref.conv1(x))
    return ref.bn2(ref.conv2(F.relu(out) if relu_inside else out))


BASIC_BLOCK_MISTAKES = [
    Mistake("ReLU before the addition",
            lambda r, x: F.relu(F.relu(_branch(r, x)) + shortcut(r, x)),
            "the branch ends in a ReLU before the shortcut is added, so F(x) can only add "
            "non-negative values and never subtract. End the branch with bn2; apply the ReLU once, "
            "after the addition."),
    Mistake("no ReLU after the addition", lambda r, x: _branch(r, x) + shortcut(r, x),
            "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
    Mistake("the shortcut is never added", lambda r, x: F.relu(_branch(r, x)),
            "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
            "downsample(x)) to the branch before the final ReLU."),
    Mistake("no ReLU between the two convolutions",
            lambda r, x: F.relu(_branch(r, x, relu_inside=False) + shortcut(r, x)),
            "bn1's output goes into conv2 without a ReLU. The branch is conv-BN-ReLU-conv-BN."),
    Mistake("ReLU before BN", lambda r, x: F.relu(
                r.bn2(r.conv2(r.bn1(F.relu(r.conv1(x))))) + shortcut(r, x)),
            "the first unit runs conv-ReLU-BN. The block's order is conv1, bn1, ReLU, conv2, bn2: "
            "each BN normalises the output of the convolution right in front of it."),
    Mistake("shortcut added before bn2",
            lambda r, x: F.relu(r.bn2(r.conv2(F.relu(r.bn1(r.conv1(x)))) + shortcut(r, x))),
            "x is added to conv2's output and the sum goes through bn2, so BN rescales the shortcut "
            "too and x no longer passes through unchanged. Add the shortcut after bn2: "
            "out = relu(bn2(conv2(...)) + identity)."),
    Mistake("ReLU before the addition only (no ReLU after it)",
            lambda r, x: F.relu(_branch(r, x)) + shortcut(r, x),
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

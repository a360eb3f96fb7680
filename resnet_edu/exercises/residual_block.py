"""The checkers of notebook 01: ``check_basic_block`` with the block's known mistakes (exercise 1),
and the predict-then-check questions of exercise 2, ``check_width_prediction`` and
``check_zero_init_predictions``.

Notebook 01 checks the Identity Block alone (``identity_only=True``); notebook 02 checks the whole
block, Identity and Conv Blocks, with the same function. The mistakes are computed from the
reference, :class:`resnet_edu.blocks.BasicBlock`. The questions are answered by measuring, with
the gradient experiment of the notebook's section 5 rebuilt here (``make_stack``,
``stack_gradient_norms``: the notebook's own code, which a test compares with this one).
"""

import functools
import statistics

import torch
import torch.nn.functional as F
from torch import nn

from ..blocks import BasicBlock, PlainBlock, PreActBasicBlock
from ..resnet import init_weights
from .engine import REFERENCE_MISTAKES, Case, Mistake, catalogue, check_against_reference, checking, is_buildable
from .predictions import PREDICTION_MISTAKES, Question, check_predictions


def shortcut(block, x):
    """What a reference block adds to its branch: x itself, or x projected by ``downsample``."""
    return x if block.downsample is None else block.downsample(x)


def _branch(ref, x, relu_inside=True, last_bn=True):
    out = ref.bn1(ref.conv1(x))
    out = ref.conv2(F.relu(out) if relu_inside else out)
    return ref.bn2(out) if last_bn else out


def residual_mistakes(branch, last_bn):
    """The five mistakes any residual block can make around its addition, for a block whose
    residual branch the reference computes as ``branch(reference, x)`` and ends with the BN named
    ``last_bn`` (``branch(reference, x, last_bn=False)`` stops before it)."""
    return [
        Mistake("relu-before-addition", "ReLU before the addition",
                lambda r, x: F.relu(F.relu(branch(r, x)) + shortcut(r, x)),
                "the branch ends in a ReLU before the shortcut is added, so F(x) can only add "
                f"non-negative values and never subtract. End the branch with {last_bn}; apply the ReLU "
                "once, after the addition."),
        Mistake("no-relu-after-addition", "no ReLU after the addition", lambda r, x: branch(r, x) + shortcut(r, x),
                "the block returns F(x) + x without the final ReLU. Return relu(out + identity)."),
        Mistake("shortcut-never-added", "the shortcut is never added", lambda r, x: F.relu(branch(r, x)),
                "the block computes ReLU(F(x)): a plain block, not a residual one. Add x (or "
                "downsample(x)) to the branch before the final ReLU."),
        Mistake("shortcut-added-before-bn", f"shortcut added before {last_bn}",
                lambda r, x: F.relu(getattr(r, last_bn)(branch(r, x, last_bn=False) + shortcut(r, x))),
                f"x is added to the last convolution's output and the sum goes through {last_bn}, so BN "
                f"rescales the shortcut too and x no longer passes through unchanged. Add the shortcut after "
                f"{last_bn}: out = relu({last_bn}(...) + identity)."),
        Mistake("relu-moved-before-addition", "ReLU before the addition only (no ReLU after it)",
                lambda r, x: F.relu(branch(r, x)) + shortcut(r, x),
                f"the ReLU is applied to the branch and then x is added. Move it after the addition: "
                f"out = relu({last_bn}(...) + identity)."),
    ]


BASIC_BLOCK_MISTAKES = residual_mistakes(_branch, "bn2") + [
    Mistake("no-relu-between-convolutions", "no ReLU between the two convolutions",
            lambda r, x: F.relu(_branch(r, x, relu_inside=False) + shortcut(r, x)),
            "bn1's output goes into conv2 without a ReLU. The branch is conv-BN-ReLU-conv-BN."),
    Mistake("relu-before-bn", "ReLU before BN", lambda r, x: F.relu(
                r.bn2(r.conv2(r.bn1(F.relu(r.conv1(x))))) + shortcut(r, x)),
            "the first unit runs conv-ReLU-BN. The block's order is conv1, bn1, ReLU, conv2, bn2: "
            "each BN normalises the output of the convolution right in front of it."),
]

IDENTITY_CASE = Case("Identity Block", (64, 64), {"stride": 1}, (4, 64, 8, 8))
CONV_BLOCK_CASES = [
    Case("Conv Block (stride 2, channels doubled)", (64, 128), {"stride": 2}, (4, 64, 8, 8)),
    Case("Conv Block (channels doubled, stride 1)", (64, 128), {"stride": 1}, (4, 64, 8, 8)),
]

BLOCK_MISTAKE_IDS = catalogue(REFERENCE_MISTAKES, BASIC_BLOCK_MISTAKES)


def check_basic_block(candidate_class, identity_only=False):
    """Check a learner's ``MyBasicBlock(in_channels, out_channels, stride=1)`` against BasicBlock.

    identity_only=True checks only the Identity Block (notebook 01, before the Conv Block is taught).
    """
    exercise = "residual_block" if identity_only else "basic_block"
    cases = [IDENTITY_CASE] + ([] if identity_only else CONV_BLOCK_CASES)
    with checking(exercise, "Checking your block against resnet_edu.blocks.BasicBlock", BLOCK_MISTAKE_IDS) as result:
        for case in cases if is_buildable(result, candidate_class) else []:
            check_against_reference(result, candidate_class, BasicBlock, case, BASIC_BLOCK_MISTAKES)
    return result


# ---------------------------------------------------------------- exercise 2: predict, then check


KINDS = {"plain": PlainBlock, "residual": BasicBlock, "preact": PreActBasicBlock}


def make_stack(kind, depth, channels=16):
    """``depth`` blocks of one kind ("plain", "residual", "preact") with torchvision's initialisation."""
    stack = nn.Sequential(*[KINDS[kind](channels, channels) for _ in range(depth)])
    init_weights(stack)
    return stack


def stack_gradient_norms(kind, depth, seed=0, channels=16):
    """Norm of the gradient of each block's conv1 weight, first block first (BN in training mode,
    mean squared error to a random target), as in the notebook's section 5."""
    torch.manual_seed(seed)
    stack = make_stack(kind, depth, channels)
    x = torch.randn(16, channels, 8, 8)
    target = torch.randn(16, channels, 8, 8)
    F.mse_loss(stack(x), target).backward()
    return [block.conv1.weight.grad.norm().item() for block in stack]


@functools.lru_cache  # deterministic, and a few seconds at 64 channels: measure once per session
def plain_growth_per_block(channels, shallow=8, deep=24, seeds=(0, 1, 2)):
    """The factor by which each added block multiplies the gradient at a plain stack's first
    convolution: (first-block gradient at ``deep`` / at ``shallow`` blocks) ** (1 / (deep - shallow)),
    each the median over ``seeds``."""
    def first(depth):
        with torch.random.fork_rng(devices=[]):
            return statistics.median(stack_gradient_norms("plain", depth, seed, channels)[0] for seed in seeds)
    return (first(deep) / first(shallow)) ** (1 / (deep - shallow))


SAME_WITHIN = 0.10  # "about the same": the two factors differ by 10% or less


def width_verdict():
    """'larger', 'smaller' or 'about the same': the plain stack's growth per block with 64 channels,
    compared with 16."""
    ratio = plain_growth_per_block(64) / plain_growth_per_block(16)
    if abs(ratio - 1) <= SAME_WITHIN:
        return "about the same"
    return "larger" if ratio > 1 else "smaller"


WIDTH_QUESTIONS = [
    Question("plain_growth_with_64_channels",
             "the plain stack's growth per added block with 64 channels instead of 16: 'larger', "
             "'smaller' or 'about the same' (within 10%)",
             width_verdict,
             hint="Answer with one of the three words. Where does the growth come from, according to "
                  "Yang et al. (2019): from the number of channels, or from BN's normalisation over "
                  "the batch?"),
]


def check_width_prediction(answers):
    """Exercise 2a of notebook 01: a wider plain stack, measured at 8 and 24 blocks (a few seconds)."""
    return check_predictions("plain_stack_width", "Checking your prediction against a measurement",
                             WIDTH_QUESTIONS, answers)


def zero_init_stack(seed=0):
    """The stack of exercise 2b: 8 residual blocks of 16 channels, each with zero_init_residual();
    with the input and target of section 5's experiment."""
    torch.manual_seed(seed)
    stack = make_stack("residual", 8)
    for block in stack:
        block.zero_init_residual()
    return stack, torch.randn(16, 16, 8, 8), torch.randn(16, 16, 8, 8)


def tensors_with_gradient(sgd_steps=0):
    """Names of the zero-initialised stack's parameter tensors with a non-zero gradient, after
    ``sgd_steps`` steps of SGD (lr 0.1) on the same batch."""
    with torch.random.fork_rng(devices=[]):
        stack, x, target = zero_init_stack()
    optimizer = torch.optim.SGD(stack.parameters(), lr=0.1)
    for _ in range(sgd_steps):
        optimizer.zero_grad(set_to_none=True)
        F.mse_loss(stack(x), target).backward()
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    F.mse_loss(stack(x), target).backward()
    return [name for name, p in stack.named_parameters() if p.grad is not None and bool(p.grad.any())]


ZERO_INIT_QUESTIONS = [
    Question("tensors_with_gradient",
             "1. how many of the stack's 48 parameter tensors get a non-zero gradient",
             lambda: len(tensors_with_gradient()),
             hint="With bn2.weight = 0, which tensors can still change the loss? A tensor in front of "
                  "a zero scale cannot."),
    Question("which_tensors",
             "2. which ones, named inside a block (a set such as {'conv1.weight'})",
             lambda: {name.split(".", 1)[1] for name in tensors_with_gradient()},
             hint="Name them as a block names them, without the block's index ('conv1.weight', "
                  "'bn1.bias', ...). Write out what bn2 computes: which tensors can change its output "
                  "while bn2.weight is zero?"),
    Question("after_one_step",
             "3. how many of the 48 get a non-zero gradient in the next pass, after one SGD step (lr 0.1)",
             lambda: len(tensors_with_gradient(sgd_steps=1)),
             hint="What does the first step do to bn2.weight, and what does that open up?"),
]


def check_zero_init_predictions(answers):
    """Exercise 2b of notebook 01: which parameters of a zero-initialised residual stack learn."""
    return check_predictions("zero_init_stack", "Checking your predictions against a measurement",
                             ZERO_INIT_QUESTIONS, answers)


MISTAKE_IDS = catalogue(BLOCK_MISTAKE_IDS, PREDICTION_MISTAKES)  # every mistake this module's checkers can report

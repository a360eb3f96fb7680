"""Notebook 01, exercise 2a: does a four times wider plain stack explode more slowly?

Measure as section 5 does: the gradient at the first block's convolution (median of seeds 0, 1, 2)
at 8 and at 24 blocks; the growth per added block is (gradient at 24 / gradient at 8) ** (1 / 16).
In the notebook, use your own gradient_norms with channels=64; it is the same function as this one.
"""

import statistics

from resnet_edu.exercises.residual_block import stack_gradient_norms as gradient_norms


def first_block_gradient(depth, channels):
    return statistics.median(gradient_norms("plain", depth, seed, channels)[0] for seed in (0, 1, 2))


for channels in (16, 64):
    factor = (first_block_gradient(24, channels) / first_block_gradient(8, channels)) ** (1 / 16)
    print(f"{channels} channels: each added block multiplies the first block's gradient by {factor:.2f}")

# About the same: a few percent apart, far within 10%. Width is no cure. Yang et al. (2019) trace the
# explosion to BatchNorm itself, and their theory describes networks of infinite width, where the
# gradient still grows exponentially with depth. What stops the growth is the shortcut (section 5).

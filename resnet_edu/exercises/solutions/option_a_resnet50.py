"""Notebook 02, exercise 3: option A on ResNet50's first block (64 -> 256 channels, stride 1)."""

import torch

from resnet_edu.blocks import make_shortcut

shortcut = make_shortcut(64, 256, 1, option="A")
y = shortcut(torch.randn(1, 64, 56, 56))
carrying = int((y.abs().sum(dim=(0, 2, 3)) > 0).sum())
print(shortcut, "->", tuple(y.shape), f"| channels that carry x: {carrying} of {y.shape[1]}")
# 64 of 256: the other 192 channels of the shortcut are zeros. Three quarters of F(x) are added
# to nothing, so in those channels the block is a plain block, ReLU(F(x)), with no residual
# learning; the paper's argument for preferring B over A (section 4.1), in its strongest form.

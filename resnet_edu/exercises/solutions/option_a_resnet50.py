"""Notebook 02, exercise 3 (b): what option A would do in ResNet50."""

import torch

from resnet_edu.blocks import make_shortcut
from resnet_edu.exercises.identity_and_conv_blocks import padded_blocks
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import resnet50

# 1. Every stage of ResNet50 changes the channel count in its first block (stem 64 -> 256, then
#    256 -> 512, 512 -> 1024, 1024 -> 2048), stage 1 included, so four blocks pad.
print("1.", padded_blocks(resnet50(shortcut="A")), "blocks with a zero-padded shortcut")

# 2. The first of them, layer1[0], goes from 64 to 256 channels at stride 1.
shortcut = make_shortcut(64, 256, 1, option="A")
y = shortcut(torch.randn(1, 64, 56, 56))
carrying = int((y.abs().sum(dim=(0, 2, 3)) > 0).sum())
print("2.", shortcut, "->", tuple(y.shape), f"| channels that carry x: {carrying} of {y.shape[1]}")

# 3. Option B turns those four into projections: 1x1 weights (in x out) and a BN (2 x out) each,
#    64*256 + 256*512 + 512*1024 + 1024*2048 weights and 2*(256 + 512 + 1024 + 2048) BN parameters.
option_a, option_b = count_parameters(resnet50(shortcut="A")), count_parameters(resnet50())
print(f"3. option B adds {option_b - option_a:,} parameters, {(option_b - option_a) / option_b:.1%} "
      f"of its {option_b:,}")

# What it means. In layer1[0], 64 of the shortcut's 256 channels carry x and 192 are zeros. In
# those 192 channels the block computes ReLU(F(x) + 0) = ReLU(F(x)): a plain block, with nothing
# for F to be a residual of. That is the paper's reason why B beats A (section 4.1: "the
# zero-padded dimensions in A indeed have no residual learning"), and here it holds for three
# quarters of the block's channels rather than the half of ResNet34's transitions, where the
# channels double. The later blocks of each stage are Identity Blocks and carry all channels, so
# only the first block of each stage is affected. The saving is real (the parameters printed
# above), but the paper builds its 50-, 101- and 152-layer models with option B (the caption of
# its Table 3), as torchvision does.

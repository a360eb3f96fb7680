"""Notebook 03, exercise 3: each prediction worked out, then measured, then checked."""

import math

import torch

from resnet_edu.blocks import Bottleneck
from resnet_edu.exercises import check_resnet18_predictions
from resnet_edu.exercises.four_stages import conv_block_names
from resnet_edu.measure import count_macs, count_parameters
from resnet_edu.resnet import ResNet, resnet18

# 1. Only the classifier depends on the number of classes: 512 weights and 1 bias per class.
parameters_100 = count_parameters(resnet18()) - 1000 * (512 + 1) + 100 * (512 + 1)
print("1.", f"{parameters_100:,} predicted,", f"{count_parameters(resnet18(num_classes=100)):,} measured")

# 2. conv1, the max-pool and the first block of stages 2, 3 and 4 each halve the height and the
#    width, rounding up: five halvings, so each side is divided by 2**5 = 32 and rounded up, the
#    height and the width separately. 600 / 32 = 18.75 -> 19, 400 / 32 = 12.5 -> 13. layer4 gives
#    out 512 channels; the batch holds one image.
layer4_shape = (1, 512, math.ceil(600 / 2**5), math.ceil(400 / 2**5))
measured = tuple(resnet18().eval().forward_features(torch.zeros(1, 3, 600, 400)).shape)
print("2.", layer4_shape, "predicted,", measured, "measured")

# 3. A block is a Conv Block where the shape changes: a stride, or a channel count that changes.
#    A Bottleneck of width w gives out 4 * w channels (expansion 4). Stage 1's first block receives
#    the stem's 64 channels and gives out 4 * 64 = 256 at stride 1: a Conv Block, unlike ResNet18's.
#    Stages 2, 3 and 4 open with stride 2 (and 256 -> 512, 512 -> 1024, 1024 -> 2048 channels):
#    Conv Blocks. Every later block of a stage receives what it gives out, at stride 1: Identity
#    Blocks. The block counts [2, 3, 4, 3] change none of this.
conv_blocks = {"layer1[0]", "layer2[0]", "layer3[0]", "layer4[0]"}
print("3.", sorted(conv_blocks), "predicted,",
      sorted(conv_block_names(ResNet(Bottleneck, [2, 3, 4, 3]))), "measured")

# 4. Every convolution's output has twice the height and twice the width at 448x448, so four times
#    the pixels and four times the MACs. The classifier's 512 x 1000 MACs do not grow: it sees the
#    512 pooled numbers whatever the image size.
classifier_macs = 512 * 1000
macs_448 = 4 * (count_macs(resnet18(), image_size=224) - classifier_macs) + classifier_macs
print("4.", f"{macs_448:,} predicted,", f"{count_macs(resnet18(), image_size=448):,} measured")

check_resnet18_predictions({
    "parameters_100_classes": parameters_100,
    "layer4_shape_600x400": layer4_shape,
    "bottleneck_conv_blocks": conv_blocks,
    "gmacs_at_448": macs_448 / 1e9,
})

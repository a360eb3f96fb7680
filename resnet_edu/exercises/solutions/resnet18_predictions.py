"""Notebook 03, exercise 2: each prediction worked out, then measured, then checked."""

from resnet_edu.blocks import BasicBlock
from resnet_edu.exercises import check_resnet18_predictions
from resnet_edu.exercises.four_stages import conv_block_names
from resnet_edu.measure import count_macs, count_parameters, shape_trace
from resnet_edu.resnet import ResNet, resnet18

# 1. Only the classifier depends on the number of classes: 512 weights and 1 bias per class.
parameters_100 = count_parameters(resnet18()) - 1000 * (512 + 1) + 100 * (512 + 1)
print("1.", f"{parameters_100:,} predicted,", f"{count_parameters(resnet18(num_classes=100)):,} measured")

# 2. conv1, the max-pool and the first block of stages 2, 3 and 4 each halve the height and the
#    width: five halvings, 320 / 2**5 = 10. layer4 gives out 512 channels; the batch holds one image.
layer4_shape = (1, 512, 320 // 2**5, 320 // 2**5)
print("2.", layer4_shape, "predicted,", dict(shape_trace(resnet18(), image_size=320))["layer4"], "measured")

# 3. Stage 1 opens with an Identity Block however many blocks it holds: 64 channels come in, 64 go
#    out, stride 1. Stages 2, 3 and 4 open with a Conv Block (stride 2, channels doubled); every later
#    block of a stage keeps the shape. The block counts [2, 3, 4, 3] change none of this.
resnet26 = ResNet(BasicBlock, [2, 3, 4, 3])
print("3.", sorted(conv_block_names(resnet26)))

# 4. Every convolution's output has twice the height and twice the width at 448x448, so four times
#    the pixels and four times the MACs. The classifier's 512 x 1000 MACs do not grow: it sees the
#    512 pooled numbers whatever the image size.
classifier_macs = 512 * 1000
macs_448 = 4 * (count_macs(resnet18(), image_size=224) - classifier_macs) + classifier_macs
print("4.", f"{macs_448:,} predicted,", f"{count_macs(resnet18(), image_size=448):,} measured")

check_resnet18_predictions({
    "parameters_100_classes": parameters_100,
    "layer4_shape_at_320": layer4_shape,
    "resnet26_conv_blocks": {"layer2[0]", "layer3[0]", "layer4[0]"},
    "gmacs_at_448": macs_448 / 1e9,
})

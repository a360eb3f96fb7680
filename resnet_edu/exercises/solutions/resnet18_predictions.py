"""Notebook 03, exercise 2: the predictions, then the measurements."""

from resnet_edu.blocks import BasicBlock, block_kind
from resnet_edu.measure import count_parameters, shape_trace
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

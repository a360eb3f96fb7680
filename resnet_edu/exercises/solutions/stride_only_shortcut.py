"""Notebook 02, exercise 3 (a): where the starter's test of exercise 1, which looks only at the stride,
builds the wrong shortcut."""

from resnet_edu.exercises.identity_and_conv_blocks import blocks_a_stride_only_test_gets_wrong
from resnet_edu.resnet import resnet18, resnet34, resnet50

for name, build in [("resnet18", resnet18), ("resnet34", resnet34), ("resnet50", resnet50)]:
    print(f"{name}: the stride-only test gets {blocks_a_stride_only_test_gets_wrong(build())} block(s) wrong")

# 1. ResNet18 (and ResNet34): none. Their channels change only in the first block of stages 2, 3
#    and 4 (section 2's table), and exactly those blocks have stride 2. The two tests agree on every
#    block, so a model built with the wrong one has the right shortcuts: the mistake cannot show.
# 2. ResNet50: one, layer1[0]. Its bottleneck puts out 4 x 64 = 256 channels, while the stem
#    delivers 64, at stride 1: the shape changes without a stride. The stride-only test leaves it
#    without a projection, and the first forward pass fails when 256 channels meet 64 in the
#    addition. A test is right when it states the reason for the projection (the shape changes:
#    stride != 1 or in_channels != out_channels), not a symptom that happens to go with it.

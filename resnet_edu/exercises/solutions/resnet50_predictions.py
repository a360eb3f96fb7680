"""Notebook 04, exercise 2: the predictions, then the measurements."""

import torch

from resnet_edu.blocks import Bottleneck
from resnet_edu.measure import count_macs, count_parameters
from resnet_edu.resnet import resnet50, resnet101

# 1. No projection (512 in = 4 * 128 out): three convolutions without bias, and a scale and
#    a shift per channel in each of the three BNs.
predicted = 512 * 128 + 128 * 128 * 3 * 3 + 128 * 512 + 2 * (128 + 128 + 512)
print("1.", f"{predicted:,} predicted,", f"{count_parameters(Bottleneck(512, 128)):,} measured")

# 2. 23 - 6 = 17 more Identity Blocks of width 256, each with 4 * 256 = 1024 channels in and out.
with torch.device("meta"):  # shapes only: counting needs no values
    predicted = 17 * count_parameters(Bottleneck(1024, 256))
    measured = count_parameters(resnet101()) - count_parameters(resnet50())
print("2.", f"{predicted:,} predicted,", f"{measured:,} measured")


# 3. The same function as in the notebook: move each stage's stride to the first 1x1.
def stride_on_first_1x1(model):
    for stage in (model.layer1, model.layer2, model.layer3, model.layer4):
        first = stage[0]
        first.conv1.stride, first.conv2.stride = first.conv2.stride, (1, 1)
    return model


for build in (resnet50, resnet101):
    with torch.device("meta"):
        v15, v1 = build(), stride_on_first_1x1(build())
    extra = count_macs(v15) - count_macs(v1)
    print("3.", build.__name__, f"v1.5 costs {extra / 1e6:.1f} M MACs more, {extra / count_macs(v1):.1%}")
# The same extra MACs in both: only the three downsampling blocks differ, and ResNet101's extra
# blocks in layer3 are Identity Blocks with stride 1. Spread over a larger total, the same
# extra is a smaller percentage.

"""Notebook 04, exercise 2: the predictions worked out by hand, each next to its measurement, then
the checker with these answers."""

import torch

from resnet_edu.blocks import Bottleneck
from resnet_edu.exercises import check_resnet50_predictions
from resnet_edu.measure import count_macs, count_parameters
from resnet_edu.resnet import ResNet, resnet50, resnet101, stride_on_first_1x1

# 1. No projection (512 in = 4 * 128 out): three convolutions without bias (1x1 512 -> 128,
#    3x3 128 -> 128, 1x1 128 -> 512), and a weight and a bias per channel in each of the three BNs.
parameters_512 = 512 * 128 + 128 * 128 * 3 * 3 + 128 * 512 + 2 * (128 + 128 + 512)
print("1.", f"{parameters_512:,} predicted,", f"{count_parameters(Bottleneck(512, 128)):,} measured")

# 2. layer3 holds 12 blocks instead of 6: 6 more Identity Blocks of width 256, each with
#    4 * 256 = 1024 channels in and out. Nothing else differs.
identity_block_256 = 1024 * 256 + 256 * 256 * 3 * 3 + 256 * 1024 + 2 * (256 + 256 + 1024)
extra_parameters = 6 * identity_block_256
with torch.device("meta"):  # shapes only: counting needs no values
    measured = count_parameters(ResNet(Bottleneck, [3, 4, 12, 3])) - count_parameters(resnet50())
print("2.", f"{extra_parameters:,} predicted,", f"{measured:,} measured")

# 3. v1 and v1.5 differ only in the first 1x1 of the three strided blocks (layer2[0], layer3[0],
#    layer4[0]): v1.5 runs it on the full input resolution, v1 on a quarter of the pixels. In
#    layer2[0] that 1x1 (256 -> 128 channels) runs on 56x56 pixels instead of 28x28. From one stage
#    to the next its input channels and its width both double, so its weights grow 4x, which
#    cancels the quarter of the pixels: the difference is the same in layer3[0] and layer4[0].
#    ResNet101's extra blocks are all Identity Blocks with stride 1: the extra cost is the same.
extra_macs = 3 * (256 * 128 * 56 * 56 - 256 * 128 * 28 * 28)
print(f"   {extra_macs / 1e6:.1f} M MACs predicted for both")
measured_percent = {}
for build in (resnet50, resnet101):
    with torch.device("meta"):
        v15, v1 = build(), stride_on_first_1x1(build())
    extra = count_macs(v15) - count_macs(v1)
    measured_percent[build.__name__] = 100 * extra / count_macs(v1)
    print("3.", build.__name__, f"v1.5 costs {extra / 1e6:.1f} M MACs more, {extra / count_macs(v1):.1%}")

# 4. The same extra MACs over a model about twice as large: ResNet101 costs 7.80 G MACs in v1.5
#    (the notebook's table), so 7.80 G less the extra in v1, and the share is about half of
#    ResNet50's 6.0%.
extra_percent = 100 * extra_macs / (7.80e9 - extra_macs)
print(f"4. {extra_percent:.2f}% predicted, {measured_percent['resnet101']:.2f}% measured")
my_predictions = {
    "bottleneck_512_128_parameters": parameters_512,
    "resnet_3_4_12_3_extra_parameters": extra_parameters,
    "resnet101_v15_extra_macs_millions": extra_macs / 1e6,
    "resnet101_v15_extra_percent": round(extra_percent, 2),
}
check_resnet50_predictions(my_predictions)

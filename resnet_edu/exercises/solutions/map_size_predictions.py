"""Notebook 07, the map-size question: each prediction worked out, then measured, then checked."""

import math

from resnet_edu.exercises.what_resnet_sees import check_map_size_predictions, smallest_side_for

# Every layer with stride 2 halves the side, rounding up (notebook 03): a side s becomes ceil(s / 2).
# After k such layers a side s is ceil(s / 2**k), which is at least 4 exactly when s > 3 * 2**k.

# 1. The ImageNet stem has two (the 7x7 convolution and the max-pool); layer2, layer3 and layer4 each open
#    with one more: k = 5, so s > 3 * 32 = 96.
imagenet_side = 3 * 2**5 + 1
print("1.", imagenet_side, "predicted,", smallest_side_for("imagenet"), "measured,",
      "layer4 side there:", math.ceil(imagenet_side / 2**5))

# 2. The CIFAR stem keeps the resolution: only layer2, layer3 and layer4 halve it, k = 3, so s > 24.
cifar_side = 3 * 2**3 + 1
print("2.", cifar_side, "predicted,", smallest_side_for("cifar"), "measured")

check_map_size_predictions({"smallest_side_imagenet_stem": imagenet_side, "smallest_side_cifar_stem": cifar_side})

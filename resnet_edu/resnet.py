"""ResNet: a stem, four stages of residual blocks, global average pooling and a classifier.

With the defaults every builder is torchvision's model: the same parameter names in the same
order, the same shapes, the same initialisation and the same computation, so
``load_state_dict(torchvision_model.state_dict(), strict=True)`` works in both directions.
"""

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck

STEMS = ("imagenet", "cifar")
STAGE_WIDTHS = (64, 128, 256, 512)  # the paper's Table 1; later stages also halve the resolution


def _check_layers(layers):
    ok = (
        isinstance(layers, (list, tuple))
        and len(layers) == 4
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers)
    )
    if not ok:
        raise ValueError(
            f"layers must be four positive integers, the number of blocks in each stage "
            f"(ResNet18 uses [2, 2, 2, 2], ResNet50 [3, 4, 6, 3]); got {layers!r}"
        )


def _check_arguments(layers, num_classes, stem):
    _check_layers(layers)
    if stem not in STEMS:
        raise ValueError(
            f"stem must be one of {STEMS}; got {stem!r}. 'imagenet' is the paper's 7x7 stride-2 "
            f"convolution and max-pool (for 224x224 images), 'cifar' a 3x3 stride-1 convolution "
            f"without max-pool (for 32x32 images)."
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer of at least 1; got {num_classes!r}")


def make_stem(stem):
    """The layers before the first stage: (conv1, bn1, relu, maxpool), named as in torchvision."""
    if stem == "imagenet":  # 224 -> 112 (conv) -> 56 (max-pool)
        conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:  # 32x32 images are already small: keep the resolution
        conv = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        pool = nn.Identity()
    return conv, nn.BatchNorm2d(64), nn.ReLU(inplace=True), pool


def make_stage(block, in_channels, width, num_blocks, stride, shortcut="B"):
    """A stage: a first block that may change the shape (stride, channels), then blocks that keep it."""
    blocks = [block(in_channels, width, stride, shortcut=shortcut)]
    blocks += [block(width * block.expansion, width, 1, shortcut=shortcut) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


class ResNet(nn.Module):
    """ResNet of the paper "Deep Residual Learning for Image Recognition" (He et al., 2015).

    block:    BasicBlock (ResNet18/34) or Bottleneck (ResNet50/101/152)
    layers:   blocks per stage, e.g. [2, 2, 2, 2]
    stem:     "imagenet" (7x7 stride 2 + max-pool) or "cifar" (3x3 stride 1, no max-pool)
    shortcut: the paper's option "A", "B" (default, torchvision) or "C"
    zero_init_residual: start every block as the identity (last BN weight 0)
    """

    def __init__(self, block, layers, num_classes=1000, stem="imagenet", shortcut="B",
                 zero_init_residual=False):
        super().__init__()
        _check_arguments(layers, num_classes, stem)  # the shortcut option: blocks.make_shortcut checks it
        self.stem = stem
        self.min_input_size = 32 if stem == "imagenet" else 8  # the product of all strides

        self.conv1, self.bn1, self.relu, self.maxpool = make_stem(stem)
        w1, w2, w3, w4 = STAGE_WIDTHS
        e = block.expansion  # a stage's output has width * e channels: the next stage's input
        self.layer1 = make_stage(block, 64, w1, layers[0], 1, shortcut)  # keeps the stem's resolution
        self.layer2 = make_stage(block, w1 * e, w2, layers[1], 2, shortcut)  # the others halve it
        self.layer3 = make_stage(block, w2 * e, w3, layers[2], 2, shortcut)
        self.layer4 = make_stage(block, w3 * e, w4, layers[3], 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # any input size, not a fixed 7x7 window
        self.fc = nn.Linear(w4 * e, num_classes)

        self._init_weights(zero_init_residual)

    def _init_weights(self, zero_init_residual):
        """torchvision's initialisation, in torchvision's order (same seed, same weights)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    m.zero_init_residual()

    def check_input(self, x):
        """Raise a ValueError that names the problem before a deep layer fails obscurely."""
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"expected a torch.Tensor of shape (N, 3, H, W); got {type(x).__name__}")
        if x.dim() != 4:
            hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
            raise ValueError(
                f"expected a 4-D batch of images (N, 3, H, W); got a {x.dim()}-D tensor of shape "
                f"{tuple(x.shape)}.{hint}"
            )
        if x.shape[1] != self.conv1.in_channels:
            hint = " Channels-last images (N, H, W, 3) need x.permute(0, 3, 1, 2)." if x.shape[-1] == 3 else ""
            raise ValueError(
                f"expected {self.conv1.in_channels} colour channels in dimension 1, (N, 3, H, W); "
                f"got shape {tuple(x.shape)}.{hint}"
            )
        if not x.is_floating_point():
            raise ValueError(
                f"expected a floating-point tensor; got {x.dtype}. Convert uint8 images with "
                f"x.float() / 255 (then normalise)."
            )
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            raise ValueError(
                f"the {self.stem!r} stem and four stages shrink an image {self.min_input_size}x, so "
                f"inputs must be at least {self.min_input_size}x{self.min_input_size}; got "
                f"{height}x{width}. Resize the images, or use stem='cifar' for small images."
            )
        last_stage_pixels = -(-height // self.min_input_size) * -(-width // self.min_input_size)
        if self.training and x.shape[0] * last_stage_pixels < 2:
            raise ValueError(
                f"in training mode BatchNorm needs more than one value per channel, but a batch of "
                f"{x.shape[0]} image(s) of {height}x{width} leaves one pixel per channel after the "
                f"last stage. Use a batch of at least 2, or call model.eval() for inference."
            )

    def forward_features(self, x):
        """Stem and the four stages: (N, 3, H, W) -> (N, C, H/32, W/32) ("imagenet" stem)."""
        self.check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer1(x)  # (N, 64 * e, H/4, W/4), e = block.expansion
        x = self.layer2(x)  # (N, 128 * e, H/8, W/8)
        x = self.layer3(x)  # (N, 256 * e, H/16, W/16)
        return self.layer4(x)  # (N, 512 * e, H/32, W/32)

    def forward(self, x):
        x = self.forward_features(x)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 512 * e)
        return self.fc(x)  # (N, num_classes)


def resnet18(**kwargs):
    """ResNet18: BasicBlock, [2, 2, 2, 2]. 11,689,512 parameters with 1000 classes."""
    return ResNet(BasicBlock, [2, 2, 2, 2], **kwargs)


def resnet34(**kwargs):
    """ResNet34: BasicBlock, [3, 4, 6, 3]."""
    return ResNet(BasicBlock, [3, 4, 6, 3], **kwargs)


def resnet50(**kwargs):
    """ResNet50: Bottleneck, [3, 4, 6, 3]."""
    return ResNet(Bottleneck, [3, 4, 6, 3], **kwargs)


def resnet101(**kwargs):
    """ResNet101: Bottleneck, [3, 4, 23, 3]."""
    return ResNet(Bottleneck, [3, 4, 23, 3], **kwargs)


def resnet152(**kwargs):
    """ResNet152: Bottleneck, [3, 8, 36, 3]."""
    return ResNet(Bottleneck, [3, 8, 36, 3], **kwargs)


def stride_on_first_1x1(module):
    """Move the stride of every strided Bottleneck in ``module`` (one block or a whole ResNet) from
    its 3x3 to its first 1x1: ResNet v1, the placement of the authors' released models. Works in
    place, returns ``module``; no parameter changes."""
    for block in module.modules():
        if isinstance(block, Bottleneck) and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return module


BUILDERS = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
}


def build(name, **kwargs):
    """Build a model by name ('resnet18', ..., 'resnet152'), with the same keywords as ResNet."""
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BUILDERS)}")
    return BUILDERS[name](**kwargs)

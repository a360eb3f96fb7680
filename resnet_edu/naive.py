"""A teaching specimen: ResNet18 as many from-scratch blog posts write it, with three mistakes common in them.

Such code runs and trains, which is why its mistakes survive. Each one is a flag here, so a
notebook can switch them off one at a time and measure what each costs:

* ``relu_before_add``: the residual branch ends in a ReLU *before* the addition (and again after),
  so the branch can only add non-negative values; the paper's branch ends in BN alone.
* ``conv_bias``: the block's 3x3 convolutions carry a bias although BN follows, which subtracts
  the batch mean and with it any bias: 3,840 parameters that learn nothing in ResNet18.
* ``fixed_avgpool``: ``nn.AvgPool2d(7)`` instead of an adaptive pool, so only 224x224 inputs
  work (a 32x32 image reaches the pool as 1x1 and the 7x7 window does not fit).

Two habits of the blog are kept as they are, because they are not bugs *in ResNet18*: its
shortcut test looks only at the stride (``if stride != 1``), right here by coincidence and wrong
for ResNet50's first block (64 -> 256 channels at stride 1); and its prose calls the stages
``stage1..4`` and the shortcut ``side``. The specimen itself uses torchvision's names (layer1..4,
downsample) so that its weights can be compared with torchvision's. With all three flags off it is
torchvision's resnet18: a strict ``load_state_dict`` works and the outputs are the same.
"""

import torch
from torch import nn

from .blocks import conv1x1


class NaiveBasicBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride, relu_before_add, conv_bias):
        super().__init__()
        self.relu_before_add = relu_before_add
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=conv_bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=conv_bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1:  # the blog's test: the stride alone decides (channels are not checked)
            self.downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.relu_before_add:
            out = self.relu(out)  # mistake (a): the branch can no longer subtract
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class NaiveResNet18(nn.Module):
    def __init__(self, relu_before_add=True, conv_bias=True, fixed_avgpool=True, num_classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        block_options = dict(relu_before_add=relu_before_add, conv_bias=conv_bias)
        self.layer1 = nn.Sequential(NaiveBasicBlock(64, 64, 1, **block_options),
                                    NaiveBasicBlock(64, 64, 1, **block_options))
        self.layer2 = nn.Sequential(NaiveBasicBlock(64, 128, 2, **block_options),
                                    NaiveBasicBlock(128, 128, 1, **block_options))
        self.layer3 = nn.Sequential(NaiveBasicBlock(128, 256, 2, **block_options),
                                    NaiveBasicBlock(256, 256, 1, **block_options))
        self.layer4 = nn.Sequential(NaiveBasicBlock(256, 512, 2, **block_options),
                                    NaiveBasicBlock(512, 512, 1, **block_options))
        # mistake (c): a fixed 7x7 window only fits the 7x7 maps of a 224x224 input
        self.avgpool = nn.AvgPool2d(7) if fixed_avgpool else nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def naive_resnet18(relu_before_add=True, conv_bias=True, fixed_avgpool=True, num_classes=1000):
    """The blog-style ResNet18; every flag True reproduces one of its three mistakes."""
    return NaiveResNet18(relu_before_add, conv_bias, fixed_avgpool, num_classes)

"""Notebook 01, exercise 1: the residual block, as an Identity Block.

The starter block has two mistakes:

1. Its convolutions have a bias (nn.Conv2d's default). The BN right after each one subtracts the
   channel's mean over the batch, and with it any bias: 128 parameters that learn nothing, and the
   block no longer matches BasicBlock's parameters. Build them with bias=False. Section 3 of the
   notebook teaches this (its step "First weight layer").
2. Its branch ends in a ReLU before the addition, so F(x) can never be negative: the block can only
   add to x, never subtract. End the branch with bn2 and apply the ReLU once, after the addition.
   Section 3 teaches this (its step "Second weight layer"), and section 6 shows what it cost in the
   paper (placement (c) of its table, "ReLU before the addition").
"""

from torch import nn


class MyBasicBlock(nn.Module):
    """The Identity Block: the input and output shapes are equal, the shortcut is x itself."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # no ReLU here: F(x) may be negative
        return self.relu(out + x)

"""Notebook 01, exercise 1: the residual block, as an Identity Block."""

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

"""Notebook 02, exercise 1: the shortcut, None or a projection of x to the branch's shape."""

from torch import nn


def make_downsample(in_channels, out_channels, stride=1):
    if stride == 1 and in_channels == out_channels:
        return None  # Identity Block: the block adds x itself
    return nn.Sequential(  # Conv Block: project x to the branch's shape
        nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
        nn.BatchNorm2d(out_channels),
    )

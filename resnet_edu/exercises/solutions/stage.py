"""Notebook 03, exercise 1: make_stage, the blocks of one stage in an nn.Sequential."""

from torch import nn


def make_stage(block, in_channels, width, num_blocks, stride):
    blocks = [block(in_channels, width, stride)]  # may change the shape: a Conv Block if so
    in_channels = width * block.expansion  # what every later block receives
    for _ in range(num_blocks - 1):
        blocks.append(block(in_channels, width, 1))  # Identity Blocks: the shape stays
    return nn.Sequential(*blocks)

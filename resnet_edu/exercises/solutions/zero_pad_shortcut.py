"""Notebook 02, exercise 2: the paper's option A shortcut, x subsampled with the stride and zero
channels appended. No parameters."""

import torch.nn.functional as F
from torch import nn


class MyZeroPadShortcut(nn.Module):
    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x):
        # The branch's 3x3 convolution (padding 1, stride s) centres its output pixel (i, j) on input
        # pixel (s*i, s*j): keep those pixels, rows and columns 0, s, 2s, ... This gives ceil(H / s)
        # rows, as the branch does, for odd H too. (2 x 2 pooling would average or pick the maximum
        # instead of keeping x's own values, and gives floor(H / 2) rows.)
        x = x[:, :, :: self.stride, :: self.stride]  # (N, C, ceil(H / s), ceil(W / s))
        # F.pad's tuple names the last dimension first: (W left, W right, H top, H bottom, C front,
        # C back). The zeros go after x's channels, so that channel c of x stays channel c.
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # (N, C + extra, ...)


# The same with torch.cat, for those who find it clearer:
#     zeros = x.new_zeros(x.shape[0], self.extra_channels, x.shape[2], x.shape[3])
#     return torch.cat([x, zeros], dim=1)
# (new_zeros makes the zeros on x's device and in x's dtype.)

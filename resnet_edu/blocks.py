"""The two residual blocks of ResNet and the shortcuts that join their input to their output.

Names follow torchvision's ``models/resnet.py`` (conv1, bn1, ..., downsample) so that weights load
across and readers can cross-reference. A block decides its own shortcut:

* the **Identity Block**: input and output have the same shape, the shortcut is ``x`` itself and
  ``downsample`` is None;
* the **Conv Block**: the stride or the channel count changes, so ``x`` is projected by a 1x1
  convolution with the block's stride followed by BN (``downsample``) before the addition.

The paper (He et al., 2015, section 4.1) names three ways to build the shortcut, selectable here:
"A" zero-pads the extra channels (no parameters), "B" projects only where the shape changes
(torchvision's choice and the default), "C" projects in every block.
"""

import torch.nn.functional as F
from torch import nn

SHORTCUT_OPTIONS = ("A", "B", "C")


def conv3x3(in_channels, out_channels, stride=1):
    """3x3 convolution with padding 1; no bias, because BN follows and has its own."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels, out_channels, stride=1):
    """1x1 convolution; no bias, because BN follows."""
    return nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A: keep every ``stride``-th pixel and append zero channels. No parameters."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x):
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # pad dim 1 (channels) at the end

    def extra_repr(self):
        return f"stride={self.stride}, extra_channels={self.extra_channels}"


def make_shortcut(in_channels, out_channels, stride, option="B"):
    """The ``downsample`` of a block: None (identity) or a module applied to ``x`` before the add."""
    if option not in SHORTCUT_OPTIONS:
        raise ValueError(
            f"shortcut must be one of {SHORTCUT_OPTIONS} (the paper's options A, B, C); "
            f"got {option!r}. Use 'B', torchvision's choice, unless you are comparing options."
        )
    if out_channels < in_channels:
        raise ValueError(
            f"a residual block cannot shrink its channels: in_channels={in_channels}, "
            f"out_channels={out_channels}. ResNet stages only keep or widen the channel count."
        )
    shape_changes = stride != 1 or in_channels != out_channels
    if option == "C" or (option == "B" and shape_changes):
        return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    if option == "A" and shape_changes:
        return ZeroPadShortcut(in_channels, out_channels, stride)
    return None


class BasicBlock(nn.Module):
    """ResNet18/34 block: 3x3 conv (with the stride) - BN - ReLU - 3x3 conv - BN, add shortcut, ReLU."""

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, shortcut="B"):
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)

        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))  # no ReLU here: the branch may add or subtract
        out += identity  # safe in place: bn2's output is not needed by backward
        return self.relu(out)

    def zero_init_residual(self):
        """Make the block start as the identity: its last BN scales the residual branch to zero."""
        nn.init.zeros_(self.bn2.weight)


class Bottleneck(nn.Module):
    """ResNet50/101/152 block: 1x1 reduce to ``width``, 3x3 at ``width``, 1x1 expand to 4 * width.

    The stride sits on the 3x3 convolution ("ResNet v1.5", as in torchvision); the authors' original
    code put it on the first 1x1 (the paper's text does not say), which skips three quarters of the
    pixels before looking at them.
    """

    expansion = 4

    def __init__(self, in_channels, width, stride=1, shortcut="B"):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv1x1(in_channels, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)  # stride on the 3x3: v1.5
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = make_shortcut(in_channels, out_channels, stride, shortcut)
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)

        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += identity
        return self.relu(out)

    def zero_init_residual(self):
        nn.init.zeros_(self.bn3.weight)


class PlainBlock(nn.Module):
    """A BasicBlock without its shortcut: the two 3x3 layers of the paper's plain networks (section
    4.2), conv (with the stride) - BN - ReLU - conv - BN - ReLU. The same layers under the same names
    as BasicBlock, so a plain network and its residual twin with option A shortcuts have the same
    parameters and differ only in the additions.
    """

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, shortcut=None):
        if shortcut is not None:
            raise ValueError(f"a plain block has no shortcut; got shortcut={shortcut!r}. Use BasicBlock for a "
                             f"residual block, or leave shortcut out.")
        super().__init__()
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)))  # nothing is added: x is gone after this block


class PreActBasicBlock(nn.Module):
    """The full pre-activation block of He et al. 2016, "Identity Mappings in Deep Residual Networks"
    (arXiv:1603.05027, Fig. 4(e)): BN - ReLU - 3x3 conv (with the stride) - BN - ReLU - 3x3 conv,
    then + shortcut, with nothing after the addition. In a stack of them every block's input reaches
    every later block as an added term, unchanged (x_L = x_l + the branches between), and the
    gradient at a block's output reaches every earlier block the same way.

    Where the shape changes, both paths start after the first BN-ReLU, as in the authors' code
    (github.com/KaimingHe/resnet-1k-layers): the projection (options B and C) is a 1x1 convolution
    alone, without the BN that the post-activation block's projection has. A network of these blocks
    ends with one more BN-ReLU after its last block, before the pooling.
    """

    expansion = 1

    def __init__(self, in_channels, out_channels, stride=1, shortcut="B"):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        projection = make_shortcut(in_channels, out_channels, stride, shortcut)
        # make_shortcut projects with conv1x1 + BN; this block keeps the convolution alone
        self.downsample = projection[0] if isinstance(projection, nn.Sequential) else projection
        self.stride = stride

    def forward(self, x):
        out = self.relu(self.bn1(x))  # pre-activation: x itself stays as it is for the shortcut
        identity = x if self.downsample is None else self.downsample(out)
        out = self.conv2(self.relu(self.bn2(self.conv1(out))))
        return out + identity  # nothing after the addition

    def zero_init_residual(self):
        """Make the block start as the identity: a zero last convolution makes F(x) = 0."""
        nn.init.zeros_(self.conv2.weight)


def block_kind(block):
    """'Identity Block', 'Conv Block' (projection shortcut), 'Pad Block' (option A shortcut), or
    'Plain Block' (no shortcut at all)."""
    if isinstance(block, PlainBlock):
        return "Plain Block"
    if block.downsample is None:
        return "Identity Block"
    if isinstance(block.downsample, ZeroPadShortcut):
        return "Pad Block"
    return "Conv Block"


BLOCK_TYPES = (BasicBlock, Bottleneck, PlainBlock, PreActBasicBlock)


def named_blocks(model):
    """Every block of ``model`` (residual, plain or pre-activation), in order, as (name, block) pairs,
    e.g. ("layer1.0", BasicBlock(...)): the one way the package walks a network's blocks."""
    return [(name, module) for name, module in model.named_modules() if isinstance(module, BLOCK_TYPES)]


__all__ = [
    "SHORTCUT_OPTIONS",
    "BLOCK_TYPES",
    "named_blocks",
    "conv3x3",
    "conv1x1",
    "ZeroPadShortcut",
    "make_shortcut",
    "BasicBlock",
    "Bottleneck",
    "PlainBlock",
    "PreActBasicBlock",
    "block_kind",
]

"""The paper's shortcut options A, B and C, and the rule that decides Identity versus Conv Block."""

import pytest
import torch

from resnet_edu.blocks import BasicBlock, Bottleneck, ZeroPadShortcut, block_kind, make_shortcut
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import build


def test_identity_block_when_shape_is_unchanged():
    block = BasicBlock(64, 64)
    assert block.downsample is None and block_kind(block) == "Identity Block"


@pytest.mark.parametrize("in_channels,out_channels,stride", [(64, 128, 2), (64, 128, 1), (64, 64, 2)])
def test_conv_block_when_stride_or_channels_change(in_channels, out_channels, stride):
    block = BasicBlock(in_channels, out_channels, stride)
    conv, bn = block.downsample
    assert (conv.kernel_size, conv.stride, conv.bias) == ((1, 1), (stride, stride), None)
    assert bn.num_features == out_channels


def test_stride_2_conv_block_halves_resolution_and_doubles_channels():
    block = BasicBlock(64, 128, stride=2).eval()
    assert block(torch.randn(2, 64, 56, 56)).shape == (2, 128, 28, 28)


def test_option_a_pads_with_zeros_and_has_no_parameters():
    shortcut = make_shortcut(64, 128, 2, "A")
    assert isinstance(shortcut, ZeroPadShortcut) and count_parameters(shortcut) == 0
    x = torch.randn(2, 64, 7, 7)
    y = shortcut(x)
    assert y.shape == (2, 128, 4, 4)
    assert torch.equal(y[:, :64], x[:, :, ::2, ::2])
    assert torch.all(y[:, 64:] == 0)


def test_option_a_matches_the_strided_branch_on_odd_sizes():
    block = BasicBlock(64, 128, stride=2, shortcut="A").eval()
    assert block(torch.randn(1, 64, 15, 15)).shape == (1, 128, 8, 8)


def test_option_c_projects_every_block():
    block = BasicBlock(64, 64, shortcut="C")
    assert block_kind(block) == "Conv Block"


def test_parameter_counts_order_a_b_c():
    counts = {opt: count_parameters(build("resnet18", shortcut=opt)) for opt in "ABC"}
    # B adds three projections (layer2..4): 1x1 convs 64->128, 128->256, 256->512 plus their BN.
    projections = (64 * 128 + 2 * 128) + (128 * 256 + 2 * 256) + (256 * 512 + 2 * 512)
    assert counts["B"] - counts["A"] == projections
    assert counts["A"] < counts["B"] < counts["C"]


@pytest.mark.parametrize("option", "ABC")
def test_every_option_runs_forward_and_backward(option):
    model = build("resnet50", shortcut=option, num_classes=10)
    out = model(torch.randn(2, 3, 64, 64))
    out.sum().backward()
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters that forward never used: {missing}"


def test_bottleneck_widths_and_v15_stride():
    block = Bottleneck(256, 128, stride=2)
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)
    assert block.conv3.out_channels == 512
    assert block.eval()(torch.randn(1, 256, 56, 56)).shape == (1, 512, 28, 28)


def test_unknown_shortcut_option_is_rejected():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        BasicBlock(64, 64, shortcut="D")

"""The paper's CIFAR-10 networks (He et al., 2015, section 4.2) and their plain twins."""

import pytest
import torch
from torch import nn

from resnet_edu.blocks import BasicBlock, PlainBlock, ZeroPadShortcut, block_kind
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import CIFAR_BUILDERS, CIFAR_DEPTHS, CifarResNet, build, cifar_resnet
from resnet_edu.train import TrainConfig

# The paper's Table 6 gives each network's parameters in millions, rounded.
PAPER_PARAMETERS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}
# The exact counts, which a learner can check by hand: 6n convolutions 3x3, BN scale and shift, fc.
EXACT_PARAMETERS = {20: 269_722, 32: 464_154, 44: 658_586, 56: 853_018, 110: 1_727_962}


def by_hand(n):
    """Parameters of the 6n + 2 network, added up layer by layer."""
    stem = 3 * 16 * 9 + 2 * 16
    total, in_channels = stem, 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += in_channels * width * 9 + width * width * 9 + 4 * width  # two convs, two BNs
            in_channels = width
    return total + 64 * 10 + 10


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_parameter_counts_match_the_paper(depth):
    residual, plain = cifar_resnet(depth), cifar_resnet(depth, plain=True)
    assert count_parameters(residual) == count_parameters(plain) == EXACT_PARAMETERS[depth]
    assert count_parameters(residual) == by_hand((depth - 2) // 6)
    digits = 1 if depth == 110 else 2
    assert round(count_parameters(residual) / 1e6, digits) == PAPER_PARAMETERS_M[depth]


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_depth_counts_the_weighted_layers(depth):
    model = cifar_resnet(depth)
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == depth  # option A adds no convolution


@pytest.mark.parametrize("plain", [False, True])
def test_shapes_through_the_three_stages(plain):
    model = cifar_resnet(20, plain=plain).eval()
    x = torch.randn(2, 3, 32, 32)
    x = model.relu(model.bn1(model.conv1(x)))
    shapes = []
    for stage in (model.layer1, model.layer2, model.layer3):
        x = stage(x)
        shapes.append(tuple(x.shape))
    assert shapes == [(2, 16, 32, 32), (2, 32, 16, 16), (2, 64, 8, 8)]
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_residual_networks_use_option_a_where_the_shape_changes():
    model = cifar_resnet(56)
    kinds = [block_kind(block) for block in model.modules() if isinstance(block, BasicBlock)]
    assert kinds.count("Pad Block") == 2 and kinds.count("Identity Block") == 25
    assert isinstance(model.layer2[0].downsample, ZeroPadShortcut)
    assert isinstance(model.layer3[0].downsample, ZeroPadShortcut)


def test_the_plain_twin_has_no_shortcut_anywhere():
    model = cifar_resnet(56, plain=True)
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, PlainBlock))]
    assert len(blocks) == 27 and all(isinstance(b, PlainBlock) for b in blocks)
    assert not any(isinstance(m, ZeroPadShortcut) for m in model.modules())
    assert {block_kind(b) for b in blocks} == {"Plain Block"}


def test_twins_share_names_and_shapes_so_weights_copy_across():
    residual, plain = cifar_resnet(20), cifar_resnet(20, plain=True)
    assert [(k, v.shape) for k, v in residual.state_dict().items()] == [
        (k, v.shape) for k, v in plain.state_dict().items()]
    plain.load_state_dict(residual.state_dict(), strict=True)


def test_with_equal_weights_the_twins_differ_only_by_the_additions():
    torch.manual_seed(0)
    residual = cifar_resnet(20).eval()
    plain = cifar_resnet(20, plain=True).eval()
    plain.load_state_dict(residual.state_dict())
    x = torch.randn(2, 16, 8, 8)
    block, twin = residual.layer1[1], plain.layer1[1]
    branch = twin.bn2(twin.conv2(twin.relu(twin.bn1(twin.conv1(x)))))
    assert torch.allclose(twin(x), torch.relu(branch))
    assert torch.allclose(block(x), torch.relu(branch + x))
    assert not torch.allclose(block(x), twin(x))


def test_a_plain_block_refuses_a_shortcut():
    with pytest.raises(ValueError, match="a plain block has no shortcut"):
        PlainBlock(16, 32, 2, shortcut="A")


@pytest.mark.parametrize("depth", [0, 19, 21, "20"])
def test_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=r"6n \+ 2"):
        cifar_resnet(depth)


def test_build_knows_both_families_by_name():
    assert sorted(CIFAR_BUILDERS) == sorted([f"resnet{d}" for d in CIFAR_DEPTHS] + [f"plain{d}" for d in CIFAR_DEPTHS])
    assert isinstance(build("plain56"), CifarResNet)
    assert count_parameters(build("resnet110", num_classes=100)) == EXACT_PARAMETERS[110] + 64 * 90 + 90
    with pytest.raises(ValueError, match="stem='cifar'"):
        build("resnet20", stem="imagenet")
    with pytest.raises(ValueError, match="stem"):
        TrainConfig(model="resnet56", stem="imagenet")
    assert TrainConfig(model="plain20").model == "plain20"


def test_bad_inputs_are_named():
    model = cifar_resnet(20)
    with pytest.raises(ValueError, match="colour channels"):
        model(torch.randn(2, 32, 32, 3))
    with pytest.raises(ValueError, match="at least 4x4"):
        model.eval()(torch.randn(1, 3, 2, 2))


def test_zero_init_residual_makes_every_residual_block_the_identity_before_its_relu():
    model = cifar_resnet(20, zero_init_residual=True).eval()
    x = torch.relu(torch.randn(2, 16, 8, 8))
    assert torch.equal(model.layer1[0](x), x)  # relu(0 + x) with x >= 0

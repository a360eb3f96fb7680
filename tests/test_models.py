"""The package's ResNets against torchvision's: same parameters, keys, initialisation, outputs, gradients."""

import pytest
import torch
import torchvision

from resnet_edu.blocks import BasicBlock, Bottleneck, block_kind
from resnet_edu.measure import count_parameters
from resnet_edu.resnet import BUILDERS, build

DEPTHS = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]

# torchvision's model documentation, "num_params" of each architecture's weights.
TORCHVISION_PARAMETERS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}


def pair(name, seed=0, **kwargs):
    """(ours, torchvision's) built from the same seed."""
    torch.manual_seed(seed)
    ours = build(name, **kwargs)
    torch.manual_seed(seed)
    reference = getattr(torchvision.models, name)(**kwargs)
    return ours, reference


@pytest.mark.parametrize("name", DEPTHS)
def test_parameter_count_matches_torchvision(name):
    ours, reference = pair(name)
    assert count_parameters(ours) == count_parameters(reference) == TORCHVISION_PARAMETERS[name]


@pytest.mark.parametrize("name", DEPTHS)
def test_same_keys_in_same_order_with_same_shapes(name):
    ours, reference = pair(name)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == [
        (k, v.shape) for k, v in reference.state_dict().items()
    ]


@pytest.mark.parametrize("name", DEPTHS)
@pytest.mark.parametrize("zero_init_residual", [False, True])
def test_same_seed_gives_torchvision_initialisation(name, zero_init_residual):
    ours, reference = pair(name, zero_init_residual=zero_init_residual)
    theirs = reference.state_dict()
    for key, value in ours.state_dict().items():
        assert torch.equal(value, theirs[key]), key


def test_initialisation_is_kaiming_fan_out_and_bn_ones_zeros():
    model = build("resnet18")
    conv = model.layer3[0].conv1  # fan_out = 256 * 3 * 3
    expected_std = (2 / (256 * 9)) ** 0.5
    assert conv.weight.std().item() == pytest.approx(expected_std, rel=0.02)
    assert torch.all(model.layer3[0].bn1.weight == 1) and torch.all(model.layer3[0].bn1.bias == 0)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_zeroes_the_last_bn_of_every_block(name):
    model = build(name, zero_init_residual=True)
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert blocks
    for block in blocks:
        last_bn = block.bn2 if isinstance(block, BasicBlock) else block.bn3
        assert torch.all(last_bn.weight == 0)
        assert torch.all(block.bn1.weight == 1)


@pytest.mark.parametrize("name", DEPTHS)
def test_torchvision_weights_load_strictly_both_ways(name):
    ours, reference = pair(name, seed=1)
    torch.manual_seed(7)
    for p in reference.parameters():  # weights unlike ours, so that a load that did nothing would show
        torch.nn.init.normal_(p)
    ours.load_state_dict(reference.state_dict(), strict=True)
    for (key, a), b in zip(ours.state_dict().items(), reference.state_dict().values()):
        assert torch.equal(a, b), key
    torch.manual_seed(8)
    for p in ours.parameters():
        torch.nn.init.normal_(p)
    reference.load_state_dict(ours.state_dict(), strict=True)
    for (key, a), b in zip(reference.state_dict().items(), ours.state_dict().values()):
        assert torch.equal(a, b), key


@pytest.mark.parametrize("name", DEPTHS)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_same_outputs_and_gradients(name, train):
    ours, reference = pair(name, seed=2, num_classes=10)
    ours.load_state_dict(reference.state_dict())
    ours.train(train), reference.train(train)
    torch.manual_seed(3)
    x = torch.randn(2, 3, 64, 64)
    target = torch.tensor([1, 7])
    outputs = []
    for model in (ours, reference):
        out = model(x)
        torch.nn.functional.cross_entropy(out, target).backward()
        outputs.append(out)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=1e-6)
    grads = dict(reference.named_parameters())
    for key, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, grads[key].grad, rtol=1e-5, atol=1e-7, msg=key)
    if train:  # BN running statistics moved the same way
        theirs = reference.state_dict()
        for key, value in ours.state_dict().items():
            torch.testing.assert_close(value, theirs[key], rtol=0, atol=1e-6, msg=key)


def test_cifar_stem():
    model = build("resnet18", num_classes=10, stem="cifar")
    assert count_parameters(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)
    model.eval()
    features = model.forward_features(torch.randn(1, 3, 32, 32))
    assert features.shape == (1, 512, 4, 4)  # 32x32 keeps its resolution until layer2
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_stem_differs_from_torchvision_only_in_conv1():
    ours = build("resnet18", num_classes=10, stem="cifar")
    reference = torchvision.models.resnet18(num_classes=10)
    differing = [k for k, v in ours.state_dict().items() if reference.state_dict()[k].shape != v.shape]
    assert differing == ["conv1.weight"]


@pytest.mark.parametrize("size", [32, 64, 128, 224, 97])
def test_global_pool_adapts_to_any_input_size(size):
    model = build("resnet18").eval()
    assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)


def test_resnet18_stages_open_as_the_course_says():
    model = build("resnet18")
    kinds = [[block_kind(b) for b in getattr(model, f"layer{i}")] for i in range(1, 5)]
    assert kinds[0] == ["Identity Block", "Identity Block"]
    for stage in kinds[1:]:
        assert stage == ["Conv Block", "Identity Block"]


def test_resnet50_first_stage_opens_with_a_conv_block_at_stride_1():
    block = build("resnet50").layer1[0]
    assert block_kind(block) == "Conv Block"
    assert block.downsample[0].stride == (1, 1)
    assert (block.downsample[0].in_channels, block.downsample[0].out_channels) == (64, 256)


def test_builders_take_the_same_keywords():
    for builder in BUILDERS.values():
        model = builder(num_classes=3, stem="cifar", shortcut="C", zero_init_residual=True)
        assert model.fc.out_features == 3

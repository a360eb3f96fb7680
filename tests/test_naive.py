"""The blog specimen: each mistake is a flag, and with all flags off it is torchvision's resnet18."""

import pytest
import torch
import torchvision

from resnet_edu.measure import count_parameters
from resnet_edu.naive import naive_resnet18


def test_all_mistakes_on_has_the_blogs_parameter_count():
    assert count_parameters(naive_resnet18()) == 11_693_352


def test_conv_bias_alone_adds_3840_parameters():
    # 16 block 3x3 convolutions with 64, 128, 256, 512 outputs, four of each: 4 * 960 biases.
    with_bias = naive_resnet18(relu_before_add=False, conv_bias=True, fixed_avgpool=False)
    assert count_parameters(with_bias) - 11_689_512 == 3_840


def test_fixed_avgpool_fails_on_32x32_and_adaptive_does_not():
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(RuntimeError):
        naive_resnet18()(x)
    assert naive_resnet18(fixed_avgpool=False)(x).shape == (2, 1000)


def test_all_flags_off_is_torchvision_resnet18():
    model = naive_resnet18(relu_before_add=False, conv_bias=False, fixed_avgpool=False)
    reference = torchvision.models.resnet18()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    model.eval(), reference.eval()
    torch.testing.assert_close(model(x), reference(x), rtol=0, atol=1e-6)


def test_conv_bias_breaks_strict_loading():
    model = naive_resnet18(relu_before_add=False, conv_bias=True, fixed_avgpool=False)
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(torchvision.models.resnet18().state_dict(), strict=True)


def test_relu_before_add_changes_outputs_and_makes_branches_non_negative():
    reference = torchvision.models.resnet18().eval()
    model = naive_resnet18(relu_before_add=True, conv_bias=False, fixed_avgpool=False).eval()
    model.load_state_dict(reference.state_dict(), strict=True)  # the flag adds no parameters
    x = torch.randn(2, 3, 64, 64)
    assert not torch.allclose(model(x), reference(x))
    block = model.layer1[0]
    branch = block.relu(block.bn2(block.conv2(block.relu(block.bn1(block.conv1(torch.randn(1, 64, 8, 8)))))))
    assert branch.min() >= 0


def test_stride_only_shortcut_is_right_for_resnet18_by_coincidence():
    model = naive_resnet18()
    stages = (model.layer1, model.layer2, model.layer3, model.layer4)
    has_projection = [b.downsample is not None for s in stages for b in s]
    assert has_projection == [False, False, True, False, True, False, True, False]

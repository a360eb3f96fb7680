"""resnet_edu.inside: gradient norms and feature maps by hooks, test-time block deletion, Grad-CAM."""

import functools

import pytest
import torch
from torch import nn

from resnet_edu.blocks import BasicBlock, ZeroPadShortcut
from resnet_edu.inside import (blocks_of, conv_layers, deleted_blocks, feature_maps, grad_cam, gradient_norms,
                               what_remains)
from resnet_edu.resnet import cifar_resnet, resnet18


def state_of(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


def assert_left_as_found(model, before, training):
    assert model.training == training
    assert all(torch.equal(before[name], tensor) for name, tensor in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())


# ----------------------------------------------------------------------------- gradient norms


def test_gradient_norms_equal_those_of_retained_gradients():
    torch.manual_seed(0)
    model = cifar_resnet(20)
    images, labels = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    before = state_of(model)
    norms = gradient_norms(model, images, labels)
    assert list(norms) == conv_layers(model) and len(norms) == 19  # every convolution, in order
    assert_left_as_found(model, before, training=True)

    outputs = {}

    def keep(name, module, inputs, output):
        output.retain_grad()
        outputs[name] = output

    for name in norms:  # the same quantity the long way: retain_grad and backward
        model.get_submodule(name).register_forward_hook(functools.partial(keep, name))
    nn.functional.cross_entropy(model(images), labels).backward()
    for name, norm in norms.items():
        assert norm == pytest.approx(outputs[name].grad.norm().item(), rel=1e-5)


def test_gradient_norms_restore_eval_mode_and_batchnorm_statistics():
    model = cifar_resnet(20).eval()
    before = state_of(model)
    gradient_norms(model, torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), names=["layer3"])
    assert_left_as_found(model, before, training=False)


# ----------------------------------------------------------------------------- feature maps


def test_feature_maps_of_the_quick_model_at_32x32():
    model = resnet18(num_classes=10, stem="imagenet")
    maps = feature_maps(model, torch.randn(2, 3, 32, 32), ["maxpool", "layer1", "layer2", "layer3", "layer4"])
    shapes = {name: tuple(m.shape) for name, m in maps.items()}
    assert shapes == {"maxpool": (2, 64, 8, 8), "layer1": (2, 64, 8, 8), "layer2": (2, 128, 4, 4),
                      "layer3": (2, 256, 2, 2), "layer4": (2, 512, 1, 1)}
    assert model.training  # eval only inside


def test_feature_maps_are_what_the_layers_compute():
    torch.manual_seed(0)
    model = cifar_resnet(20).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = model.layer2(model.layer1(model.relu(model.bn1(model.conv1(x)))))
    assert torch.allclose(feature_maps(model, x, ["layer2"])["layer2"], expected)


def test_an_unknown_name_says_where_names_are_found():
    with pytest.raises(ValueError, match="no module named 'layer5'.*layer1"):
        feature_maps(cifar_resnet(20), torch.randn(1, 3, 32, 32), ["layer5"])


# ----------------------------------------------------------------------------- deleting blocks


def test_deleting_a_block_leaves_a_network_that_runs_and_computes_something_else():
    torch.manual_seed(0)
    model = cifar_resnet(20).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        before = model(x)
        with deleted_blocks(model, ["layer1.1"]):
            assert isinstance(model.layer1[1], nn.Identity)
            during = model(x)
        after = model(x)
    assert during.shape == before.shape and not torch.allclose(during, before)
    assert torch.equal(after, before)  # the block is back


def test_deleting_blocks_that_start_as_the_identity_changes_nothing():
    # zero_init_residual: every branch outputs 0, so each block is relu(x + 0) = x on the (non-negative)
    # output of the block before it; deleting all of them must give bit-identical logits
    torch.manual_seed(0)
    model = cifar_resnet(20, zero_init_residual=True).eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        with deleted_blocks(model, blocks_of(model)):
            deleted = model(x)
        assert torch.equal(deleted, model(x))


def test_what_remains_of_each_kind_of_block():
    residual, plain = cifar_resnet(20), cifar_resnet(20, plain=True)
    assert what_remains(residual.layer2[0]) is residual.layer2[0].downsample
    assert isinstance(what_remains(residual.layer2[1]), nn.Identity)
    assert isinstance(what_remains(plain.layer1[0]), nn.Identity)
    remains = what_remains(plain.layer3[0])
    assert isinstance(remains, ZeroPadShortcut) and remains.stride == 2 and remains.extra_channels == 32
    with torch.no_grad(), deleted_blocks(plain.eval(), ["layer2.0", "layer3.0"]):
        assert plain(torch.randn(1, 3, 32, 32)).shape == (1, 10)
    bottleneck = resnet18().layer2[0]  # a projection shortcut stays what it was
    assert what_remains(bottleneck) is bottleneck.downsample


def test_blocks_of_lists_every_block_and_deletion_refuses_others():
    model = cifar_resnet(56)
    assert len(blocks_of(model)) == 27 and blocks_of(model)[:2] == ["layer1.0", "layer1.1"]
    with pytest.raises(ValueError, match="not blocks of this model"):
        with deleted_blocks(model, ["layer1.0.conv1"]):
            pass
    with pytest.raises(ValueError, match=r"deleted once.*'layer1.0'"):
        with deleted_blocks(model, ["layer1.0", "layer1.0"]):
            pass
    assert isinstance(model.layer1[0], BasicBlock)  # nothing was replaced


# ----------------------------------------------------------------------------- Grad-CAM


class BrightDark(nn.Module):
    """Class 0 is evidence of bright pixels, class 1 of dark ones: the evidence is where they are."""

    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 2, kernel_size=1, bias=False)
        with torch.no_grad():
            self.features.weight.copy_(torch.tensor([[1.0, 1, 1], [-1, -1, -1]]).view(2, 3, 1, 1))
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(2))

    def forward(self, x):
        return self.fc(self.relu(self.features(x)).mean(dim=(2, 3)))


def quadrant_of_peak(heat_map):
    row, col = divmod(int(heat_map.argmax()), heat_map.shape[1])
    half = heat_map.shape[0] // 2
    return ("top" if row < half else "bottom") + "-" + ("left" if col < half else "right")


def test_grad_cam_points_to_the_corner_that_holds_the_evidence():
    image = torch.zeros(1, 3, 32, 32)
    image[:, :, 2:8, 24:30] = 1.0  # bright patch: top right
    image[:, :, 22:30, 3:9] = -1.0  # dark patch: bottom left
    model = BrightDark()
    bright, classes = grad_cam(model, image, "relu")
    assert classes.tolist() == [1]  # the dark patch is larger, so "dark" wins
    assert quadrant_of_peak(bright[0]) == "bottom-left"
    maps, classes = grad_cam(model, image, "relu", classes=0)  # evidence for the other class
    assert classes.tolist() == [0]
    assert quadrant_of_peak(maps[0]) == "top-right"
    assert maps[0, 25, 5] == 0  # no evidence for "bright" where the image is dark


def test_grad_cam_on_a_resnet_is_a_map_per_image_scaled_to_one():
    torch.manual_seed(0)
    model = cifar_resnet(20)
    before = state_of(model)
    images = torch.randn(3, 3, 32, 32)
    maps, classes = grad_cam(model, images, "layer3")
    assert maps.shape == (3, 32, 32) and maps.min() >= 0
    assert torch.allclose(maps.flatten(1).max(1).values, torch.ones(3))
    with torch.no_grad():
        assert torch.equal(classes, model.eval()(images).argmax(1))
    model.train()
    assert_left_as_found(model, before, training=True)
    per_class, _ = grad_cam(model, images, "layer3", classes=[0, 1, 2])
    assert per_class.shape == (3, 32, 32)


def test_grad_cam_says_how_many_classes_it_expects():
    model = cifar_resnet(20)
    before = state_of(model)
    with pytest.raises(ValueError,
                       match=r"one class per image \(3 of them\) or a single class for all; got 2 classes\."):
        grad_cam(model, torch.randn(3, 3, 32, 32), "layer3", classes=[0, 1])
    assert_left_as_found(model, before, training=True)

"""Bad input and bad arguments fail early with a ValueError that says what was expected."""

import pytest
import torch

from resnet_edu.blocks import BasicBlock
from resnet_edu.resnet import ResNet, build


@pytest.fixture(scope="module")
def model():
    return build("resnet18").eval()


@pytest.mark.parametrize("shape,message", [
    ((3, 224, 224), "4-D batch.*unsqueeze\\(0\\)"),
    ((224, 224), "4-D batch"),
    ((1, 1, 224, 224), "expected 3 colour channels.*got shape \\(1, 1, 224, 224\\)"),
    ((1, 224, 224, 3), "permute\\(0, 3, 1, 2\\)"),
    ((1, 3, 16, 16), "at least 32x32; got 16x16"),
])
def test_bad_input_shapes(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model(torch.zeros(shape))


def test_integer_images(model):
    with pytest.raises(ValueError, match="floating-point.*torch.uint8"):
        model(torch.zeros(1, 3, 224, 224, dtype=torch.uint8))


def test_not_a_tensor(model):
    with pytest.raises(ValueError, match="got list"):
        model([[0.0]])


def test_cifar_stem_accepts_small_images_down_to_8x8():
    model = build("resnet18", stem="cifar").eval()
    assert model(torch.zeros(1, 3, 8, 8)).shape == (1, 1000)
    with pytest.raises(ValueError, match="at least 8x8; got 4x4"):
        model(torch.zeros(1, 3, 4, 4))


def test_single_pixel_batchnorm_in_training_mode():
    model = build("resnet18").train()
    with pytest.raises(ValueError, match="batch of at least 2, or call model.eval"):
        model(torch.zeros(1, 3, 32, 32))
    model(torch.zeros(1, 3, 64, 64))  # 2x2 pixels after the last stage is enough


@pytest.mark.parametrize("kwargs,message", [
    (dict(stem="tiny"), "stem must be one of"),
    (dict(shortcut="D"), "shortcut must be one of"),
    (dict(num_classes=0), "num_classes must be an integer of at least 1; got 0"),
    (dict(num_classes=2.5), "num_classes must be an integer"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build("resnet18", **kwargs)


@pytest.mark.parametrize("layers", [[2, 2, 2], [2, 2, 0, 2], [2, 2, 2, 2.0], "2222", [2, -1, 2, 2]])
def test_layers_must_be_four_positive_integers(layers):
    with pytest.raises(ValueError, match="four positive integers.*got"):
        ResNet(BasicBlock, layers)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model 'resnet19'"):
        build("resnet19")


# ----------------------------------------------------------------------------- a learner's first tries:
# each message says what was expected, what arrived, and what to do next

@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_float64_and_float16_images_say_how_to_convert(model, dtype):
    """Measured before: PyTorch's `expected scalar type Double but found Float`, from deep inside."""
    with pytest.raises(ValueError) as error:
        model(torch.zeros(1, 3, 64, 64, dtype=dtype))
    message = str(error.value)
    assert f"expected torch.float32 images, the dtype of the model's weights; got {dtype}" in message
    assert "x.to(torch.float32)" in message and f"model.to({dtype})" in message


def test_a_double_model_takes_double_images_and_autocast_takes_float32():
    double = build("resnet18").double().eval()
    assert double(torch.zeros(1, 3, 32, 32, dtype=torch.float64)).dtype == torch.float64
    model = build("resnet18").eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.zeros(1, 3, 32, 32)).dtype == torch.bfloat16


def test_grayscale_images_say_how_to_make_three_channels(model):
    with pytest.raises(ValueError, match=r"expected 3 colour channels.*got shape \(1, 1, 64, 64\).*"
                                         r"x\.expand\(-1, 3, -1, -1\)"):
        model(torch.zeros(1, 1, 64, 64))


def test_a_numpy_array_says_how_to_make_a_tensor(model):
    """Measured before: `got ndarray`, with no hint of torch.from_numpy."""
    import numpy as np

    with pytest.raises(ValueError, match=r"expected a torch.Tensor.*got ndarray\. .*torch\.from_numpy\(x\)"):
        model(np.zeros((1, 64, 64, 3), dtype=np.uint8))


def test_a_tiny_image_with_the_cifar_stem_is_told_to_upsample_not_to_use_the_cifar_stem():
    """Measured before: a 1x1 image with the CIFAR stem was told to "use stem='cifar'"."""
    cifar = build("resnet18", stem="cifar").eval()
    with pytest.raises(ValueError) as error:
        cifar(torch.zeros(1, 3, 1, 1))
    message = str(error.value)
    assert "at least 8x8; got 1x1" in message and "interpolate(x, size=32)" in message
    assert "use stem='cifar'" not in message

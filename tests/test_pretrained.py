"""resnet18(weights=...) and resnet18(pretrained=True), torchvision's arguments: torchvision's published
weights load strictly into the course's own model. No internet here: the download is stood in for by
a state dict this test makes (from torchvision's own model), so the real loading code runs."""

import pytest
import torch
import torchvision

from resnet_edu import resnet as resnet_module
from resnet_edu.resnet import WeightsUnavailableError, resnet18, resnet50

ResNet18_Weights = torchvision.models.ResNet18_Weights


@pytest.fixture
def published(monkeypatch):
    """Stand in for torchvision's download: the state dict of a torchvision ResNet18 with random
    weights, handed out where torchvision would fetch the file; records the URLs asked for."""
    torch.manual_seed(7)
    state = torchvision.models.resnet18().state_dict()
    asked = []

    def fetch(url, *args, **kwargs):
        asked.append(url)
        return state

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", fetch)
    return state, asked


@pytest.mark.parametrize("weights", [ResNet18_Weights.IMAGENET1K_V1, "IMAGENET1K_V1", "DEFAULT",
                                     "ResNet18_Weights.IMAGENET1K_V1"])
def test_torchvisions_weights_load_into_the_courses_model(published, weights):
    state, asked = published
    model = resnet18(weights=weights).eval()
    assert asked == [ResNet18_Weights.IMAGENET1K_V1.url]
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, state[name]), name
    reference = torchvision.models.resnet18()
    reference.load_state_dict(state)
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(images), reference.eval()(images), atol=1e-5)


def test_pretrained_true_means_the_default_weights_with_a_note(published):
    with pytest.warns(UserWarning, match=r"pretrained=True is torchvision's older argument; loading "
                                         r"weights=ResNet18_Weights.IMAGENET1K_V1"):
        model = resnet18(pretrained=True)
    assert torch.equal(model.fc.weight, published[0]["fc.weight"])
    assert resnet18(pretrained=False).fc.weight.shape == (1000, 512) and len(published[1]) == 1


@pytest.mark.parametrize("kwargs, message", [
    (dict(weights="IMAGENET1K_V3"), r"weights must be one of torchvision's ResNet18_Weights.*'DEFAULT', "
                                    r"'IMAGENET1K_V1'.*got 'IMAGENET1K_V3'"),
    (dict(weights=torchvision.models.ResNet50_Weights.DEFAULT), "weights must be one of torchvision's ResNet18"),
    (dict(weights="DEFAULT", pretrained=True), "give weights= or pretrained=, not both"),
    (dict(weights="DEFAULT", num_classes=10), r"for the 'imagenet' stem and 1000 classes.*model.fc = nn.Linear"),
    (dict(weights="DEFAULT", stem="cifar"), "for the 'imagenet' stem"),
])
def test_a_wrong_weights_argument_says_what_is_accepted(published, kwargs, message):
    with pytest.raises(ValueError, match=message):
        resnet18(**kwargs)
    assert published[1] == []  # refused before any download


def test_offline_the_error_says_what_was_tried_and_what_to_do(monkeypatch):
    def no_internet(url, *args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_internet)
    with pytest.raises(WeightsUnavailableError) as error:
        resnet50(weights="DEFAULT")
    message = str(error.value)
    assert "ResNet50_Weights.IMAGENET1K_V2" in message and "https://download.pytorch.org/models/" in message
    assert "Temporary failure in name resolution" in message
    assert "connect to the internet" in message and "weights=None" in message


def test_weights_that_do_not_fit_are_named_key_by_key(published):
    state, _ = published
    del state["fc.bias"]
    state["layer1.0.conv1.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"(?s)keys only in the model \(1\): \['fc.bias'\].*"
                                         r"layer1.0.conv1.weight: \(1,\) vs \(64, 64, 3, 3\)"):
        resnet_module.resnet18(weights="DEFAULT")


def test_the_cifar_family_says_torchvision_has_no_weights_for_it():
    from resnet_edu.resnet import build, resnet20

    with pytest.raises(ValueError, match=r"torchvision publishes no weights for the paper's CIFAR-10 networks.*"
                                         r"resnet_edu.trained.load\(name\)"):
        resnet20(weights="DEFAULT")
    with pytest.raises(ValueError, match="no weights for the paper's CIFAR-10 networks"):
        build("plain20", pretrained=True)
    assert build("resnet20", weights=None).fc.out_features == 10

"""The stored networks of resnet_edu.trained: their weights give the test accuracy their records
state, and every record says where, when and how it was trained."""

import pytest
import torch

from resnet_edu import trained
from resnet_edu.dataset import DataNotFoundError, data_label, load_cifar10
from resnet_edu.loaders import DeviceLoader
from resnet_edu.train import evaluate

STORED = trained.available()
PROVENANCE = {"data", "train_images", "held_out_images", "split_seed", "hardware", "precision", "torch",
              "python", "commit", "seed", "recipe", "train_seconds", "finished"}


@pytest.fixture(scope="module")
def test_set():
    try:
        data = load_cifar10(download=False, verbose=False)
    except DataNotFoundError as error:
        pytest.skip(f"CIFAR-10 is not on this machine ({str(error).splitlines()[0]})")
    return data


def test_the_four_networks_of_figure_6_are_stored():
    assert STORED == list(trained.NETWORKS)


@pytest.mark.parametrize("name", STORED)
def test_a_record_holds_every_epoch_and_its_provenance(name):
    record = trained.record(name)
    history, provenance = record["history"], record["provenance"]
    assert PROVENANCE <= set(provenance), f"missing: {PROVENANCE - set(provenance)}"
    assert provenance["recipe"]["model"] == name and not provenance.get("smoke")
    epochs = provenance["recipe"]["epochs"]
    assert history["epoch"] == list(range(1, epochs + 1))
    for series in ("train_error", "held_out_error", "seconds"):
        assert len(history[series]) == epochs
    assert all(0 <= e <= 1 for e in history["train_error"] + history["held_out_error"])
    assert provenance["train_images"] + provenance["held_out_images"] == 50_000
    assert record["test"]["images"] == 10_000
    assert (trained.FOLDER / f"{name}.pt").stat().st_size < 3_000_000


@pytest.mark.slow  # the 10,000 test images through each stored network: 80 s on a 2-core CPU
@pytest.mark.parametrize("name", STORED)
def test_stored_weights_give_the_stored_test_accuracy(name, test_set):
    record = trained.record(name)
    if data_label(test_set.source) != record["provenance"]["data"]:
        pytest.skip(f"the record was measured on {record['provenance']['data']}; this machine has "
                    f"{data_label(test_set.source)}")
    loader = DeviceLoader(test_set.test_images, test_set.test_labels, 500, train=False, device="cpu")
    _, accuracy = evaluate(trained.load(name), loader, "fp32")
    assert abs(float(accuracy) - record["test"]["accuracy"]) <= 0.001  # 0.1 point: 10 of 10,000 images


def test_an_unknown_or_missing_network_says_what_exists():
    with pytest.raises(ValueError, match="resnet56"):
        trained.load("resnet50")


def test_loaded_weights_are_float32_in_eval_mode():
    model = trained.load(STORED[0])
    assert not model.training
    assert all(p.dtype == torch.float32 for p in model.parameters())

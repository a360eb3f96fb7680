"""resnet_edu.dataset (finding, decoding and caching CIFAR-10, and its errors) and resnet_edu.loaders."""

import tarfile

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from _tiny_cifar import TINY_CLASSES, write_tiny_folder, write_tiny_tarball

from resnet_edu import dataset as data_module
from resnet_edu.dataset import (CIFAR10, CIFAR10_MEAN, CIFAR10_STD, CLASSES, CorruptDataError, DataNotFoundError,
                                channel_stats, load_cifar10)
from resnet_edu.loaders import DeviceLoader, make_dataloader, normalize, random_crop, random_flip, shard_indices

needs_cifar = pytest.mark.skipif(data_module.find_cifar10() is None,
                                 reason="CIFAR-10 is not on this machine (set RESNET_EDU_DATA to a copy)")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No environment variable, an empty cache: only what the test provides."""
    monkeypatch.delenv(data_module.ENV_DATA, raising=False)
    monkeypatch.setenv(data_module.ENV_CACHE, str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.slow
@needs_cifar
def test_offline_cifar10_has_the_published_counts_and_statistics():
    cifar = load_cifar10(verbose=False)
    assert cifar.train_images.shape == (50_000, 3, 32, 32) and cifar.train_images.dtype == torch.uint8
    assert cifar.test_images.shape == (10_000, 3, 32, 32)
    assert cifar.train_labels.bincount().tolist() == [5000] * 10
    assert cifar.test_labels.bincount().tolist() == [1000] * 10
    assert cifar.classes == CLASSES
    mean, std = channel_stats(cifar.train_images)
    assert torch.allclose(torch.tensor(mean), torch.tensor(CIFAR10_MEAN), atol=1e-4)
    assert torch.allclose(torch.tensor(std), torch.tensor(CIFAR10_STD), atol=1e-4)


def test_tarball_and_directory_give_the_same_tensors(isolated):
    from_tar = load_cifar10(write_tiny_tarball(isolated), verbose=False)
    from_dir = load_cifar10(write_tiny_folder(isolated / "d"), verbose=False)
    assert from_tar.classes == from_dir.classes == TINY_CLASSES
    assert from_tar.train_images.shape == (24, 3, 32, 32) and from_tar.test_images.shape == (12, 3, 32, 32)
    assert from_tar.train_labels.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    assert torch.equal(from_tar.train_images, from_dir.train_images)
    # the colour that encodes each class survives JPEG: channel `label` is the brightest
    means = from_tar.train_images.double().mean(dim=(2, 3))
    assert torch.equal(means.argmax(1), from_tar.train_labels)


def test_environment_variable_is_used_and_the_cache_is_reused(isolated, monkeypatch):
    monkeypatch.setenv(data_module.ENV_DATA, str(write_tiny_tarball(isolated)))
    first = load_cifar10(download=False, verbose=False)
    assert len(list((isolated / "cache").glob("cifar10-*.pt"))) == 1

    def no_decoding(source):
        raise AssertionError("decoded again instead of reading the cache")

    monkeypatch.setattr(data_module, "read_image_folder", no_decoding)
    second = load_cifar10(download=False, verbose=False)
    assert torch.equal(first.test_images, second.test_images)


def test_missing_path_names_it(isolated):
    with pytest.raises(DataNotFoundError) as error:
        load_cifar10(isolated / "no_such.tar.gz")
    assert "no_such.tar.gz (the path argument): no such file or folder" in str(error.value)


def test_nothing_found_lists_every_place_tried_and_how_to_provide_data(isolated, monkeypatch):
    def offline(cache_dir, verbose, download=True):
        raise OSError("network unreachable")

    monkeypatch.setattr(data_module, "_download_with_torchvision", offline)
    with pytest.raises(DataNotFoundError) as error:
        load_cifar10(verbose=False)
    message = str(error.value)
    assert str(isolated / "cache" / "cifar10-jpeg.tar.gz") in message
    assert "shared" not in message  # the library looks only where a learner's machine keeps data
    assert "OSError: network unreachable" in message
    assert "RESNET_EDU_DATA" in message and "ImageFolder layout" in message


def test_the_library_never_looks_beside_the_repository(isolated, monkeypatch):
    """A copy at ../shared/data (this project's build machines) is found only through RESNET_EDU_DATA,
    which the test suite's conftest.py sets; the installed library does not know that place."""
    tarball = write_tiny_tarball(isolated / "shared" / "data")
    beside = tarball.rename(tarball.with_name(data_module.OFFLINE_NAME))
    (isolated / "repo").mkdir()
    monkeypatch.chdir(isolated / "repo")
    assert data_module.find_cifar10() is None
    monkeypatch.setenv(data_module.ENV_DATA, str(beside))
    assert data_module.find_cifar10() == beside


def test_an_earlier_torchvision_download_is_found_offline(isolated, monkeypatch):
    calls = []
    monkeypatch.setattr(data_module, "_download_with_torchvision",
                        lambda cache_dir, verbose, download=True: calls.append(download) or "loaded")
    with pytest.raises(DataNotFoundError):
        load_cifar10(download=False, verbose=False)
    (isolated / "cache" / "torchvision" / data_module.TORCHVISION_FOLDER).mkdir(parents=True)
    assert load_cifar10(download=False, verbose=False) == "loaded" and calls == [False]


def test_a_corrupt_image_names_its_file(isolated):
    tarball = write_tiny_tarball(isolated, corrupt="tiny/train/dog/0001.jpg")
    with pytest.raises(CorruptDataError, match=r"tiny/train/dog/0001\.jpg"):
        load_cifar10(tarball, verbose=False)


def test_a_damaged_tarball_and_a_wrong_layout_say_what_was_expected(isolated):
    tarball = write_tiny_tarball(isolated)
    broken = isolated / "broken.tar.gz"
    broken.write_bytes(tarball.read_bytes()[:2000])
    with pytest.raises(CorruptDataError, match="damaged, incomplete or not a tar archive"):
        load_cifar10(broken, verbose=False)
    flat = isolated / "flat.tar"
    with tarfile.open(flat, "w") as archive:
        archive.add(write_tiny_folder(isolated / "f") / "train" / "cat", arcname="cat")
    with pytest.raises(CorruptDataError, match="no train or test images"):
        load_cifar10(flat, verbose=False)


def test_normalize_matches_torchvision():
    images = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)
    expected = TF.normalize(images.float() / 255, list(CIFAR10_MEAN), list(CIFAR10_STD))
    assert torch.allclose(normalize(images), expected, atol=1e-5)


def test_batched_crop_and_flip_match_torchvision_per_image():
    images = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8)
    dy, dx = torch.tensor([0, 8, 4, 1, 7]), torch.tensor([8, 0, 4, 6, 2])
    cropped = random_crop(images, dy, dx, padding=4)
    for i in range(5):
        padded = TF.pad(images[i], [4])
        assert torch.equal(cropped[i], TF.crop(padded, int(dy[i]), int(dx[i]), 32, 32))
    flip = torch.tensor([True, False, True, False, False])
    flipped = random_flip(images, flip)
    assert torch.equal(flipped[0], TF.horizontal_flip(images[0])) and torch.equal(flipped[1], images[1])


def test_device_loader_covers_the_data_and_repeats_per_seed_and_epoch():
    images = torch.arange(20, dtype=torch.uint8).view(20, 1, 1, 1).expand(20, 3, 32, 32).contiguous()
    labels = torch.arange(20)
    train = DeviceLoader(images, labels, 6, train=True, augment="none", seed=1)
    assert len(train) == 3  # 18 of 20 images: the incomplete last batch is dropped
    first = torch.cat([y for _, y in train])
    assert len(first) == 18 and len(set(first.tolist())) == 18
    assert torch.equal(first, torch.cat([y for _, y in train]))  # same epoch, same order
    train.set_epoch(1)
    assert not torch.equal(first, torch.cat([y for _, y in train]))  # a new epoch reshuffles
    test = DeviceLoader(images, labels, 6, train=False)
    assert len(test) == 4 and torch.equal(torch.cat([y for _, y in test]), labels)  # every image, in order
    x, y = next(iter(test))
    assert x.dtype == torch.float32 and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(x, normalize(images[y]))  # pixel value i belongs to label i


def test_shards_are_disjoint_and_cover_the_epoch():
    shards = [shard_indices(10, 3, shuffle=True, seed=0, rank=r, world_size=3, drop_last=True) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]
    together = torch.cat(shards)
    assert len(set(together.tolist())) == 9
    whole = shard_indices(10, 3, shuffle=True, seed=0, rank=0, world_size=1, drop_last=True)
    assert set(together.tolist()) <= set(whole.tolist())


def test_device_loader_length_agrees_with_its_batches_without_drawing_an_order(monkeypatch):
    """len(loader) is arithmetic: a training loop may call it every step, and drawing the epoch's
    permutation of 50,000 indices each time would cost the CPU for nothing."""
    labels = torch.arange(23)
    images = torch.zeros(23, 3, 32, 32, dtype=torch.uint8)
    loaders = [DeviceLoader(images, labels, 4, train=train, rank=rank, world_size=world_size)
               for train in (True, False) for world_size in (1, 2, 3) for rank in range(world_size)]
    counted = [sum(1 for _ in loader) for loader in loaders]

    def no_permutation(*args, **kwargs):
        raise AssertionError("len() drew a permutation")

    monkeypatch.setattr(torch, "randperm", no_permutation)
    assert [len(loader) for loader in loaders] == counted


def test_device_loader_builds_no_tensor_from_host_values_per_batch(monkeypatch):
    """On a GPU, torch.tensor(..., device=cuda) is a copy from the host that waits for the GPU; the
    loader makes its normalisation constants once, so iterating it builds no tensor from Python values."""
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    loader = DeviceLoader(images, torch.arange(64), 8, train=True)
    made = []
    real_tensor = torch.tensor
    monkeypatch.setattr(torch, "tensor", lambda *a, **k: made.append(a) or real_tensor(*a, **k))
    batches = list(loader)
    assert len(batches) == 8 and made == []


def test_augmentation_is_the_same_for_an_image_whatever_the_number_of_ranks():
    images = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(8)
    alone = {int(y): x for xs, ys in DeviceLoader(images, labels, 8, train=True, seed=3) for x, y in zip(xs, ys)}
    for rank in range(2):
        for xs, ys in DeviceLoader(images, labels, 4, train=True, seed=3, rank=rank, world_size=2):
            for x, y in zip(xs, ys):
                assert torch.equal(x, alone[int(y)])


def test_dataloader_baseline_gives_normalised_batches():
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8)
    loader = make_dataloader(images, torch.arange(16), 8, train=False, num_workers=0)
    x, y = next(iter(loader))
    assert x.shape == (8, 3, 32, 32) and torch.allclose(x, normalize(images[:8]), atol=1e-5)
    train = make_dataloader(images, torch.arange(16), 8, train=True, num_workers=0, seed=0)
    train.set_epoch(0)
    order0 = torch.cat([y for _, y in train])
    train.set_epoch(0)
    assert torch.equal(order0, torch.cat([y for _, y in train]))


def test_subset_is_reproducible_and_sized():
    cifar = CIFAR10(torch.zeros(50, 3, 32, 32, dtype=torch.uint8), torch.arange(50),
                    torch.zeros(20, 3, 32, 32, dtype=torch.uint8), torch.arange(20))
    small = cifar.subset(train=10, test=5, seed=1)
    assert len(small.train_labels) == 10 and len(small.test_labels) == 5
    assert torch.equal(small.train_labels, cifar.subset(train=10, test=5, seed=1).train_labels)


def test_the_cache_keeps_the_folders_class_names(isolated):
    """A second load reads the cache; it must give the class names of the folder, not CIFAR-10's (two
    torchrun ranks, one decoding and one reading the cache, once built models of different widths)."""
    tarball = write_tiny_tarball(isolated)
    decoded = load_cifar10(tarball, verbose=False)
    cached = load_cifar10(tarball, verbose=False)
    assert decoded.classes == cached.classes == TINY_CLASSES
    assert torch.equal(decoded.train_labels, cached.train_labels)

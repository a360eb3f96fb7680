"""A tiny CIFAR-like data set written to disk in ImageFolder layout, for tests that need files."""

import io
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

TINY_CLASSES = ("cat", "dog", "frog")


def tiny_images(per_class, seed):
    """Images whose colour says their class (learnable in a few steps), with noise on top."""
    rng = np.random.default_rng(seed)
    for label, _ in enumerate(TINY_CLASSES):
        for i in range(per_class):
            image = rng.integers(0, 90, (32, 32, 3), dtype=np.uint8)
            image[..., label] += 150  # class 0 reddish, 1 greenish, 2 bluish
            yield label, i, image


def jpeg_bytes(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def write_tiny_folder(root, train_per_class=8, test_per_class=4, seed=0):
    """root/tiny/{train,test}/<class>/NNNN.jpg; returns the folder holding train/ and test/."""
    base = Path(root) / "tiny"
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for label, i, image in tiny_images(count, seed + (split == "test")):
            path = base / split / TINY_CLASSES[label] / f"{i:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(jpeg_bytes(image))
    return base


def write_tiny_tarball(root, train_per_class=8, test_per_class=4, seed=0, corrupt=None):
    """The same as a .tar.gz; ``corrupt`` names a member (e.g. "tiny/train/dog/0001.jpg") to damage."""
    folder = write_tiny_folder(Path(root) / "src", train_per_class, test_per_class, seed)
    if corrupt:
        (folder.parent / corrupt).write_bytes(b"this is not a JPEG")
    tarball = Path(root) / "tiny.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(folder, arcname="tiny")
    return tarball


def tiny_cifar(train_per_class=16, test_per_class=8, seed=0):
    """The tiny data set in memory, as a resnet_edu.dataset.CIFAR10 (no files, no JPEG)."""
    import torch

    from resnet_edu.dataset import CIFAR10

    def split(count, split_seed):
        labels, images = zip(*[(label, image) for label, _, image in tiny_images(count, split_seed)])
        return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous(), torch.tensor(labels)

    return CIFAR10(*split(train_per_class, seed), *split(test_per_class, seed + 1), classes=TINY_CLASSES,
                   source="tiny synthetic")

"""CIFAR-10 as uint8 tensors, and two ways to feed it to a model.

Where the images come from, in the order tried:

1. ``path`` given to :func:`load_cifar10`: a tarball (``.tar.gz``/``.tgz``/``.tar``) or a directory in
   torchvision's ImageFolder layout (``train/<class>/*.jpg`` and ``test/<class>/*.jpg``, possibly one
   folder deeper, e.g. ``cifar10/train/...``).
2. The environment variable ``RESNET_EDU_DATA``, same forms.
3. Known offline places: ``../shared/data/cifar10-jpeg.tar.gz`` next to the repository (this
   project's machines), and ``cifar10-jpeg.tar.gz`` or ``cifar10/`` in the cache directory.
4. torchvision's ``CIFAR10(download=True)`` into the cache directory, when the internet is reachable.

Decoding 60,000 JPEGs takes seconds, so the decoded tensors are cached (``cache_dir``, by default
``$RESNET_EDU_CACHE`` or ``~/.cache/resnet_edu``): the second load reads one file.

Two loaders, with the same interface (``set_epoch``, ``len``, iteration yields ``(images, labels)``):

* :class:`DeviceLoader`: the whole uint8 set lives on the device (150 MB for the training set);
  random crop with padding, horizontal flip and normalisation run there on whole batches, with
  no copy from the host per batch, so the CPU can queue work ahead of the GPU. Its randomness
  depends only on ``(seed, epoch)``, so a resumed run sees exactly the batches an uninterrupted
  run would have seen.
* :func:`make_dataloader`: the ordinary ``torch.utils.data.DataLoader`` with torchvision transforms
  in worker processes, the baseline that the speed ladder compares against.
"""

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import save_checkpoint

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Per-channel mean and standard deviation of the training set's pixels (scaled to [0, 1]), as
# measured on the offline JPEG copy (../shared/data/README.md); tests/test_data.py recomputes them.
CIFAR10_MEAN = (0.4913, 0.4821, 0.4465)
CIFAR10_STD = (0.2452, 0.2428, 0.2606)

ENV_DATA = "RESNET_EDU_DATA"
ENV_CACHE = "RESNET_EDU_CACHE"
OFFLINE_NAME = "cifar10-jpeg.tar.gz"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
REPO_ROOT = Path(__file__).resolve().parent.parent


class DataNotFoundError(FileNotFoundError):
    """No CIFAR-10 anywhere we looked; the message lists the places and how to provide the data."""


class CorruptDataError(ValueError):
    """The data was found but cannot be used (a damaged image, a wrong layout); names the file."""


@dataclass
class CIFAR10:
    """CIFAR-10 in memory: images (N, 3, 32, 32) uint8, labels (N,) int64, and the class names."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple = CLASSES
    source: str = ""

    def __repr__(self):
        return (f"CIFAR10(train={tuple(self.train_images.shape)}, test={tuple(self.test_images.shape)}, "
                f"classes={len(self.classes)}, source={self.source!r})")

    def subset(self, train=None, test=None, seed=0):
        """A random subset (``train`` and ``test`` images, ``None`` keeps all), for quick runs and tests."""
        generator = torch.Generator().manual_seed(seed)

        def pick(images, labels, n):
            if n is None or n >= len(labels):
                return images, labels
            index = torch.randperm(len(labels), generator=generator)[:n].sort().values
            return images[index], labels[index]

        train_images, train_labels = pick(self.train_images, self.train_labels, train)
        test_images, test_labels = pick(self.test_images, self.test_labels, test)
        return replace(self, train_images=train_images, train_labels=train_labels,
                       test_images=test_images, test_labels=test_labels)


def default_cache_dir():
    """``$RESNET_EDU_CACHE``, else ``$XDG_CACHE_HOME/resnet_edu``, else ``~/.cache/resnet_edu``."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "resnet_edu"


def candidate_sources(path=None, cache_dir=None):
    """The offline places to look, in order, as ``(Path, why it is tried)`` pairs."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    candidates = []
    if path is not None:
        candidates.append((Path(path).expanduser(), "the path argument"))
    if os.environ.get(ENV_DATA):
        candidates.append((Path(os.environ[ENV_DATA]).expanduser(), f"${ENV_DATA}"))
    for root in (REPO_ROOT, Path.cwd(), Path.cwd().parent):
        candidates.append((root.parent / "shared" / "data" / OFFLINE_NAME, "this project's shared data"))
    candidates.append((cache_dir / OFFLINE_NAME, "the cache directory"))
    candidates.append((cache_dir / "cifar10", "the cache directory"))
    unique, seen = [], set()
    for candidate, why in candidates:
        key = candidate.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((candidate, why))
    return unique


def load_cifar10(path=None, *, cache_dir=None, download=True, verbose=True):
    """Load CIFAR-10 as a :class:`CIFAR10` of uint8 tensors (see the module docstring for where from).

    ``path`` given but missing is an error (a typo should not silently fall back to a download).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    tried = []
    for candidate, why in candidate_sources(path, cache_dir):
        if candidate.exists():
            return _load_cached(candidate, cache_dir, verbose)
        if why in ("the path argument", f"${ENV_DATA}"):
            raise DataNotFoundError(f"CIFAR-10 was not found at {candidate} ({why}): no such file or folder. "
                                    f"Check the path for typos.")
        tried.append(f"{candidate} ({why}): not found")
    if download:
        try:
            return _download_with_torchvision(cache_dir, verbose)
        except Exception as error:  # no internet, a proxy, a full disk: report it with the rest
            tried.append(f"torchvision download into {cache_dir / 'torchvision'}: "
                         f"{type(error).__name__}: {error}")
    else:
        tried.append("torchvision download: skipped (download=False)")
    raise DataNotFoundError(_not_found_message(tried))


def _not_found_message(tried):
    lines = "\n".join(f"  - {t}" for t in tried)
    return (f"CIFAR-10 was not found. Places tried:\n{lines}\nProvide the data in one of these ways:\n"
            "  * connect to the internet (torchvision downloads CIFAR-10, 170 MB, once), or\n"
            f"  * pass load_cifar10(path=...) or set {ENV_DATA} to a tarball or directory in the\n"
            "    ImageFolder layout train/<class>/*.jpg and test/<class>/*.jpg, or\n"
            f"  * put {OFFLINE_NAME} in {default_cache_dir()}.")


def _load_cached(source, cache_dir, verbose):
    """Decode ``source`` once and keep the tensors in ``cache_dir``; later loads read the cache."""
    stat = source.stat()
    key = hashlib.sha1(f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    cache_file = cache_dir / f"cifar10-{key}.pt"
    if cache_file.exists():
        try:
            tensors = torch.load(cache_file, weights_only=True)
            return CIFAR10(**tensors, classes=CLASSES, source=str(source))
        except Exception:  # a cache cut short by a crash: decode again
            pass
    if verbose:
        print(f"Decoding CIFAR-10 from {source} (once; cached in {cache_dir}) ...")
    data = read_image_folder(source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tensors = {name: getattr(data, name) for name in
               ("train_images", "train_labels", "test_images", "test_labels")}
    save_checkpoint(cache_file, **tensors)  # atomic: a crash never leaves half a cache file
    return data


def read_image_folder(source):
    """Read a tarball or directory in ImageFolder layout into a :class:`CIFAR10`."""
    source = Path(source)
    files = _read_tar(source) if source.is_file() else _read_directory(source)
    splits = {}
    for name, payload in files:
        parts = Path(name).parts
        if len(parts) < 3 or parts[-3] not in ("train", "test"):
            continue
        splits.setdefault(parts[-3], []).append((parts[-2], name, payload))
    missing = [s for s in ("train", "test") if s not in splits]
    if missing:
        raise CorruptDataError(
            f"{source} has no {' or '.join(missing)} images: expected the ImageFolder layout "
            f"train/<class>/*.jpg and test/<class>/*.jpg (image files ending {IMAGE_SUFFIXES}).")
    classes = sorted({cls for cls, _, _ in splits["train"]})
    test_classes = sorted({cls for cls, _, _ in splits["test"]})
    if classes != test_classes:
        raise CorruptDataError(f"{source}: the train classes {classes} differ from the test classes "
                               f"{test_classes}; both splits need the same class folders.")
    train_images, train_labels = _decode_split(splits["train"], classes, source)
    test_images, test_labels = _decode_split(splits["test"], classes, source)
    return CIFAR10(train_images, train_labels, test_images, test_labels, tuple(classes), str(source))


def _read_tar(source):
    if not source.name.endswith(TAR_SUFFIXES):
        raise CorruptDataError(f"{source} is a file but not a tarball (expected a name ending "
                               f"{TAR_SUFFIXES}), nor a directory in ImageFolder layout.")
    try:
        with tarfile.open(source) as archive:
            return [(m.name, archive.extractfile(m).read()) for m in archive
                    if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES)]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise CorruptDataError(f"cannot read the tarball {source} ({type(error).__name__}): it is damaged, "
                               f"incomplete or not a tar archive; copy or download it again.") from error


def _read_directory(source):
    return [(str(p.relative_to(source)), p.read_bytes()) for p in source.rglob("*")
            if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES)]


def _decode_split(entries, classes, source):
    """Decode images sorted by (class, file name), so every source gives the same order."""
    index = {cls: i for i, cls in enumerate(classes)}
    entries = sorted(entries, key=lambda e: (e[0], e[1]))
    images = np.stack([decode_image(payload, f"{source}:{name}") for _, name, payload in entries])
    labels = torch.tensor([index[cls] for cls, _, _ in entries], dtype=torch.int64)
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels


def decode_image(payload, name, size=(32, 32)):
    """Decode one image file's bytes to an (H, W, 3) uint8 array; a damaged file names itself."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(payload)) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as error:
        raise CorruptDataError(f"cannot decode the image {name}: {type(error).__name__}: {error}. "
                               f"Replace the file or get the data set again.") from error
    if array.shape[:2] != size:
        raise CorruptDataError(f"the image {name} is {array.shape[1]}x{array.shape[0]} pixels; "
                               f"every CIFAR-10 image is {size[1]}x{size[0]}.")
    return array


def _download_with_torchvision(cache_dir, verbose):
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    root = cache_dir / "torchvision"
    splits = [TorchvisionCIFAR10(root, train=train, download=True) for train in (True, False)]
    tensors = [(torch.from_numpy(s.data).permute(0, 3, 1, 2).contiguous(),
                torch.tensor(s.targets, dtype=torch.int64)) for s in splits]
    return CIFAR10(*tensors[0], *tensors[1], tuple(splits[0].classes), f"torchvision download ({root})")


def channel_stats(images, chunk=10_000):
    """Per-channel mean and std of uint8 images (N, 3, H, W), scaled to [0, 1], as float tuples."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start:start + chunk].to(torch.float64) / 255
        total += x.sum(dim=(0, 2, 3))
        squares += (x * x).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (squares / count - mean * mean).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


# ----------------------------------------------------------------------------- augmentation

def pixel_stats(mean, std, device, dtype=torch.float32):
    """Channel means and standard deviations as (1, 3, 1, 1) tensors in pixel units (0-255) on ``device``.

    A loader makes them once: building a small tensor on a GPU is a copy from the host that waits
    for the GPU, which would stall every batch."""
    return tuple((torch.tensor(v, dtype=dtype) * 255).view(1, 3, 1, 1).to(device) for v in (mean, std))


def normalize(images, mean=CIFAR10_MEAN, std=CIFAR10_STD, dtype=torch.float32):
    """uint8 (N, 3, H, W) -> float (x / 255 - mean) / std, on the images' device, layout kept."""
    pixel_mean, pixel_std = pixel_stats(mean, std, images.device, dtype)
    return (images.to(dtype) - pixel_mean) / pixel_std


def random_crop(images, dy, dx, padding):
    """Crop every image of a batch at its own offset (dy[i], dx[i]) from a zero-padded copy.

    One gather for the whole batch instead of a Python loop over images. The result is a
    channels_last view (N, 3, H, W): the gather produces (N, H, W, 3) and we permute it.
    """
    n, _, height, width = images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)  # (N, 3, H + 2p, W + 2p), zeros
    rows = dy.view(n, 1) + torch.arange(height, device=images.device)  # (N, H)
    cols = dx.view(n, 1) + torch.arange(width, device=images.device)  # (N, W)
    batch = torch.arange(n, device=images.device).view(n, 1, 1)
    cropped = padded[batch, :, rows.view(n, height, 1), cols.view(n, 1, width)]  # (N, H, W, 3)
    return cropped.permute(0, 3, 1, 2)


def random_flip(images, flip):
    """Mirror images left-right where ``flip`` (N,) is True."""
    return torch.where(flip.view(-1, 1, 1, 1), images.flip(3), images)


AUGMENTATIONS = ("crop+flip", "flip", "none")


def _check_augment(augment):
    if augment not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {AUGMENTATIONS}; got {augment!r}")


def _epoch_generator(seed, epoch):
    """A CPU generator that depends only on (seed, epoch): resumed runs repeat the same draws."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def shard_indices(count, epoch, *, shuffle, seed, rank, world_size, drop_last):
    """The indices rank ``rank`` of ``world_size`` visits this epoch (all ranks draw the same order)."""
    order = torch.randperm(count, generator=_epoch_generator(seed, epoch)) if shuffle else torch.arange(count)
    return order[:shard_end(count, world_size, drop_last)][rank::world_size]


def shard_end(count, world_size, drop_last):
    """How many of ``count`` images the ranks visit together: with ``drop_last`` every rank gets the
    same number, so DDP steps stay in lock-step."""
    return count - count % world_size if drop_last else count


class DeviceLoader:
    """Batches from uint8 images resident on ``device``, augmented and normalised there.

    train=True shuffles, augments (``augment``: "crop+flip", "flip" or "none") and drops the last
    incomplete batch; train=False keeps the order and every image. With ``world_size > 1`` each rank
    gets its own shard of every epoch's order, as DistributedSampler would.
    """

    def __init__(self, images, labels, batch_size, *, train, device="cpu", augment="crop+flip",
                 padding=4, mean=CIFAR10_MEAN, std=CIFAR10_STD, seed=0, rank=0, world_size=1,
                 channels_last=True, dtype=torch.float32):
        _check_augment(augment)
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels; they must pair up")
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.batch_size, self.train, self.device = batch_size, train, torch.device(device)
        self.augment, self.padding = augment if train else "none", padding
        self.dtype = dtype
        self.pixel_mean, self.pixel_std = pixel_stats(mean, std, self.device, dtype)  # once, not per batch
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.channels_last = channels_last
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def _indices(self):
        return shard_indices(len(self.labels), self.epoch, shuffle=self.train, seed=self.seed,
                             rank=self.rank, world_size=self.world_size, drop_last=self.train)

    def __len__(self):
        """Batches per epoch, by arithmetic (drawing the epoch's order would cost a permutation)."""
        n = len(range(self.rank, shard_end(len(self.labels), self.world_size, self.train), self.world_size))
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def __iter__(self):
        indices = self._indices()
        # Offsets and flips are drawn for every image of the data set, then picked by index, so an
        # image's augmentation does not depend on the number of ranks.
        generator = _epoch_generator(self.seed + 7919, self.epoch)
        count = len(self.labels)
        dy = torch.randint(0, 2 * self.padding + 1, (count,), generator=generator)[indices]
        dx = torch.randint(0, 2 * self.padding + 1, (count,), generator=generator)[indices]
        flip = (torch.rand(count, generator=generator) < 0.5)[indices]
        indices, dy, dx, flip = (t.to(self.device) for t in (indices, dy, dx, flip))
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            batch = indices[start:start + self.batch_size]
            images, labels = self.images[batch], self.labels[batch]
            if self.augment == "crop+flip":
                images = random_crop(images, dy[start:start + len(batch)], dx[start:start + len(batch)],
                                     self.padding)
            if self.augment in ("crop+flip", "flip"):
                images = random_flip(images, flip[start:start + len(batch)])
            images = (images.to(self.dtype) - self.pixel_mean) / self.pixel_std
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            else:
                images = images.contiguous()
            yield images, labels


class AugmentedDataset(torch.utils.data.Dataset):
    """uint8 tensors with torchvision transforms applied per image (the DataLoader baseline)."""

    def __init__(self, images, labels, *, train, augment="crop+flip", padding=4,
                 mean=CIFAR10_MEAN, std=CIFAR10_STD):
        from torchvision.transforms import v2

        _check_augment(augment)
        steps = []
        if train and augment == "crop+flip":
            steps.append(v2.RandomCrop(images.shape[-1], padding=padding))
        if train and augment in ("crop+flip", "flip"):
            steps.append(v2.RandomHorizontalFlip())
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
        self.images, self.labels, self.transform = images, labels, v2.Compose(steps)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


class EpochDataLoader(torch.utils.data.DataLoader):
    """A DataLoader whose ``set_epoch`` reseeds its shuffling (and its sampler), like DeviceLoader."""

    def __init__(self, *args, seed=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed = seed

    def set_epoch(self, epoch):
        if self.generator is not None:
            self.generator.manual_seed(self.seed * 1_000_003 + epoch)
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def make_dataloader(images, labels, batch_size, *, train, augment="crop+flip", num_workers=2,
                    seed=0, rank=0, world_size=1, pin_memory=False):
    """The ordinary DataLoader path: per-image transforms in ``num_workers`` worker processes."""
    dataset = AugmentedDataset(images, labels, train=train, augment=augment)
    sampler = None
    if world_size > 1:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                      shuffle=train, seed=seed, drop_last=train)
    return EpochDataLoader(dataset, batch_size=batch_size, shuffle=train and sampler is None,
                           sampler=sampler, drop_last=train, num_workers=num_workers,
                           pin_memory=pin_memory,
                           generator=torch.Generator().manual_seed(seed), seed=seed)

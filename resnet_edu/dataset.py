"""CIFAR-10 as uint8 tensors in memory: where to find it, how to decode it, and the decoded cache.

Where the images come from, in the order tried:

1. ``path`` given to :func:`load_cifar10`: a tarball (``.tar.gz``/``.tgz``/``.tar``) or a directory in
   torchvision's ImageFolder layout (``train/<class>/*.jpg`` and ``test/<class>/*.jpg``, possibly one
   folder deeper, e.g. ``cifar10/train/...``).
2. The environment variable ``RESNET_EDU_DATA``, same forms.
3. The cache directory: ``cifar10-jpeg.tar.gz`` or ``cifar10/`` placed there, or torchvision's
   copy downloaded there before (``torchvision/cifar-10-batches-py``).
4. torchvision's ``CIFAR10(download=True)`` into the cache directory, when the internet is reachable.

Several processes (the ranks of a torchrun job) may load at once on a fresh machine: a lock file in
the cache directory lets one of them download and decode while the others wait, then read its cache.

Decoding 60,000 JPEGs takes seconds, so the decoded tensors are cached (``cache_dir``, by default
``$RESNET_EDU_CACHE`` or ``~/.cache/resnet_edu``): the second load reads one file.

The loaders that feed its batches to a model are in :mod:`resnet_edu.loaders`.
"""

import hashlib
import io
import os
import tarfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .files import atomic_write, one_at_a_time

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

# Per-channel mean and standard deviation of the training set's pixels (scaled to [0, 1]), as
# measured on the offline JPEG copy of CIFAR-10 (cifar10-jpeg.tar.gz); tests/test_data.py recomputes them.
CIFAR10_MEAN = (0.4913, 0.4821, 0.4465)
CIFAR10_STD = (0.2452, 0.2428, 0.2606)

ENV_DATA = "RESNET_EDU_DATA"
ENV_CACHE = "RESNET_EDU_CACHE"
OFFLINE_NAME = "cifar10-jpeg.tar.gz"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
TAR_SUFFIXES = (".tar.gz", ".tgz", ".tar")
TORCHVISION_FOLDER = "cifar-10-batches-py"  # what torchvision's download unpacks


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

    def validation_split(self, size=5000, seed=0):
        """The training images split in two: ``size`` of them, drawn at random, stand in the test
        slots (a held-out set to make choices on), the rest stay for training. The real test images
        are left out, to be used once, at the end. The paper split CIFAR-10 45,000/5,000 this way."""
        if not 0 < size < len(self.train_labels):
            raise ValueError(f"size must be between 1 and {len(self.train_labels) - 1} (the training images "
                             f"minus one); got {size}")
        order = torch.randperm(len(self.train_labels), generator=torch.Generator().manual_seed(seed))
        held, kept = order[:size].sort().values, order[size:].sort().values
        return replace(self, train_images=self.train_images[kept], train_labels=self.train_labels[kept],
                       test_images=self.train_images[held], test_labels=self.train_labels[held],
                       source=f"{self.source} (training images only: {len(kept)} to train, {size} held out)")


def data_label(source):
    """How to name results measured on ``source``: the offline JPEG copy's pixels differ slightly
    from the original release's, so its accuracies are labelled as the copy's."""
    return "CIFAR-10 (JPEG copy)" if OFFLINE_NAME in str(source) else "CIFAR-10"


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
    candidates.append((cache_dir / OFFLINE_NAME, "the cache directory"))
    candidates.append((cache_dir / "cifar10", "the cache directory"))
    candidates.append((cache_dir / "torchvision" / TORCHVISION_FOLDER, "an earlier torchvision download"))
    return candidates


def find_cifar10(path=None, cache_dir=None):
    """Where :func:`load_cifar10` would read CIFAR-10 without downloading: a Path, or None.

    Reads nothing but the file system's listing (the test suite asks it before starting the notebooks
    that need the data). A ``path`` or ``$RESNET_EDU_DATA`` that does not exist gives None."""
    for candidate, why in candidate_sources(path, cache_dir):
        if candidate.exists():
            return candidate
        if why in ("the path argument", f"${ENV_DATA}"):
            return None
    return None


def load_cifar10(path=None, *, cache_dir=None, download=True, verbose=True):
    """Load CIFAR-10 as a :class:`CIFAR10` of uint8 tensors (see the module docstring for where from).

    ``path`` given but missing is an error (a typo should not silently fall back to a download).
    """
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    with one_at_a_time(cache_dir / "load.lock"):  # one process fetches and decodes; the others wait
        tried = []
        for candidate, why in candidate_sources(path, cache_dir):
            if candidate.exists():
                if candidate.name == TORCHVISION_FOLDER:
                    return _download_with_torchvision(cache_dir, verbose, download=False)
                return _load_cached(candidate, cache_dir, verbose)
            if why in ("the path argument", f"${ENV_DATA}"):
                raise DataNotFoundError(f"CIFAR-10 was not found at {candidate} ({why}): no such file or "
                                        f"folder. Check the path for typos.")
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
            cached = torch.load(cache_file, weights_only=True)
            return CIFAR10(**cached, source=str(source))
        except Exception:  # a cache cut short by a crash, or of an older layout: decode again
            pass
    if verbose:
        print(f"Decoding CIFAR-10 from {source} (once; cached in {cache_dir}) ...")
    data = read_image_folder(source)
    cached = {name: getattr(data, name) for name in ("train_images", "train_labels", "test_images", "test_labels")}
    cached["classes"] = tuple(data.classes)  # the folder's class names, which need not be CIFAR-10's
    atomic_write(cache_file, lambda tmp: torch.save(cached, tmp))  # never half a cache file
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


def _download_with_torchvision(cache_dir, verbose, download=True):
    """torchvision's CIFAR-10 in ``cache_dir/torchvision``: downloaded (170 MB) unless already there."""
    from torchvision.datasets import CIFAR10 as TorchvisionCIFAR10

    root = cache_dir / "torchvision"
    if download and verbose and not (root / TORCHVISION_FOLDER).exists():
        print(f"Downloading CIFAR-10 with torchvision into {root} (once) ...")
    splits = [TorchvisionCIFAR10(root, train=train, download=download) for train in (True, False)]
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

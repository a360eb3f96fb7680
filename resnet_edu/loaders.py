"""Two ways to feed CIFAR-10's uint8 tensors to a model, with the same interface (``set_epoch``,
``len``, iteration yields ``(images, labels)``), and the batched augmentations they use.

* :class:`DeviceLoader`: the whole uint8 set lives on the device (150 MB for the training set);
  random crop with padding, horizontal flip and normalisation run there on whole batches, with
  no copy from the host per batch, so the CPU can queue work ahead of the GPU. Its randomness
  depends only on ``(seed, epoch)``, so a resumed run sees exactly the batches an uninterrupted
  run would have seen.
* :func:`make_dataloader`: the ordinary ``torch.utils.data.DataLoader`` with torchvision transforms
  in worker processes, the baseline that the speed ladder compares against.
"""

import torch

from .dataset import CIFAR10_MEAN, CIFAR10_STD


def pixel_stats(mean, std, device, dtype=torch.float32):
    """Channel means and standard deviations as (1, 3, 1, 1) tensors in pixel units (0-255) on ``device``.

    A loader makes them once: building a small tensor on a GPU is a copy from the host that waits
    for the GPU, which would stall every batch."""
    return tuple((torch.tensor(v, dtype=dtype) * 255).view(1, 3, 1, 1).to(device) for v in (mean, std))


def normalize(images, mean=CIFAR10_MEAN, std=CIFAR10_STD, dtype=torch.float32, stats=None):
    """uint8 (N, 3, H, W) -> float (x / 255 - mean) / std, on the images' device, layout kept.
    ``stats``: the (pixel_mean, pixel_std) of :func:`pixel_stats`, when a loader made them already."""
    pixel_mean, pixel_std = stats or pixel_stats(mean, std, images.device, dtype)
    return (images.to(dtype) - pixel_mean) / pixel_std


def memory_format(channels_last):
    """The memory layout a loader's batches come in: NHWC (channels_last) or the default NCHW."""
    return torch.channels_last if channels_last else torch.contiguous_format


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


def epoch_seed(seed, epoch):
    """One seed per (seed, epoch) pair, so that a resumed run repeats the draws of its epoch."""
    return seed * 1_000_003 + epoch  # runs have far fewer epochs than 1,000,003: no two pairs collide


def _epoch_generator(seed, epoch):
    """A CPU generator that depends only on (seed, epoch): resumed runs repeat the same draws."""
    return torch.Generator().manual_seed(epoch_seed(seed, epoch))


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
        generator = _epoch_generator(self.seed + 7919, self.epoch)  # another seed than the order's
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
            images = normalize(images, dtype=self.dtype, stats=(self.pixel_mean, self.pixel_std))
            yield images.contiguous(memory_format=memory_format(self.channels_last)), labels


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
    """A DataLoader whose ``set_epoch`` reseeds its shuffling (and its sampler), and whose batches
    arrive on ``device`` in the memory layout asked for, like DeviceLoader's."""

    def __init__(self, *args, seed=0, device="cpu", channels_last=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.seed, self.device, self.channels_last = seed, torch.device(device), channels_last

    def set_epoch(self, epoch):
        if self.generator is not None:
            self.generator.manual_seed(epoch_seed(self.seed, epoch))
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        for images, labels in super().__iter__():
            images = images.to(self.device, non_blocking=True)
            images = images.contiguous(memory_format=memory_format(self.channels_last))
            yield images, labels.to(self.device, non_blocking=True)


def make_dataloader(images, labels, batch_size, *, train, augment="crop+flip", num_workers=2, device="cpu",
                    channels_last=True, seed=0, rank=0, world_size=1):
    """The ordinary DataLoader path: per-image transforms in ``num_workers`` worker processes (kept
    alive from epoch to epoch), batches pinned in host memory when they travel to a GPU."""
    dataset = AugmentedDataset(images, labels, train=train, augment=augment)
    sampler = None
    if world_size > 1 and train:
        sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                                      shuffle=True, seed=seed, drop_last=True)
    elif world_size > 1:  # every test image exactly once over the ranks (DistributedSampler would pad)
        dataset = torch.utils.data.Subset(dataset, shard_indices(len(dataset), 0, shuffle=False, seed=seed, rank=rank,
                                                                 world_size=world_size, drop_last=False).tolist())
    return EpochDataLoader(dataset, batch_size=batch_size, shuffle=train and sampler is None,
                           sampler=sampler, drop_last=train, num_workers=num_workers,
                           persistent_workers=num_workers > 0, pin_memory=torch.device(device).type == "cuda",
                           generator=torch.Generator().manual_seed(seed), seed=seed, device=device,
                           channels_last=channels_last)

"""Train a ResNet on CIFAR-10: ``fit(model, data, config) -> History``, and the command line.

The pieces, each a short function that notebook 05 explains one at a time:

* :mod:`resnet_edu.runtime` - the device (CUDA, MPS or CPU) and the precision it trains in.
* :func:`make_optimizer` - SGD with Nesterov momentum; weight decay on conv and linear weights
  only (decaying BatchNorm scales and biases only fights the normalisation); fused on a GPU.
* :func:`make_scheduler` - linear warm-up, then a linear (one-cycle) or cosine decay, stepped per batch.
* :func:`train_one_epoch` / :func:`evaluate` - the loop itself, with label smoothing in the loss;
  evaluation optionally averages each image with its mirror image (test-time augmentation).
* :func:`save_checkpoint` / :func:`load_checkpoint` - written atomically; resuming restores model,
  optimiser, scheduler, scaler, random states and epoch, so an interrupted run ends with exactly
  the weights of an uninterrupted one (bit for bit on a CPU; on a GPU cuDNN's autotuned kernels
  make runs agree only to rounding).
* With ``compile=True`` one training step and one evaluation batch run before the clock starts, so
  compilation is reported apart (``History.warmup_seconds``), not hidden in the first epoch.

Run ``python -m resnet_edu.train --help`` for the command line; it runs unchanged under
``torchrun --nproc_per_node=N`` (see :mod:`resnet_edu.distributed`).
"""

import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import distributed
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .data import AUGMENTATIONS, DeviceLoader, make_dataloader
from .resnet import build
from .runtime import autocast, choose_precision, configure, device_name, synchronize

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
LOADERS = ("device", "dataloader")
SCHEDULES = ("onecycle", "cosine")
CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.json"


@dataclass
class TrainConfig:
    """Everything that decides a run. ``batch_size`` is the global batch, split over ranks."""

    model: str = "resnet18"
    stem: str = "cifar"
    zero_init_residual: bool = False  # each residual branch starts at zero (its last BN weight is 0)
    epochs: int = 30
    batch_size: int = 512
    lr: float = 0.4  # the peak learning rate of the schedule
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    schedule: str = "onecycle"
    warmup: float = 0.25  # fraction of all steps spent warming up
    augment: str = "crop+flip"
    tta: bool = False  # evaluate on each test image and its mirror image, averaged
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    loader: str = "device"
    num_workers: int = 2  # only for loader="dataloader"
    eval_batch_size: int = 1000
    eval_every: int = 1  # evaluate after every this many epochs, and always after the last
    checkpoint_every: int = 1  # write the checkpoint after every this many epochs, and after the last
    sync_bn: bool = False
    seed: int = 0
    out_dir: str = None  # checkpoint.pt and metrics.json go here; None writes nothing
    progress: bool = True  # tqdm progress bars
    live_plot: bool = True  # a plot of loss and accuracy, redrawn in place in a notebook
    device: str = None  # None: resnet_edu.runtime.choose_device (cuda, mps, cpu)

    def __post_init__(self):
        problems = [f"{name} must be one of {allowed}; got {getattr(self, name)!r}"
                    for name, allowed in (("precision", PRECISIONS), ("loader", LOADERS), ("schedule", SCHEDULES),
                                          ("augment", AUGMENTATIONS)) if getattr(self, name) not in allowed]
        problems += [f"{name} must be {rule}; got {getattr(self, name)!r}" for name, rule, ok in (
            ("epochs", "at least 1", self.epochs >= 1),
            ("batch_size", "at least 1", self.batch_size >= 1),
            ("eval_batch_size", "at least 1", self.eval_batch_size >= 1),
            ("lr", "a positive number (the peak learning rate, e.g. 0.4)", self.lr > 0),
            ("momentum", "from 0 up to (not including) 1", 0 <= self.momentum < 1),
            ("weight_decay", "0 or more", self.weight_decay >= 0),
            ("label_smoothing", "from 0 up to (not including) 1", 0 <= self.label_smoothing < 1),
            ("warmup", "a fraction of the run from 0 up to (not including) 1", 0 <= self.warmup < 1),
            ("eval_every", "at least 1", self.eval_every >= 1),
            ("checkpoint_every", "at least 1", self.checkpoint_every >= 1),
            ("num_workers", "0 or more", self.num_workers >= 0)) if not ok]
        if problems:
            raise ValueError("; ".join(problems))


# The two recipes of notebook 05. "full": the CIFAR stem keeps 32x32 resolution through stage 1,
# for a GPU; every residual branch starts at zero, the schedule warms up briefly and then decays
# linearly, and the test images are also seen mirrored. "quick": the ImageNet stem shrinks 32x32 to
# 8x8 before stage 1 (16x fewer pixels in every later layer), cheap enough for a laptop CPU, at a
# cost in accuracy that the notebook measures.
RECIPES = {
    "full": TrainConfig(stem="cifar", zero_init_residual=True, epochs=16, batch_size=512, lr=0.4, warmup=0.15,
                        augment="crop+flip", tta=True),
    "quick": TrainConfig(stem="imagenet", epochs=2, batch_size=192, lr=0.2, warmup=0.2, augment="flip"),
}


def recipe(name, **overrides):
    """A copy of RECIPES[name] with some fields changed, e.g. ``recipe("quick", out_dir="runs/q")``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(RECIPES[name], **overrides)


@dataclass
class History:
    """One entry per finished epoch, so a plot or a table can be drawn at any moment.

    ``test_loss`` and ``test_acc`` are None for epochs that were not evaluated (``eval_every``).
    """

    epoch: list = field(default_factory=list)
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    test_loss: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # training time of the epoch, without evaluation
    images_per_second: list = field(default_factory=list)
    warmup_seconds: float = 0.0  # torch.compile's compilation, before the clock started
    status: str = "not started"  # "running", "finished", "interrupted"

    def append(self, **row):
        for name, value in row.items():
            getattr(self, name).append(value)

    def final_test_acc(self):
        """The test accuracy of the last evaluated epoch (None if none was evaluated)."""
        return next((acc for acc in reversed(self.test_acc) if acc is not None), None)

    def as_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, values):
        return cls(**{f.name: values[f.name] for f in fields(cls) if f.name in values})

    def __len__(self):
        return len(self.epoch)


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite: training on it would only spread garbage into the weights."""


# ----------------------------------------------------------------------------- the pieces

def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and every GPU): the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_optimizer(model, config):
    """SGD with Nesterov momentum; weight decay only on weights with more than one dimension.

    On a GPU the update of all tensors runs as one fused kernel instead of several per tensor.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]  # BN, biases
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    fused = next(model.parameters()).device.type == "cuda"
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True, fused=fused or None)


def lr_factor(step, total_steps, warmup_steps, schedule):
    """The learning rate at ``step`` as a fraction of the peak.

    Warm-up: linear from 0.1 to 1 (large steps on random weights would blow up). Then "onecycle"
    falls linearly to 0.001, "cosine" follows half a cosine to 0.
    """
    if step < warmup_steps:
        return 0.1 + 0.9 * step / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - 1 - warmup_steps))
    if schedule == "onecycle":
        return 1 - 0.999 * progress
    return 0.5 * (1 + math.cos(math.pi * progress))


def make_scheduler(optimizer, config, steps_per_epoch):
    """A scheduler stepped once per batch, following :func:`lr_factor` over the whole run."""
    total = config.epochs * steps_per_epoch
    warmup = round(config.warmup * total)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total, warmup, config.schedule))


def make_loaders(data, config, device, rank=0, world_size=1):
    """Training and test loaders of the kind ``config.loader`` names, sharded over the ranks."""
    if config.batch_size % world_size:
        raise ValueError(f"batch_size {config.batch_size} must divide evenly over {world_size} ranks")
    per_rank = config.batch_size // world_size
    common = dict(seed=config.seed, rank=rank, world_size=world_size)
    if config.loader == "device":
        train = DeviceLoader(data.train_images, data.train_labels, per_rank, train=True, device=device,
                             augment=config.augment, channels_last=config.channels_last, **common)
        test = DeviceLoader(data.test_images, data.test_labels, config.eval_batch_size, train=False,
                            device=device, channels_last=config.channels_last, **common)
        return train, test
    pin = torch.device(device).type == "cuda"
    train = make_dataloader(data.train_images, data.train_labels, per_rank, train=True,
                            augment=config.augment, num_workers=config.num_workers, pin_memory=pin, **common)
    test = make_dataloader(data.test_images, data.test_labels, config.eval_batch_size, train=False,
                           num_workers=config.num_workers, pin_memory=pin, **common)
    return train, test


def prepare_model(model, config, device):
    """Move to the device in channels_last; SyncBatchNorm and DDP under torchrun; compile if asked.

    Returns (the model to call, the plain module): save, load and evaluate the plain module's
    weights; those of the compiled wrapper have names that start with ``_orig_mod.``.
    """
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if distributed.world_size() > 1 and config.sync_bn:
        if device.type != "cuda":
            raise ValueError("sync_bn (SyncBatchNorm) works only on GPUs in PyTorch; on CPUs each rank "
                             "keeps its own BatchNorm statistics. Leave out --sync-bn here.")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    plain = model
    if distributed.world_size() > 1:
        ids = [device.index] if device.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        model = torch.compile(model)
    return model, plain


def _to_device(images, labels, device, channels_last):
    images = images.to(device, non_blocking=True)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    return images, labels.to(device, non_blocking=True)


def _first_non_finite(losses):
    finite = torch.isfinite(torch.stack(losses)).tolist()
    return finite.index(False) if False in finite else None


def train_step(model, images, labels, optimizer, scaler, criterion, device, precision):
    """Forward in ``precision``, backward, one optimiser step; returns (loss, logits)."""
    with autocast(device, precision):
        logits = model(images)
        loss = criterion(logits, labels)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()  # fp16: scale up so small gradients survive; else a no-op
    scaler.step(optimizer)  # unscales first, and skips the step if a gradient overflowed
    scaler.update()
    return loss, logits


def train_one_epoch(model, loader, optimizer, scheduler, scaler, criterion, config, device, precision,
                    epoch, progress=None, check_every=None):
    """One pass over the training shard; returns (mean loss, accuracy, images seen, last lr) for this rank.

    The loss is checked for NaN/inf every ``check_every`` steps (each check waits for the GPU, so
    not every step there; every step on a CPU, where it costs nothing). A bad loss stops training.
    """
    check_every = check_every or (1 if device.type == "cpu" else 25)
    steps = len(loader)
    model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen, pending, lr = 0, [], float("nan")
    for step, (images, labels) in enumerate(loader):
        images, labels = _to_device(images, labels, device, config.channels_last)
        loss, logits = train_step(model, images, labels, optimizer, scaler, criterion, device, precision)
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used
        scheduler.step()
        loss_sum += loss.detach() * len(labels)
        correct += (logits.argmax(1) == labels).sum()
        seen += len(labels)
        pending.append(loss.detach())
        if len(pending) == check_every or step == steps - 1:
            bad = _first_non_finite(pending)
            if distributed.any_across_ranks(bad is not None, device):
                value = pending[bad].item() if bad is not None else "non-finite on another rank"
                _raise_non_finite(value, epoch, step - len(pending) + 1 + (bad or 0), steps, config)
            pending = []
        if progress is not None:
            progress.update(1)
    return (loss_sum / max(seen, 1)).item(), correct.item() / max(seen, 1), seen, lr


def _raise_non_finite(value, epoch, step, steps, config):
    where = f"{config.out_dir}/{CHECKPOINT_NAME}" if config.out_dir else "none (out_dir not set)"
    raise NonFiniteLossError(
        f"the loss became {value} at epoch {epoch + 1}, step {step + 1} of {steps}; training stopped "
        f"so that no weights were updated on it after the check. The last good checkpoint: {where}. "
        f"Usual causes: a learning rate too high (lr={config.lr}), fp16 without a gradient scaler, "
        f"or broken input data. Lower lr, or try precision='fp32', then resume or start again.")


def logits_of(model, images, tta=False):
    """The model's logits, or with ``tta`` the mean of those of the images and their mirror images."""
    logits = model(images).float()
    return (logits + model(images.flip(3)).float()) / 2 if tta else logits


@torch.no_grad()
def evaluate(model, loader, device, precision="fp32", channels_last=True, tta=False):
    """Loss (without label smoothing) and accuracy over every image of the loader, all ranks summed."""
    model.eval()
    loss_sum = torch.zeros((), device=device)  # float32: Apple's MPS has no float64
    correct = torch.zeros((), device=device, dtype=torch.int64)
    count = 0
    for images, labels in loader:
        images, labels = _to_device(images, labels, device, channels_last)
        with autocast(device, precision):
            logits = logits_of(model, images, tta)
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        count += len(labels)
    loss_sum, correct, count = distributed.sum_across_ranks([loss_sum.item(), correct.item(), count], device)
    return loss_sum / max(count, 1), correct / max(count, 1)


@torch.no_grad()
def predict(model, images, *, batch_size=1000, device=None, precision="fp32", tta=False):
    """Class probabilities (N, classes) for uint8 images (N, 3, 32, 32), normalised as in training."""
    device = torch.device(device or next(model.parameters()).device)
    loader = DeviceLoader(images, torch.zeros(len(images), dtype=torch.int64), batch_size, train=False,
                          device=device)
    model.eval()
    out = []
    for batch, _ in loader:
        with autocast(device, precision):
            out.append(logits_of(model, batch, tta).softmax(1).cpu())
    return torch.cat(out)


def warm_up(model, plain, train_loader, test_loader, criterion, device, precision, config):
    """Run one training step's forward and backward and one evaluation batch, so that torch.compile
    compiles before the clock starts; returns the seconds it took. The weights, BatchNorm statistics
    and gradients are left exactly as they were (the optimiser never steps)."""
    saved = {name: tensor.clone() for name, tensor in plain.state_dict().items()}
    start = time.perf_counter()
    model.train()
    images, labels = _to_device(*next(iter(train_loader)), device, config.channels_last)
    with autocast(device, precision):
        criterion(model(images), labels).backward()
    model.eval()
    with torch.no_grad(), autocast(device, precision):
        logits_of(model, _to_device(*next(iter(test_loader)), device, config.channels_last)[0], config.tta)
    synchronize(device)
    plain.load_state_dict(saved)
    plain.zero_grad(set_to_none=True)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- the trainer

def _resume_path(resume, config):
    if resume in (None, False):
        return None
    if resume is True or resume == "auto":
        if not config.out_dir:
            raise ValueError("resume=True looks for checkpoint.pt in out_dir, but out_dir is not set")
        return Path(config.out_dir) / CHECKPOINT_NAME
    return Path(resume)


def _progress_bar(total, description, enabled):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, leave=False)


def _every(epoch, every, epochs):
    """True after every ``every``-th epoch (counted from 1) and after the last."""
    return (epoch + 1) % every == 0 or epoch + 1 == epochs


def fit(model, data, config, *, resume=None, callback=None):
    """Train ``model`` on ``data`` (a :class:`resnet_edu.data.CIFAR10`) as ``config`` says.

    resume:   None, True (``out_dir/checkpoint.pt``) or a checkpoint path: continue from there.
    callback: called as ``callback(epoch, history)`` after each epoch's checkpoint is written.
    Returns the :class:`History`. Ctrl-C ends training cleanly: the history so far comes back with
    ``status == "interrupted"`` and the checkpoint of the last saved epoch stays on disk.
    """
    device, rank, world_size = distributed.setup(config.device)
    configure(device)
    main = rank == 0
    precision = choose_precision(device, config.precision)
    model, plain = prepare_model(model, config, device)
    train_loader, test_loader = make_loaders(data, config, device, rank, world_size)
    optimizer = make_optimizer(plain, config)
    scheduler = make_scheduler(optimizer, config, len(train_loader))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    history, start_epoch = History(), 0
    checkpoint_path = Path(config.out_dir) / CHECKPOINT_NAME if config.out_dir else None

    resume_path = _resume_path(resume, config)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        plain.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        history, start_epoch = History.from_dict(state["history"]), state["epoch"]
        if main and config.progress:
            print(f"Resumed from {resume_path} after epoch {start_epoch} of {config.epochs}.")
    else:
        seed_everything(config.seed + rank)
    if config.compile:
        history.warmup_seconds = warm_up(model, plain, train_loader, test_loader, criterion, device, precision,
                                         config)

    live_plot = None
    if main and config.live_plot:
        from .viz import LivePlot

        live_plot = LivePlot(title=f"{config.model}, {config.stem} stem, {precision}")
    history.status = "running"
    saved_epoch = start_epoch if resume_path is not None else None
    try:
        for epoch in range(start_epoch, config.epochs):
            train_loader.set_epoch(epoch)
            bar = _progress_bar(len(train_loader), f"epoch {epoch + 1}/{config.epochs}", main and config.progress)
            start = time.perf_counter()
            loss, acc, seen, lr = train_one_epoch(model, train_loader, optimizer, scheduler, scaler, criterion,
                                                  config, device, precision, epoch, bar)
            synchronize(device)
            seconds = time.perf_counter() - start
            if bar is not None:
                bar.close()
            loss_sum, correct, count = distributed.sum_across_ranks([loss * seen, acc * seen, seen], device)
            distributed.sync_buffers(plain)
            test_loss = test_acc = None
            if _every(epoch, config.eval_every, config.epochs):
                # Under torchrun every rank evaluates its own shard of the test set with the plain module
                # (DDP's forward would expect all ranks to run the same number of batches).
                test_loss, test_acc = evaluate(model if world_size == 1 else plain, test_loader, device, precision,
                                               config.channels_last, config.tta)
            history.append(epoch=epoch + 1, train_loss=loss_sum / count, train_acc=correct / count,
                           test_loss=test_loss, test_acc=test_acc, lr=lr,
                           seconds=seconds, images_per_second=count / seconds)
            if main and checkpoint_path is not None and _every(epoch, config.checkpoint_every, config.epochs):
                save_checkpoint(checkpoint_path, model=plain.state_dict(), optimizer=optimizer.state_dict(),
                                scheduler=scheduler.state_dict(), scaler=scaler.state_dict(),
                                rng=rng_state(), epoch=epoch + 1, history=history.as_dict(),
                                config=asdict(config))
                saved_epoch = epoch + 1
            if main:
                _report_epoch(history, config, live_plot)
            if callback is not None:
                callback(epoch + 1, history)
        history.status = "finished"
    except KeyboardInterrupt:
        history.status = "interrupted"
        if main:
            kept = f"the checkpoint {checkpoint_path} holds epoch {saved_epoch}" if checkpoint_path and saved_epoch \
                else "no checkpoint was written"
            print(f"\nInterrupted after {len(history)} finished epoch(s) of {config.epochs}; {kept}. "
                  f"Resume with resume=True (command line: --resume).")
    if main and config.out_dir:
        write_metrics(Path(config.out_dir) / METRICS_NAME, history, config, precision, device, world_size)
    return history


def _report_epoch(history, config, live_plot):
    evaluated = history.test_acc[-1] is not None
    if live_plot is not None and evaluated:
        live_plot.update(history)
    if config.progress or live_plot is None:
        i = -1
        test = f"test loss {history.test_loss[i]:.3f} acc {history.test_acc[i]:.3f}" if evaluated \
            else "test not evaluated"
        print(f"epoch {history.epoch[i]:>3}/{config.epochs}  train loss {history.train_loss[i]:.3f} "
              f"acc {history.train_acc[i]:.3f}  {test}  {history.seconds[i]:.1f} s "
              f"({history.images_per_second[i]:.0f} images/s)", flush=True)


def write_metrics(path, history, config, precision, device, world_size, **extra):
    """The final metrics as JSON: config, hardware, per-epoch history and the headline numbers."""
    summary = {
        "test_acc": history.final_test_acc(),
        "epochs_done": len(history), "status": history.status,
        "train_seconds": sum(history.seconds), "warmup_seconds": history.warmup_seconds,
        "precision": precision, "device": device_name(device),
        "world_size": world_size, "torch": torch.__version__, "config": asdict(config),
        "history": history.as_dict(), **extra,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    os.replace(tmp, path)
    return summary


def build_model(config, num_classes=10):
    """The model a config names, initialised from ``config.seed`` (same seed, same weights)."""
    seed_everything(config.seed)
    return build(config.model, num_classes=num_classes, stem=config.stem,
                 zero_init_residual=config.zero_init_residual)


if __name__ == "__main__":
    from .cli import main

    raise SystemExit(main())

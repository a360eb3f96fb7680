"""Train a ResNet on CIFAR-10: the configuration and its recipes, the optimiser and schedule, the
training loop, and evaluation. Read it top to bottom; :func:`fit` holds the whole loop, whose body
over the epochs is about 40 lines.

What the loop leaves to other modules: the device, the precision and torchrun's processes
(:mod:`resnet_edu.runtime`), batches that arrive on the device augmented and normalised
(:mod:`resnet_edu.loaders`), checkpoint files (:mod:`resnet_edu.checkpoint`), and what a learner
watches: progress bars, the epoch line, the live plot, the Ctrl-C message
(:mod:`resnet_edu.progress`). The command line is :mod:`resnet_edu.cli` (``python -m resnet_edu``).

Resuming restores model, optimiser, scheduler, gradient scaler, every random state and the epoch,
so an interrupted run with the device loader ends with exactly the weights of an uninterrupted one
(bit for bit on a CPU; on a GPU cuDNN's autotuned kernels make runs agree only to rounding). The
DataLoader baseline resumes too, but its worker processes draw new random seeds, so not exactly.
With ``compile=True`` one training step and one evaluation batch run before the clock starts, so compilation is reported
apart (``History.warmup_seconds``), not hidden in the first epoch.
"""

import json
import math
import random
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .files import atomic_write
from .loaders import AUGMENTATIONS, DeviceLoader, make_dataloader
from .metrics import logits_of
from .progress import Reporter
from .resnet import BUILDERS, CIFAR_BUILDERS, STEMS, build
from .runtime import (any_across_ranks, autocast, choose_precision, configure, device_name, digests_across_ranks,
                      setup, sum_across_ranks, sync_buffers, synchronize, weights_digest)

# ----------------------------------------------------------------------------- the configuration

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
    progress: bool = True  # tqdm progress bars and a line per epoch
    live_plot: bool = True  # a plot of loss and accuracy, redrawn in place in a notebook
    device: str = None  # None: resnet_edu.runtime.choose_device (cuda, mps, cpu)

    def __post_init__(self):
        problems = [f"{name} must be one of {allowed}; got {getattr(self, name)!r}"
                    for name, allowed in (("model", tuple(BUILDERS) + tuple(CIFAR_BUILDERS)), ("stem", STEMS),
                                          ("precision", PRECISIONS), ("loader", LOADERS), ("schedule", SCHEDULES),
                                          ("augment", AUGMENTATIONS))
                    if getattr(self, name) not in allowed]
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
            ("num_workers", "0 or more", self.num_workers >= 0),
            ("stem", "'cifar' for the paper's CIFAR-10 family (resnet20 ... plain110)",
             self.model not in CIFAR_BUILDERS or self.stem == "cifar")) if not ok]
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
    # The paper's CIFAR-10 recipe (He et al. 2015, section 4.2) as fit runs it, for the CIFAR-10
    # family of notebook 06: batches of 128, peak rate 0.1, weight decay 1e-4, crop and flip, no
    # label smoothing; fit's one-cycle schedule replaces the paper's two steps (a short run).
    "paper": TrainConfig(model="resnet20", stem="cifar", epochs=20, batch_size=128, lr=0.1, weight_decay=1e-4,
                         label_smoothing=0.0, warmup=0.15, augment="crop+flip"),
}


def recipe(name, **overrides):
    """A copy of RECIPES[name] with some fields changed, e.g. ``recipe("quick", out_dir="runs/q")``."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; choose one of {sorted(RECIPES)}")
    return replace(RECIPES[name], **overrides)


def seed_everything(seed):
    """Seed Python, NumPy and torch (CPU and every GPU): the same seed gives the same run."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(config, num_classes=10):
    """The model a config names, initialised from ``config.seed`` (same seed, same weights)."""
    seed_everything(config.seed)
    return build(config.model, num_classes=num_classes, stem=config.stem,
                 zero_init_residual=config.zero_init_residual)


# ----------------------------------------------------------------------------- the optimiser and the schedule

def make_optimizer(model, config):
    """SGD with Nesterov momentum; weight decay only on weights with more than one dimension.

    On a GPU the update of all tensors runs as one fused kernel instead of several per tensor.
    """
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]  # BN, biases
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    on_gpu = next(model.parameters()).device.type == "cuda"
    # fused=None lets PyTorch choose its default (a per-tensor loop) where no fused kernel exists
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=True,
                           fused=True if on_gpu else None)


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


# ----------------------------------------------------------------------------- the model and its batches

def prepare_model(model, config, device, world_size=1):
    """Move to the device in channels_last; SyncBatchNorm and DDP under torchrun; compile if asked.

    Returns (the model to call, the plain module): save, load and evaluate the plain module's
    weights; those of the compiled wrapper have names that start with ``_orig_mod.``.
    """
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    if world_size > 1 and config.sync_bn:
        if device.type != "cuda":
            raise ValueError("sync_bn (SyncBatchNorm) works only on GPUs in PyTorch; on CPUs each rank "
                             "keeps its own BatchNorm statistics. Leave out --sync-bn here.")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    plain = model
    if world_size > 1:
        model = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        model = torch.compile(model)
    return model, plain


def check_batch_size(config, train_images, world_size=1):
    """Raise a ValueError unless ``config.batch_size`` splits evenly over the ranks and leaves at
    least one full batch per epoch; returns the batch size of one rank."""
    if config.batch_size % world_size:
        raise ValueError(f"batch_size {config.batch_size} must divide evenly over {world_size} ranks")
    per_rank, images = config.batch_size // world_size, train_images // world_size
    if images < per_rank:
        where = "" if world_size == 1 else f" per rank ({world_size} ranks)"
        raise ValueError(f"batch_size {config.batch_size} leaves not one full batch per epoch: there are {images} "
                         f"training images{where}. Use a smaller batch_size or more images.")
    return per_rank


def make_loaders(data, config, device, rank=0, world_size=1):
    """Training and test loaders of the kind ``config.loader`` names, sharded over the ranks. Both
    kinds yield batches on ``device``, normalised, in the memory layout the config asks for."""
    per_rank = check_batch_size(config, len(data.train_labels), world_size)
    common = dict(device=device, channels_last=config.channels_last, seed=config.seed, rank=rank,
                  world_size=world_size)
    if config.loader == "device":
        return (DeviceLoader(data.train_images, data.train_labels, per_rank, train=True,
                             augment=config.augment, **common),
                DeviceLoader(data.test_images, data.test_labels, config.eval_batch_size, train=False, **common))
    return (make_dataloader(data.train_images, data.train_labels, per_rank, train=True,
                            augment=config.augment, num_workers=config.num_workers, **common),
            make_dataloader(data.test_images, data.test_labels, config.eval_batch_size, train=False,
                            num_workers=config.num_workers, **common))


# ----------------------------------------------------------------------------- the training loop

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
    unfinished_seconds: float = 0.0  # training time of an epoch that Ctrl-C cut short (not in the lists)
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


def fit(model, data, config, *, resume=None, callback=None, how_to_resume=None):
    """Train ``model`` on ``data`` (a :class:`resnet_edu.dataset.CIFAR10`) as ``config`` says.

    resume:   None, True (``out_dir/checkpoint.pt``) or a checkpoint path: continue from there.
    callback: called as ``callback(epoch, history)`` after each epoch's checkpoint is written.
    how_to_resume: the words the Ctrl-C message uses for continuing (default ``fit(..., resume=True)``;
              the command line passes its own command).
    Returns the :class:`History`. Ctrl-C ends training cleanly: the history so far comes back with
    ``status == "interrupted"`` and the checkpoint of the last saved epoch stays on disk.
    """
    device, rank, world_size = setup(config.device)
    configure(device)
    precision = choose_precision(device, config.precision)
    model, plain = prepare_model(model, config, device, world_size)
    train_loader, test_loader = make_loaders(data, config, device, rank, world_size)
    optimizer = make_optimizer(plain, config)
    scheduler = make_scheduler(optimizer, config, len(train_loader))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")  # a no-op unless fp16
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    parts = dict(model=plain, optimizer=optimizer, scheduler=scheduler, scaler=scaler)  # a checkpoint's state
    checkpoint = checkpoint_path(config)
    report = Reporter(config, precision, checkpoint, enabled=rank == 0, how_to_resume=how_to_resume)
    history = start_or_resume(resume_path(resume, config), parts, config.seed + rank, report)
    check_every = 1 if device.type == "cpu" else 25  # a NaN check waits for the GPU: there, every 25 steps
    history.status = "running"
    start = None  # when the epoch under way started
    try:
        if config.compile:
            history.warmup_seconds = warm_up(model, plain, train_loader, test_loader, criterion, precision, config)
        for epoch in range(len(history), config.epochs):
            model.train()
            train_loader.set_epoch(epoch)
            loss_sums = torch.zeros(len(train_loader), device=device)  # per step; on the device, no waiting
            correct = torch.zeros((), dtype=torch.int64, device=device)
            seen, start = 0, time.perf_counter()
            report.start_epoch(epoch, len(train_loader))
            for step, (images, labels) in enumerate(train_loader):
                with autocast(device, precision):
                    logits = model(images)
                    loss = criterion(logits, labels)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # fp16: the loss scaled up so that small gradients survive
                scaler.step(optimizer)  # fp16: unscales, and skips the step if a gradient overflowed
                scaler.update()
                lr = optimizer.param_groups[0]["lr"]  # the rate this step used
                scheduler.step()
                loss_sums[step] = loss.detach() * len(labels)
                correct += (logits.argmax(1) == labels).sum()
                seen += len(labels)
                if (step + 1) % check_every == 0 or step + 1 == len(train_loader):
                    stop_if_non_finite(loss_sums[:step + 1], epoch, config, device)
                report.step()
            synchronize(device)
            seconds = time.perf_counter() - start
            loss_sum, correct, seen = sum_across_ranks([loss_sums.sum(), correct, seen], device)
            sync_buffers(plain)
            test_loss = test_acc = None
            if every(epoch, config.eval_every, config.epochs):
                # Under torchrun each rank evaluates its shard of the test set with the plain module
                # (DDP's forward would expect every rank to run the same number of batches).
                test_loss, test_acc = evaluate(model if world_size == 1 else plain, test_loader, precision, config.tta)
            history.append(epoch=epoch + 1, train_loss=loss_sum / seen, train_acc=correct / seen, test_loss=test_loss,
                           test_acc=test_acc, lr=lr, seconds=seconds, images_per_second=seen / seconds)
            if rank == 0 and checkpoint and every(epoch, config.checkpoint_every, config.epochs):
                save_checkpoint(checkpoint, **{name: part.state_dict() for name, part in parts.items()},
                                rng=rng_state(), epoch=epoch + 1, history=history.as_dict(), config=asdict(config),
                                train_images=len(data.train_labels))
                report.saved(epoch + 1)
            start = None
            report.end_epoch(history)
            if callback is not None:
                callback(epoch + 1, history)
        history.status = "finished"
    except KeyboardInterrupt:
        history.status = "interrupted"
        history.unfinished_seconds = time.perf_counter() - start if start is not None else 0.0
        report.interrupted(history)
    finally:
        report.close()
    # Interrupted ranks may stand at different points: only a finished run gathers every rank's digest.
    digests = digests_across_ranks(plain) if history.status == "finished" else [weights_digest(plain)]
    if rank == 0 and config.out_dir:
        write_metrics(Path(config.out_dir) / METRICS_NAME, history, config, precision, device, data, digests)
    return history


def every(epoch, interval, epochs):
    """True after every ``interval``-th epoch (counted from 1) and after the last."""
    return (epoch + 1) % interval == 0 or epoch + 1 == epochs


def checkpoint_path(config):
    """Where the run's checkpoint goes: ``out_dir/checkpoint.pt``, or None when out_dir is not set."""
    return Path(config.out_dir) / CHECKPOINT_NAME if config.out_dir else None


def resume_path(resume, config):
    """The checkpoint to resume from: None, ``out_dir/checkpoint.pt`` for True, or the path given."""
    if resume in (None, False):
        return None
    if resume is True:
        if not config.out_dir:
            raise ValueError("resume=True reads checkpoint.pt in out_dir, but out_dir is not set: set out_dir "
                             "to the run's folder, or pass the checkpoint's path as resume")
        return checkpoint_path(config)
    return Path(resume)


def start_or_resume(path, parts, seed, report):
    """A fresh History with every random generator seeded, or the History of the checkpoint at
    ``path`` with ``parts`` (model, optimiser, scheduler, scaler) and the random states restored."""
    if path is None:
        seed_everything(seed)
        return History()
    state = load_checkpoint(path)
    for name, part in parts.items():
        part.load_state_dict(state[name])
    set_rng_state(state["rng"])
    history = History.from_dict(state["history"])
    report.resumed(path, len(history))
    return history


def stop_if_non_finite(loss_sums, epoch, config, device):
    """Raise :class:`NonFiniteLossError` if a step's loss was NaN or infinite here or on another rank
    (all ranks stop together). Reading the losses waits for the device: the loop calls it sparingly."""
    bad = (~torch.isfinite(loss_sums)).nonzero().flatten().tolist()
    if not any_across_ranks(bool(bad), device):
        return
    where = checkpoint_path(config) or "none (out_dir not set)"
    what = (f"{loss_sums[bad[0]].item()} at epoch {epoch + 1}, step {bad[0] + 1}" if bad
            else "non-finite on another rank")
    raise NonFiniteLossError(
        f"the loss became {what} (checked after step {len(loss_sums)}); training stopped. The last good "
        f"checkpoint: {where}. Usual causes: a learning rate too high (lr={config.lr}), fp16's small range, "
        f"or broken input data. Lower lr, or try precision='bf16' or 'fp32', then resume or start again.")


# ----------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model, loader, precision="fp32", tta=False):
    """Loss (without label smoothing) and accuracy over every image of the loader, all ranks summed.

    ``loader`` is one of :mod:`resnet_edu.loaders`' loaders (batches arrive on ``loader.device``).
    """
    model.eval()
    loss_sum = torch.zeros((), device=loader.device)  # float32: Apple's MPS has no float64
    correct = torch.zeros((), device=loader.device, dtype=torch.int64)
    count = 0
    for images, labels in loader:
        with autocast(loader.device, precision):
            logits = logits_of(model, images, tta)
        loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        count += len(labels)
    loss_sum, correct, count = sum_across_ranks([loss_sum, correct, count], loader.device)
    return loss_sum / max(count, 1), correct / max(count, 1)


def warm_up(model, plain, train_loader, test_loader, criterion, precision, config):
    """Run one training step's forward and backward and one evaluation batch, so that torch.compile
    compiles before the clock starts; returns the seconds it took. The weights, BatchNorm statistics
    and gradients are left exactly as they were (the optimiser never steps)."""
    saved = {name: tensor.clone() for name, tensor in plain.state_dict().items()}
    device = train_loader.device
    start = time.perf_counter()
    try:
        model.train()
        images, labels = next(iter(train_loader))
        with autocast(device, precision):
            criterion(model(images), labels).backward()
        model.eval()
        with torch.no_grad(), autocast(device, precision):
            logits_of(model, next(iter(test_loader))[0], config.tta)
        synchronize(device)
    finally:  # also after Ctrl-C: the model is left as it was
        plain.load_state_dict(saved)
        plain.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def write_metrics(path, history, config, precision, device, data, digests):
    """``metrics.json``: the headline numbers, the hardware, the data, the config and the per-epoch
    history; under torchrun also every rank's weight digest (equal digests: identical weights)."""
    summary = {
        "test_acc": history.final_test_acc(), "epochs_done": len(history), "status": history.status,
        "train_seconds": sum(history.seconds) + history.unfinished_seconds, "warmup_seconds": history.warmup_seconds,
        "precision": precision, "device": device_name(device), "world_size": len(digests),
        "torch": torch.__version__, "data": data.source, "train_images": len(data.train_labels),
        "test_images": len(data.test_labels), "weight_digests": digests, "ranks_identical": len(set(digests)) == 1,
        "config": asdict(config), "history": history.as_dict(),
    }
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(summary, indent=2)))
    return summary

"""The speed ladder: training images per second as each speed-up is switched on, one rung at a time.

Each rung keeps the rungs above it and adds one thing:

1. ``DataLoader, fp32``       the ordinary baseline: per-image transforms in worker processes
2. ``+ data on the device``   the whole uint8 set on the device, augmented there in batches
3. ``+ channels_last``        NHWC memory layout, which GPU tensor cores and oneDNN prefer
4. ``+ mixed precision``      bf16 (or fp16 with a scaler on older GPUs) autocast
5. ``+ torch.compile``        kernels fused by the compiler

On a CPU the default ladder leaves out rungs that make no sense there: mixed precision where the
processor has no native bf16, and torch.compile, whose compilation takes minutes on a laptop CPU
for little gain. Notebook 05 and the benchmarks call :func:`speed_ladder`.

Each rung is measured by the trainer itself: :func:`measure_rung` asks :func:`resnet_edu.train.fit`
for ``1 + repeats`` epochs of ``steps`` steps and reads the images per second of all but the first,
which pays for warming up.
"""

import statistics

import torch

from .dataset import CIFAR10
from .runtime import choose_device, choose_precision, device_name, precision_label
from .train import TrainConfig, build_model, fit

RUNGS = {
    "DataLoader, fp32": dict(loader="dataloader", channels_last=False, precision="fp32", compile=False),
    "+ data on the device": dict(loader="device", channels_last=False, precision="fp32", compile=False),
    "+ channels_last": dict(loader="device", channels_last=True, precision="fp32", compile=False),
    "+ mixed precision": dict(loader="device", channels_last=True, precision="auto", compile=False),
    "+ torch.compile": dict(loader="device", channels_last=True, precision="auto", compile=True),
}


def default_rungs(device):
    """All rungs on a CUDA GPU; elsewhere, the rungs that can help there (see the module docstring)."""
    device = torch.device(device)
    if device.type == "cuda":
        return list(RUNGS)
    rungs = list(RUNGS)[:3]
    if choose_precision(device) != "fp32":
        rungs.append("+ mixed precision")
    return rungs


def synthetic_data(images, seed=0):
    """Random uint8 images and labels: throughput does not depend on what the pixels show."""
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (images,), generator=generator)
    return CIFAR10(pixels, labels, pixels[:1], labels[:1], source="synthetic")


def measure_rung(data, settings, *, model="resnet18", stem="cifar", batch_size=256, steps=20, repeats=1,
                 device=None, num_workers=2, seed=0):
    """Training images per second with ``settings`` (a RUNGS entry), measured by :func:`fit` over
    ``repeats`` epochs of ``steps`` steps after one warm-up epoch (memory allocation, kernel choice,
    worker start-up; compilation runs before the clock in any case).

    Returns a dict: the settings, the precision used, ``images_per_second`` (the median of the timed
    epochs) and ``spread`` (each timed epoch's figure).
    """
    device = choose_device(device)
    epochs = 1 + repeats
    config = TrainConfig(model=model, stem=stem, batch_size=batch_size, epochs=epochs, eval_every=epochs,
                         lr=0.01, warmup=0.0, seed=seed, num_workers=num_workers, device=str(device),
                         progress=False, live_plot=False, **settings)
    sample = data.subset(train=steps * batch_size, test=1, seed=seed)  # the test image: fit evaluates once
    history = fit(build_model(config, num_classes=len(data.classes)), sample, config)
    speeds = history.images_per_second[1:]
    return dict(settings, precision=precision_label(device, choose_precision(device, config.precision)),
                images_per_second=statistics.median(speeds), spread=speeds, batch_size=batch_size, steps=steps,
                model=model, stem=stem, device=device_name(device))


def speed_ladder(data=None, *, model="resnet18", stem="cifar", batch_size=256, steps=20, repeats=1, device=None,
                 rungs=None, num_workers=2, seed=0, verbose=True):
    """Measure each rung (default: :func:`default_rungs` for the device); returns a list of dicts.

    data: a :class:`resnet_edu.dataset.CIFAR10` (its training images are used), or None for synthetic
    images. Each dict has ``rung``, ``images_per_second``, ``speedup`` (over the first rung) and
    what :func:`measure_rung` returns.
    """
    device = choose_device(device)
    data = data if data is not None else synthetic_data(steps * batch_size, seed)
    rows = []
    for rung in rungs or default_rungs(device):
        row = dict(rung=rung, **measure_rung(data, RUNGS[rung], model=model, stem=stem, batch_size=batch_size,
                                             steps=steps, repeats=repeats, device=device,
                                             num_workers=num_workers, seed=seed))
        row["speedup"] = row["images_per_second"] / (rows[0] if rows else row)["images_per_second"]
        rows.append(row)
        if verbose:
            print(f"{rung:<22} {row['images_per_second']:8.0f} images/s  {row['speedup']:.2f}x", flush=True)
    return rows


def ladder_table(rows):
    """The ladder as a Markdown table (rung, loader, layout, precision, compile, images/s with the
    min-max over repeats, speed-up)."""
    lines = ["| rung | loader | channels_last | precision | compile | images/s (min-max) | speed-up |",
             "|---|---|---|---|---|---:|---:|"]
    for r in rows:
        spread = f" ({min(r['spread']):.0f}-{max(r['spread']):.0f})" if len(r["spread"]) > 1 else ""
        lines.append(f"| {r['rung']} | {r['loader']} | {r['channels_last']} | {r['precision']} | "
                     f"{r['compile']} | {r['images_per_second']:.0f}{spread} | {r['speedup']:.2f}x |")
    return "\n".join(lines)

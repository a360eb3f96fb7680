"""Does the course's trainer cost speed? Its training throughput against a plain PyTorch loop.

Both train a ResNet18 on the same images with the same batch size, precision, memory format and
optimiser (SGD with Nesterov momentum), one epoch from fresh weights each: the trainer is
``resnet_edu.train.fit`` with the recipe's settings (augmentation off, so the work is identical);
the plain loop is what a tutorial writes, with torchvision's resnet18 and the batches normalised on
the device beforehand. Timed in alternation (trainer, plain, plain, trainer, ...).
"""

import statistics
import time

import torch
import torch.nn.functional as F
from parity import torchvision_model

from resnet_edu.loaders import normalize
from resnet_edu.runtime import autocast, choose_precision, synchronize
from resnet_edu.train import build_model, fit, recipe


def plain_loop_seconds(data, config, device):
    """Seconds for one epoch of the plain loop over ``data``'s training images."""
    torch.manual_seed(config.seed)
    model = torchvision_model(config.model, config.stem, len(data.classes))
    model = model.to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum, nesterov=True,
                                weight_decay=config.weight_decay)
    images = normalize(data.train_images.to(device)).contiguous(memory_format=torch.channels_last)
    labels = data.train_labels.to(device)
    precision = choose_precision(device, config.precision)
    size = config.batch_size
    synchronize(device)
    start = time.perf_counter()
    for i in range(0, len(labels) - size + 1, size):  # every full batch, as the trainer's drop_last
        x, y = images[i:i + size], labels[i:i + size]
        with autocast(device, precision):
            loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return time.perf_counter() - start


def trainer_seconds(data, config):
    """Seconds of the trainer's one epoch (its own clock: the training loop, without evaluation)."""
    history = fit(build_model(config, num_classes=len(data.classes)), data, config)
    return history.seconds[0]


def compare(data, name, device, repeats=4, **overrides):
    """Images per second of both, medians over ``repeats`` alternating pairs, and their ratio."""
    config = recipe(name, epochs=1, augment="none", device=str(device), progress=False, live_plot=False,
                    **overrides)
    images = len(data.train_labels) // config.batch_size * config.batch_size
    seconds = {"trainer": [], "plain loop": []}
    order = ["trainer", "plain loop"]
    for _ in range(repeats):
        for which in order:
            seconds[which].append(trainer_seconds(data, config) if which == "trainer" else
                                  plain_loop_seconds(data, config, device))
        order.reverse()
    speed = {which: statistics.median(images / s for s in times) for which, times in seconds.items()}
    return {"recipe": name, "stem": config.stem, "batch_size": config.batch_size, "images": images,
            "precision": choose_precision(device, config.precision), "repeats": repeats,
            "trainer_images_per_s": speed["trainer"], "plain_loop_images_per_s": speed["plain loop"],
            "all_seconds": seconds, "ratio": speed["trainer"] / speed["plain loop"]}

"""Is resnet_edu as fast as torchvision? Training-step throughput and peak memory, same work, same run.

For each model configuration both implementations get the same weights, the same batch, the same
precision and memory format, and are timed in alternation (ours, theirs, theirs, ours, ...) so
that a drift in clock speed or background load hits both alike. Warm-up steps are excluded; the
figure is the median over repeats, and the spread (min and max over repeats) is reported.
"""

import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from resnet_edu.resnet import build
from resnet_edu.runtime import choose_precision, configure

# (model, stem, image size, classes): the three configurations the course uses.
CONFIGS = [
    ("resnet18", "imagenet", 224, 1000),
    ("resnet18", "cifar", 32, 10),
    ("resnet50", "imagenet", 224, 1000),
]
BATCH_SIZES = {"cuda": {224: 256, 32: 512}, "cpu": {224: 16, 32: 64}}
PEAK_METHOD = ("the fastest FLOP rate of square matrix products (three sizes) and of a wide 3x3 "
               "convolution's training step on the same device and precision, FLOPs counted as for the models")


def torchvision_model(name, stem, num_classes):
    """torchvision's model; for the CIFAR stem, adapted the usual way (3x3 conv1, no max-pool)."""
    model = getattr(torchvision.models, name)(num_classes=num_classes)
    if stem == "cifar":
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    return model


def make_model(implementation, name, stem, num_classes):
    if implementation == "resnet_edu":
        return build(name, stem=stem, num_classes=num_classes)
    return torchvision_model(name, stem, num_classes)


def model_pair(name, stem, num_classes):
    """(resnet_edu's, torchvision's) with identical weights."""
    ours = make_model("resnet_edu", name, stem, num_classes)
    theirs = make_model("torchvision", name, stem, num_classes)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


def autocast_dtype(device):
    """The trainer's precision on a GPU (resnet_edu.train.choose_precision); fp32 (None) on a CPU,
    the precision every CPU has."""
    if device.type != "cuda":
        return None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(choose_precision(device))


class TrainStep:
    """One SGD step of a model on a fixed batch, in channels_last with optional autocast."""

    def __init__(self, model, images, labels, device):
        self.device = device
        self.dtype = autocast_dtype(device)
        self.model = model.to(device, memory_format=torch.channels_last).train()
        self.images = images.to(device, memory_format=torch.channels_last)
        self.labels = labels.to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)

    def __call__(self):
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype is not None):
            loss = F.cross_entropy(self.model(self.images), self.labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(step, device, steps):
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    return (time.perf_counter() - start) / steps


def flops_per_step(step):
    """FLOPs of one training step (forward and backward), counted by running it."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def peak_memory_cuda(step, device):
    torch.cuda.reset_peak_memory_stats(device)
    step()
    synchronize(device)
    return torch.cuda.max_memory_allocated(device)


def peak_memory_cpu(name, stem, image_size, num_classes, batch_size, which):
    """Peak resident memory of a fresh process while it builds one model and runs two steps,
    above what the process held before (PyTorch keeps no peak counter for CPU tensors). Linux:
    writing 5 to /proc/self/clear_refs resets the peak (VmHWM) to the current size (VmRSS)."""
    code = f"""
import sys, torch
sys.path.insert(0, {str(Path(__file__).parent)!r})
from parity import TrainStep, make_model

def status_kib(field):
    line = next(l for l in open("/proc/self/status") if l.startswith(field))
    return int(line.split()[1])

torch.manual_seed(0)
x = torch.randn({batch_size}, 3, {image_size}, {image_size})
y = torch.randint(0, {num_classes}, ({batch_size},))
open("/proc/self/clear_refs", "w").write("5")
before = status_kib("VmRSS:")
model = make_model({which!r}, {name!r}, {stem!r}, {num_classes})
step = TrainStep(model, x, y, torch.device("cpu"))
step(); step()
print((status_kib("VmHWM:") - before) * 1024)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1])


def measure_config(name, stem, image_size, num_classes, device, repeats, steps, warmup,
                   batch_size=None):
    """Throughput (images/s) and peak memory of resnet_edu and torchvision on one configuration."""
    batch_size = batch_size or BATCH_SIZES[device.type][image_size]
    torch.manual_seed(0)
    ours, theirs = model_pair(name, stem, num_classes)
    images = torch.randn(batch_size, 3, image_size, image_size)
    labels = torch.randint(0, num_classes, (batch_size,))
    steps_by_impl = {"resnet_edu": TrainStep(ours, images, labels, device),
                     "torchvision": TrainStep(theirs, images, labels, device)}

    for step in steps_by_impl.values():
        for _ in range(warmup):
            step()
    seconds = {impl: [] for impl in steps_by_impl}
    order = list(steps_by_impl)
    for _ in range(repeats):
        for impl in order:
            seconds[impl].append(time_steps(steps_by_impl[impl], device, steps))
        order.reverse()  # ABBA: neither implementation always runs first

    result = {"model": name, "stem": stem, "image_size": image_size, "batch_size": batch_size,
              "device": device.type, "precision": str(autocast_dtype(device) or "float32")}
    for impl, step in steps_by_impl.items():
        throughput = sorted(batch_size / s for s in seconds[impl])
        memory = (peak_memory_cuda(step, device) if device.type == "cuda" else
                  peak_memory_cpu(name, stem, image_size, num_classes, batch_size, impl))
        result[impl] = {
            "images_per_s": statistics.median(throughput),
            "images_per_s_min": throughput[0],
            "images_per_s_max": throughput[-1],
            "peak_memory_bytes": memory,
        }
    result["speed_ratio"] = result["resnet_edu"]["images_per_s"] / result["torchvision"]["images_per_s"]
    # Both took the same SGD steps on the same batch from the same weights: equal weights now show that
    # the timings compared the same work (bit for bit on a CPU; a GPU's kernels may round differently).
    result["max_weight_difference"] = max((a.float() - b.float()).abs().max().item() for a, b in
                                          zip(ours.state_dict().values(), theirs.state_dict().values()))
    result["train_step_flops_per_image"] = flops_per_step(steps_by_impl["resnet_edu"]) / batch_size
    return result


def measured_peak_flops(device, dtype, repeats=5):
    """The fastest FLOP rate this device reached on large regular work in ``dtype``: square matrix
    products of three sizes, and a training step (forward and backward) of a wide 3x3 convolution.
    FLOPs are counted as the models' are (FlopCounterMode: 2 per multiply-accumulate), so a
    convolution that does fewer multiplications than it is credited with (Winograd) raises this
    peak as much as it raises the models' rates. Each figure is the best of ``repeats`` timings."""
    sizes = (1024, 2048, 4096) if device.type == "cpu" else (4096, 8192, 16384)
    matrices = [torch.randn(n, n, device=device, dtype=dtype) for n in sizes]
    work = [lambda m=m: m @ m for m in matrices]
    channels, side, batch = (256, 16, 16) if device.type == "cpu" else (512, 28, 256)
    conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False).to(device, dtype, memory_format=torch.channels_last)
    x = torch.randn(batch, channels, side, side, device=device, dtype=dtype).to(memory_format=torch.channels_last)
    x.requires_grad_(True)
    work.append(lambda: conv(x).sum().backward())
    best = 0.0
    for step in work:
        flops = flops_per_step(step)  # also the warm-up
        iterations = max(1, round(1e10 / flops)) if device.type == "cpu" else max(1, round(2e13 / flops))
        seconds = min(time_steps(step, device, iterations) for _ in range(repeats))
        best = max(best, flops / seconds)
    return best


def run(devices, repeats, steps, warmup, configs=CONFIGS, batch_size=None):
    results = []
    for device in devices:
        configure(device)
        dtype = autocast_dtype(device) or torch.float32
        peak = measured_peak_flops(device, dtype)
        for name, stem, image_size, num_classes in configs:
            r = measure_config(name, stem, image_size, num_classes, device, repeats, steps, warmup,
                               batch_size)
            achieved = r["train_step_flops_per_image"] * r["resnet_edu"]["images_per_s"]
            r["achieved_flops_per_s"] = achieved
            r["peak_flops_per_s"] = peak
            r["fraction_of_peak"] = achieved / peak
            results.append(r)
            print(f"{device.type} {name}/{stem}@{image_size}: resnet_edu "
                  f"{r['resnet_edu']['images_per_s']:.1f} img/s, torchvision "
                  f"{r['torchvision']['images_per_s']:.1f} img/s, ratio {r['speed_ratio']:.3f}",
                  flush=True)
    return results


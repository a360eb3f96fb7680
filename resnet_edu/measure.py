"""Measure a model: parameter and MAC counts per stage, a shape trace, and torchvision parity.

MACs (multiply-accumulates) are counted by running the model under
``torch.utils.flop_counter.FlopCounterMode``, which counts the convolutions and matrix products
that actually execute, not by formulas written by hand. One MAC is two FLOPs; torchvision's model
documentation lists MACs under the heading "GFLOPS" (1.81 for ResNet18 at 224x224).
"""

import torch
from torch.utils.flop_counter import FlopCounterMode

from .resnet import load_checked

STAGES = ("stem", "layer1", "layer2", "layer3", "layer4", "head")
_STEM = ("conv1", "bn1", "relu", "maxpool")
_HEAD = ("avgpool", "fc")


def _stage_of(name):
    """The stage a top-level child belongs to: conv1 -> 'stem', layer2 -> 'layer2', fc -> 'head'."""
    top = name.split(".")[0]
    if top in _STEM:
        return "stem"
    if top in _HEAD:
        return "head"
    return top


def _example_input(model, image_size, batch_size=1):
    parameter = next(model.parameters())
    return torch.zeros(batch_size, 3, image_size, image_size, dtype=parameter.dtype,
                       device=parameter.device)


def on_meta(build, *args, **kwargs):
    """``build(*args, **kwargs)`` on PyTorch's ``meta`` device: every shape and no values, built in
    no time. Counting parameters and MACs and tracing shapes need no more."""
    with torch.device("meta"):
        return build(*args, **kwargs)


def count_parameters(model):
    """Number of trainable numbers in the model (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())


def parameters_by_stage(model):
    """{'stem': ..., 'layer1': ..., ..., 'head': ...}; the values add up to count_parameters."""
    counts = dict.fromkeys(STAGES, 0)
    for name, p in model.named_parameters():
        counts[_stage_of(name)] += p.numel()
    return counts


@torch.no_grad()
def _flop_counts(model, image_size):
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter:
            model(_example_input(model, image_size))
    finally:
        model.train(was_training)
    return counter


def count_macs(model, image_size=224):
    """Multiply-accumulates for one image of image_size x image_size, measured by running it."""
    return _flop_counts(model, image_size).get_total_flops() // 2


def macs_by_stage(model, image_size=224):
    """MACs of one image per stage (stem, layer1..4, head); the values add up to count_macs."""
    per_module = _flop_counts(model, image_size).get_flop_counts()
    root = type(model).__name__
    macs = dict.fromkeys(STAGES, 0)
    for name, ops in per_module.items():
        parts = name.split(".")
        if parts[0] == root and len(parts) == 2:  # the model's direct children
            macs[_stage_of(parts[1])] += sum(ops.values()) // 2
    return macs


@torch.no_grad()
def shape_trace(model, image_size=224, batch_size=1):
    """[(name, output shape)] for each part of the stem, each stage, the pool and the classifier."""
    trace = []
    hooks = [
        child.register_forward_hook(lambda m, i, out, name=name: trace.append((name, tuple(out.shape))))
        for name, child in model.named_children()
    ]
    was_training = model.training
    model.eval()
    try:
        model(_example_input(model, image_size, batch_size))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return trace


def stage_table(model, image_size=224):
    """One row per stage: blocks, output channels, output resolution, parameters, MACs."""
    shapes = dict(shape_trace(model, image_size))
    shapes["stem"] = shapes["maxpool"]
    shapes["head"] = shapes["fc"]
    params = parameters_by_stage(model)
    macs = macs_by_stage(model, image_size)
    rows = []
    for stage in STAGES:
        shape = shapes[stage]
        blocks = len(getattr(model, stage)) if stage.startswith("layer") else 0
        rows.append({
            "stage": stage,
            "blocks": blocks,
            "channels": shape[1],
            "resolution": f"{shape[2]}x{shape[3]}" if len(shape) == 4 else "-",
            "parameters": params[stage],
            "MACs": macs[stage],
        })
    return rows


def format_table(rows):
    """A list of dicts with the same keys as an aligned plain-text table (numbers with commas)."""
    def cell(value):
        return f"{value:,}" if isinstance(value, int) else str(value)

    columns = list(rows[0])
    cells = [[cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


def copy_weights(source, target):
    """Copy every parameter and buffer from source into target, checking each key and shape first
    (:func:`resnet_edu.resnet.load_checked`): a ValueError lists where the two models differ."""
    return load_checked(target, source.state_dict(), "the source model's weights")


@torch.no_grad()
def compare_with_torchvision(model, name, image_size=224, batch_size=2, seed=0):
    """Copy torchvision's ``name`` model's weights into ``model`` and compare outputs (eval mode).

    Returns a dict with the parameter counts of both and the largest absolute output difference.
    The torchvision model is built with ``model``'s number of classes and random initial weights
    (no download): identical code gives identical outputs for any weights.
    """
    import torchvision

    torch.manual_seed(seed)
    reference = getattr(torchvision.models, name)(num_classes=model.fc.out_features)
    copy_weights(reference, model)
    device = next(model.parameters()).device
    reference = reference.to(device)
    x = torch.randn(batch_size, 3, image_size, image_size).to(device)
    model.eval(), reference.eval()
    out, expected = model(x), reference(x)
    return {
        "model": name,
        "parameters": count_parameters(model),
        "torchvision_parameters": count_parameters(reference),
        "max_abs_diff": (out - expected).abs().max().item(),
        "identical": torch.equal(out, expected),
    }


# Sweeps: one measurement over several depths and seeds, and the tables that show it (notebook 01).

def medians_over_seeds(measure, steps, seeds):
    """Run ``measure(step, seed)`` (which returns a tuple of numbers) for every step and seed.

    Returns one list per number that ``measure`` returns, holding, for each step, the median of
    that number over the seeds: ``first, last = medians_over_seeds(ends, [8, 16], [0, 1, 2])``.
    """
    import statistics

    rows = []
    for step in steps:
        runs = [measure(step, seed) for seed in seeds]
        rows.append([statistics.median(run[i] for run in runs) for i in range(len(runs[0]))])
    return [list(column) for column in zip(*rows)]


def growth_per_step(values, steps):
    """From each step to the next, the factor per unit step: (next / this) ** (1 / steps between).

    With steps = depths in blocks, this is the factor by which each added block multiplies a value.
    """
    return [(b / a) ** (1 / (n - m)) for a, b, m, n in zip(values, values[1:], steps, steps[1:])]


def sweep_table(steps, columns, step_name="N blocks", digits=3):
    """An aligned table with one row per step and one column per named list of numbers (each printed
    to ``digits`` significant figures)."""
    rows = [{step_name: step, **{name: f"{values[i]:.{digits}g}" for name, values in columns.items()}}
            for i, step in enumerate(steps)]
    return format_table(rows)


def growth_table(steps, columns, name_heading=""):
    """For each named list of numbers over ``steps``, a row of :func:`growth_per_step` factors, one
    column per pair of neighbouring steps ("8 -> 16": x1.42)."""
    rows = [{name_heading: name, **{f"{m} -> {n}": f"x{factor:.2f}"
                                   for m, n, factor in zip(steps, steps[1:], growth_per_step(values, steps))}}
            for name, values in columns.items()]
    return format_table(rows)


# Pooling: what a pool and a classifier make of the map that images of each size leave (notebook 03).

class _Stop(Exception):
    pass


@torch.no_grad()
def feature_map_sides(model, image_sizes):
    """{image size: side of the map that reaches ``model.avgpool``} for square images, traced on
    PyTorch's ``meta`` device (shapes only, no computation)."""
    import copy

    meta = copy.deepcopy(model).to("meta").eval()
    seen = []

    def record(module, inputs):
        seen.append(inputs[0].shape[-1])
        raise _Stop  # the pool itself need not run

    hook = meta.avgpool.register_forward_pre_hook(record)
    try:
        for size in image_sizes:
            try:
                meta(torch.empty(1, meta.conv1.in_channels, size, size, device="meta"))
            except _Stop:
                pass
    finally:
        hook.remove()
    return dict(zip(image_sizes, seen))


WHOLE_MAP = "the mean of the whole map"


@torch.no_grad()
def pool_outcome(pool, classifier, side, channels=512):
    """In words, what ``pool`` and then ``classifier`` make of a random ``side`` x ``side`` map."""
    features = torch.randn(1, channels, side, side)
    try:
        pooled = torch.flatten(pool(features), 1)
    except RuntimeError:
        return "RuntimeError in the pool: the window is larger than the map"
    try:
        classifier(pooled)
    except RuntimeError:
        return f"{pooled.shape[1]:,} numbers: RuntimeError in the classifier ({classifier.in_features} inputs)"
    if torch.allclose(pooled, features.mean((-2, -1)), atol=1e-6):
        return WHOLE_MAP
    window = getattr(pool, "kernel_size", None)
    if isinstance(window, int) and torch.allclose(pooled, features[..., :window, :window].mean((-2, -1)), atol=1e-6):
        return f"no error, but the mean of the top-left {window}x{window} only"
    return "something else"


def pooling_by_image_size(pool, model, largest=512, step=32):
    """Rows for :func:`format_table`: for square images of 32 to ``largest`` pixels, in ranges of
    ``step`` sizes (32, 33-64, ...), the side of the map that ``model``'s stages leave, and what
    ``pool`` followed by ``model.fc`` makes of it. Neighbouring ranges with the same outcome share a row.

    Each range is traced at both ends; the map's side grows with the image's, so the two ends bound it.
    """
    import itertools

    ranges = [(max(32, top - step + 1), top) for top in range(32, largest + 1, step)]
    sides = feature_map_sides(model, sorted({size for pair in ranges for size in pair}))
    outcomes = [(low, top, sides[low], sides[top], pool_outcome(pool, model.fc, sides[low], model.fc.in_features))
                for low, top in ranges]
    rows = []
    for outcome, group in itertools.groupby(outcomes, key=lambda row: row[-1]):
        group = list(group)
        low, top, first, last = group[0][0], group[-1][1], group[0][2], group[-1][3]
        rows.append({"image sizes": f"{low}-{top}",
                     "layer4 map": f"{first}x{first}" + ("" if first == last else f" to {last}x{last}"),
                     "what the pool and the classifier give": outcome})
    return rows


def sizes_pooled_whole(pool, model):
    """The image-size ranges (as text) for which ``pool`` averages the whole map, from
    :func:`pooling_by_image_size`."""
    return ", ".join(row["image sizes"] for row in pooling_by_image_size(pool, model)
                     if row["what the pool and the classifier give"] == WHOLE_MAP)


def strict_load_works(model, state_dict):
    """Whether ``model.load_state_dict(state_dict, strict=True)`` succeeds (it loads when it does)."""
    try:
        model.load_state_dict(state_dict, strict=True)
        return True
    except RuntimeError:
        return False

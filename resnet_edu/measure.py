"""Measure a model: parameter and MAC counts per stage, a shape trace, and torchvision parity.

MACs (multiply-accumulates) are counted by running the model under
``torch.utils.flop_counter.FlopCounterMode``, which counts the convolutions and matrix products
that actually execute, not by formulas written by hand. One MAC is two FLOPs; torchvision's model
documentation lists MACs under the heading "GFLOPS" (1.81 for ResNet18 at 224x224).
"""

import torch
from torch.utils.flop_counter import FlopCounterMode

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
    """Copy every parameter and buffer from source into target, checking each key and shape first.

    Raises a ValueError listing the missing, unexpected and mismatched keys, so a learner sees
    exactly where two models differ (the pattern of nanoGPT's ``from_pretrained``).
    """
    src, dst = source.state_dict(), target.state_dict()
    missing = [k for k in dst if k not in src]
    unexpected = [k for k in src if k not in dst]
    mismatched = [f"{k}: {tuple(src[k].shape)} vs {tuple(dst[k].shape)}"
                  for k in dst if k in src and src[k].shape != dst[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(
            "the two models' state_dicts differ, so the weights cannot be copied:\n"
            f"  keys only in the target ({len(missing)}): {missing[:5]}\n"
            f"  keys only in the source ({len(unexpected)}): {unexpected[:5]}\n"
            f"  shapes that differ ({len(mismatched)}): {mismatched[:5]}"
        )
    target.load_state_dict(src, strict=True)
    return target


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

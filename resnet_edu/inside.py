"""Looking inside a network: forward hooks that record what layers compute and the gradient that
reaches them, blocks deleted at test time (Veit et al., 2016, "Residual Networks Behave Like
Ensembles of Relatively Shallow Networks"), and Grad-CAM (Selvaraju et al., 2017, "Grad-CAM:
Visual Explanations from Deep Networks via Gradient-based Localization").

Every function leaves the model as it found it: the same weights, BatchNorm statistics and mode
(train or eval), no gradients in ``.grad`` and no hooks left attached. Record the outputs of modules
that nothing changes in place afterwards (convolutions, blocks, stages); a BatchNorm whose output
an in-place ReLU overwrites would be recorded after the ReLU.
"""

import contextlib
import functools

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import ZeroPadShortcut, named_blocks


# ----------------------------------------------------------------------------- hooks


@contextlib.contextmanager
def kept_as_is(model):
    """Inside the with-block the model may switch mode and run batches; on exit its mode and its
    buffers (BatchNorm's running statistics) are what they were."""
    mode = model.training
    buffers = {name: buffer.clone() for name, buffer in model.named_buffers()}
    try:
        yield model
    finally:
        model.train(mode)
        with torch.no_grad():
            for name, buffer in model.named_buffers():
                buffer.copy_(buffers[name])


def _module(model, name):
    modules = dict(model.named_modules())
    if name not in modules:
        top = ", ".join(n for n, _ in model.named_children())
        raise ValueError(f"the model has no module named {name!r}; its top-level modules are {top}, and deeper "
                         f"ones are named like 'layer1.0' or 'layer1.0.conv1' (see model.named_modules())")
    return modules[name]


@contextlib.contextmanager
def recording_outputs(model, names):
    """A dict that fills with each named module's output whenever the model runs inside the
    with-block (one forward hook per module, removed on exit). The outputs stay in the autograd
    graph, so gradients with respect to them can be taken."""
    outputs = {}

    def store(name, module, inputs, output):
        outputs[name] = output

    handles = [_module(model, name).register_forward_hook(functools.partial(store, name)) for name in names]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def conv_layers(model):
    """The names of every convolution, in the order the model registers (and, here, runs) them."""
    return [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]


def gradient_norms(model, images, labels, names=None):
    """{name: norm of the gradient of the loss with respect to that layer's output} for one batch,
    in training mode as during training (BatchNorm normalises with the batch's statistics); the loss
    is the mean cross-entropy over the batch. ``names`` defaults to every convolution, in order.
    Each norm is over the whole output tensor, so a layer with more output values (a larger map or
    more channels) has a larger norm for the same gradient per value."""
    names = conv_layers(model) if names is None else list(names)
    with kept_as_is(model), recording_outputs(model, names) as outputs:
        model.train()
        loss = F.cross_entropy(model(images), labels)
        gradients = torch.autograd.grad(loss, [outputs[name] for name in names])
    return {name: gradient.norm().item() for name, gradient in zip(names, gradients)}


@torch.no_grad()
def feature_maps(model, images, names):
    """{name: the named module's output (N, C, H, W)} for ``images``, in eval mode."""
    with kept_as_is(model), recording_outputs(model, names) as outputs:
        model.eval()
        model(images)
    return dict(outputs)


# ----------------------------------------------------------------------------- deleting blocks


def blocks_of(model):
    """The names of the model's blocks (residual or plain), in order: what :func:`deleted_blocks` deletes."""
    return [name for name, _ in named_blocks(model)]


def what_remains(block):
    """What is left of a block once it is deleted: its shortcut. A residual block's ``downsample``
    where it has one, else ``x`` itself; a plain block that changes the shape leaves the parameter-free
    option A path (every ``stride``-th pixel, zero channels appended), so that the next block still
    gets the shape it expects."""
    if getattr(block, "downsample", None) is not None:
        return block.downsample
    convs = [module for module in block.modules() if isinstance(module, nn.Conv2d)]
    in_channels, out_channels = convs[0].in_channels, convs[-1].out_channels
    stride = max(conv.stride[0] for conv in convs)
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ZeroPadShortcut(in_channels, out_channels, stride)


@contextlib.contextmanager
def deleted_blocks(model, names):
    """Inside the with-block, each named block is replaced by :func:`what_remains` of it: its
    residual branch is gone and only the shortcut carries the signal on. The blocks are put back on
    exit. Nothing is retrained: this is the test-time deletion of Veit et al. (2016)."""
    known = blocks_of(model)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"not blocks of this model: {unknown}; blocks_of(model) lists them "
                         f"({known[0]!r} ... {known[-1]!r})")
    if len(set(names)) != len(names):
        raise ValueError(f"each block can be deleted once; these names repeat: "
                         f"{sorted({name for name in names if names.count(name) > 1})}")
    replaced = []
    try:
        for name in names:
            parent_name, _, child = name.rpartition(".")
            parent = _module(model, parent_name) if parent_name else model
            block = getattr(parent, child)
            setattr(parent, child, what_remains(block))
            replaced.append((parent, child, block))
        yield model
    finally:
        for parent, child, block in reversed(replaced):
            setattr(parent, child, block)


# ----------------------------------------------------------------------------- Grad-CAM


def grad_cam(model, images, layer, classes=None):
    """Grad-CAM heat maps: where in each image ``layer`` found the evidence for a class.

    Each channel of the layer's output is weighted by the mean, over the map, of the gradient of the
    class's score (its logit, before the softmax); the weighted channels are summed, negative sums
    set to zero (ReLU: only evidence *for* the class), and each map scaled so that its largest value
    is 1 (a map with no positive evidence stays 0) and resized to the image's size.

    images:  a normalised batch (N, 3, H, W), as the model expects it
    layer:   the name of the module to look at, e.g. "layer4" (the last stage) or "layer3"
    classes: one class index per image, or one for all of them; default: each image's predicted class
    Returns (maps (N, H, W) with values in [0, 1], the classes used (N,)), computed in eval mode.
    """
    count = None if classes is None else torch.as_tensor(classes).numel()
    if count not in (None, 1, len(images)):
        raise ValueError(f"classes: expected one class per image ({len(images)} of them) or a single class for all; "
                         f"got {count} classes. Pass classes[i] for images[i], or one class index for every image")
    with kept_as_is(model), recording_outputs(model, [layer]) as outputs:
        model.eval()
        with torch.enable_grad():
            logits = model(images)
            if classes is None:
                classes = logits.argmax(1)
            classes = torch.as_tensor(classes, device=logits.device).reshape(-1).expand(len(images))
            scores = logits.gather(1, classes[:, None]).sum()  # each image's score depends on its own map only
            (gradients,) = torch.autograd.grad(scores, outputs[layer])
    activations = outputs[layer].detach()
    weights = gradients.mean(dim=(2, 3), keepdim=True)  # (N, C, 1, 1): how much each channel counts
    maps = F.relu((weights * activations).sum(1, keepdim=True))  # (N, 1, h, w)
    maps = F.interpolate(maps.float(), size=images.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    peaks = maps.flatten(1).max(1).values.clamp_min(torch.finfo(maps.dtype).tiny)
    return maps / peaks[:, None, None], classes


__all__ = [
    "kept_as_is",
    "recording_outputs",
    "conv_layers",
    "gradient_norms",
    "feature_maps",
    "blocks_of",
    "what_remains",
    "deleted_blocks",
    "grad_cam",
]

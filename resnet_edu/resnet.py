"""ResNet: a stem, four stages of residual blocks, global average pooling and a classifier; and the
paper's smaller family for CIFAR-10 (three stages, 6n + 2 layers) with its plain twins.

With the defaults every builder is torchvision's model: the same parameter names in the same
order, the same shapes, the same initialisation and the same computation, so
``load_state_dict(torchvision_model.state_dict(), strict=True)`` works in both directions.
"""

import contextlib
import functools
import io
import warnings

import torch
from torch import nn

from .blocks import BasicBlock, Bottleneck, PlainBlock, conv3x3

STEMS = ("imagenet", "cifar")
STAGE_WIDTHS = (64, 128, 256, 512)  # the paper's Table 1; later stages also halve the resolution


def _check_layers(layers):
    ok = (
        isinstance(layers, (list, tuple))
        and len(layers) == 4
        and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in layers)
    )
    if not ok:
        raise ValueError(
            f"layers must be four positive integers, the number of blocks in each stage "
            f"(ResNet18 uses [2, 2, 2, 2], ResNet50 [3, 4, 6, 3]); got {layers!r}"
        )


def _check_arguments(layers, num_classes, stem):
    _check_layers(layers)
    if stem not in STEMS:
        raise ValueError(
            f"stem must be one of {STEMS}; got {stem!r}. 'imagenet' is the paper's 7x7 stride-2 "
            f"convolution and max-pool (for 224x224 images), 'cifar' a 3x3 stride-1 convolution "
            f"without max-pool (for 32x32 images)."
        )
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer of at least 1; got {num_classes!r}")


def make_stem(stem):
    """The layers before the first stage: (conv1, bn1, relu, maxpool), named as in torchvision."""
    if stem == "imagenet":  # 224 -> 112 (conv) -> 56 (max-pool)
        conv = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
    else:  # 32x32 images are already small: keep the resolution
        conv = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        pool = nn.Identity()
    return conv, nn.BatchNorm2d(64), nn.ReLU(inplace=True), pool


def make_stage(block, in_channels, width, num_blocks, stride, shortcut="B"):
    """A stage: a first block that may change the shape (stride, channels), then blocks that keep it."""
    blocks = [block(in_channels, width, stride, shortcut=shortcut)]
    blocks += [block(width * block.expansion, width, 1, shortcut=shortcut) for _ in range(num_blocks - 1)]
    return nn.Sequential(*blocks)


def init_weights(model, zero_init_residual=False):
    """torchvision's initialisation, in torchvision's order (same seed, same weights)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    if zero_init_residual:
        for m in model.modules():
            if isinstance(m, (BasicBlock, Bottleneck)):
                m.zero_init_residual()


def check_images(x, channels, shrink, training, what_shrinks, fix, dtype=torch.float32):
    """The input checks of every network here: a float (N, channels, H, W) batch at least ``shrink``
    pixels on a side (the product of the strides), of the weights' ``dtype`` (outside autocast); a
    ValueError says what was expected, what arrived and what to do."""
    if not isinstance(x, torch.Tensor):
        hint = (" Convert a NumPy array with torch.from_numpy(x) (then .permute(0, 3, 1, 2) if its channels "
                "come last, and .float() / 255 if it holds uint8 pixels).") if type(x).__module__ == "numpy" else ""
        raise ValueError(f"expected a torch.Tensor of shape (N, 3, H, W); got {type(x).__name__}.{hint}")
    if x.dim() != 4:
        hint = " Add a batch dimension with x.unsqueeze(0)." if x.dim() == 3 else ""
        raise ValueError(f"expected a 4-D batch of images (N, 3, H, W); got a {x.dim()}-D tensor of shape "
                         f"{tuple(x.shape)}.{hint}")
    if x.shape[1] != channels:
        hint = " Channels-last images (N, H, W, 3) need x.permute(0, 3, 1, 2)." if x.shape[-1] == 3 else ""
        if x.shape[1] == 1 and channels == 3:
            hint = (" Grayscale images have one channel: repeat it three times with x.expand(-1, 3, -1, -1) "
                    "(or convert them to RGB when loading).")
        raise ValueError(f"expected {channels} colour channels in dimension 1, (N, 3, H, W); "
                         f"got shape {tuple(x.shape)}.{hint}")
    if not x.is_floating_point():
        raise ValueError(f"expected a floating-point tensor; got {x.dtype}. Convert uint8 images with "
                         f"x.float() / 255 (then normalise).")
    if x.dtype != dtype and not autocast_on(x.device.type):
        raise ValueError(f"expected {dtype} images, the dtype of the model's weights; got {x.dtype}. Convert the "
                         f"images with x.to({dtype}), or the model with model.to({x.dtype}); for mixed precision "
                         f"keep both in float32 and run the model under torch.autocast.")
    height, width = x.shape[-2:]
    if min(height, width) < shrink:
        raise ValueError(f"{what_shrinks}, so inputs must be at least {shrink}x{shrink}; got {height}x{width}. {fix}")
    last_stage_pixels = -(-height // shrink) * -(-width // shrink)
    if training and x.shape[0] * last_stage_pixels < 2:
        raise ValueError(f"in training mode BatchNorm needs more than one value per channel, but a batch of "
                         f"{x.shape[0]} image(s) of {height}x{width} leaves one pixel per channel after the "
                         f"last stage. Use a batch of at least 2, or call model.eval() for inference.")


def autocast_on(device_type):
    """Whether torch.autocast is active for this kind of device (it then casts inputs itself)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except (TypeError, RuntimeError):  # a device type autocast does not know (e.g. "meta")
        return torch.is_autocast_enabled()


class ResNet(nn.Module):
    """ResNet of the paper "Deep Residual Learning for Image Recognition" (He et al., 2015).

    block:    BasicBlock (ResNet18/34) or Bottleneck (ResNet50/101/152)
    layers:   blocks per stage, e.g. [2, 2, 2, 2]
    stem:     "imagenet" (7x7 stride 2 + max-pool) or "cifar" (3x3 stride 1, no max-pool)
    shortcut: the paper's option "A", "B" (default, torchvision) or "C"
    zero_init_residual: start every block as the identity (last BN weight 0)
    """

    def __init__(self, block, layers, num_classes=1000, stem="imagenet", shortcut="B",
                 zero_init_residual=False):
        super().__init__()
        _check_arguments(layers, num_classes, stem)  # the shortcut option: blocks.make_shortcut checks it
        self.stem = stem
        self.min_input_size = 32 if stem == "imagenet" else 8  # the product of all strides

        self.conv1, self.bn1, self.relu, self.maxpool = make_stem(stem)
        w1, w2, w3, w4 = STAGE_WIDTHS
        e = block.expansion  # a stage's output has width * e channels: the next stage's input
        self.layer1 = make_stage(block, 64, w1, layers[0], 1, shortcut)  # keeps the stem's resolution
        self.layer2 = make_stage(block, w1 * e, w2, layers[1], 2, shortcut)  # the others halve it
        self.layer3 = make_stage(block, w2 * e, w3, layers[2], 2, shortcut)
        self.layer4 = make_stage(block, w3 * e, w4, layers[3], 2, shortcut)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # any input size, not a fixed 7x7 window
        self.fc = nn.Linear(w4 * e, num_classes)

        init_weights(self, zero_init_residual)

    def check_input(self, x):
        """Raise a ValueError that names the problem before a deep layer fails obscurely."""
        fix = ("Resize the images, or use stem='cifar' for small images." if self.stem == "imagenet" else
               "Upsample the images, e.g. torch.nn.functional.interpolate(x, size=32) (CIFAR-10's size).")
        check_images(x, self.conv1.in_channels, self.min_input_size, self.training,
                     f"the {self.stem!r} stem and four stages shrink an image {self.min_input_size}x", fix,
                     self.conv1.weight.dtype)

    def forward_features(self, x):
        """Stem and the four stages: (N, 3, H, W) -> (N, C, H/32, W/32) ("imagenet" stem)."""
        self.check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (N, 64, H/4, W/4)
        x = self.layer1(x)  # (N, 64 * e, H/4, W/4), e = block.expansion
        x = self.layer2(x)  # (N, 128 * e, H/8, W/8)
        x = self.layer3(x)  # (N, 256 * e, H/16, W/16)
        return self.layer4(x)  # (N, 512 * e, H/32, W/32)

    def forward(self, x):
        x = self.forward_features(x)
        x = torch.flatten(self.avgpool(x), 1)  # (N, 512 * e)
        return self.fc(x)  # (N, num_classes)


class WeightsUnavailableError(RuntimeError):
    """torchvision's published weights could not be fetched (no internet, a proxy, a damaged file)."""


def torchvision_weights(name, weights=None, pretrained=None):
    """torchvision's weights enum member for ``weights`` (its enum, or a name such as "IMAGENET1K_V1"
    or "DEFAULT"); ``pretrained=True``, torchvision's older argument, means "DEFAULT". None: no weights."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    if pretrained is not None:
        if weights is not None:
            raise ValueError(f"give weights= or pretrained=, not both (pretrained=True is torchvision's older "
                             f"spelling of weights='DEFAULT'); got weights={weights!r}, pretrained={pretrained!r}")
        if not pretrained:
            return None
        weights = enum.DEFAULT
        warnings.warn(f"pretrained=True is torchvision's older argument; loading weights={weights} (the same as "
                      f"weights='DEFAULT'), as torchvision does. Write {name}(weights='DEFAULT') to say so.",
                      UserWarning, stacklevel=4)
    if weights is None:
        return None
    try:
        return enum.verify(weights)
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"weights must be one of torchvision's {enum.__name__} for {name}: the enum, e.g. "
                         f"torchvision.models.{enum.__name__}.DEFAULT, or one of the names "
                         f"{sorted(enum.__members__)}; got {weights!r}") from None


def load_torchvision_weights(model, weights, progress=True):
    """Copy torchvision's published ``weights`` (a member of its weights enum) into ``model``, checking
    every name and shape first (they must match exactly: the course's claim that this is
    torchvision's model). torchvision downloads them once into torch's hub cache; progress=False
    downloads quietly (no progress bar, no "Downloading" line)."""
    quiet = contextlib.nullcontext() if progress else contextlib.redirect_stdout(io.StringIO())  # torch.hub's line
    try:
        with quiet:
            state = weights.get_state_dict(progress=progress, check_hash=True)
    except Exception as error:  # no internet, a proxy, a damaged download
        cache = f"{torch.hub.get_dir()}/checkpoints"
        raise WeightsUnavailableError(
            f"could not get torchvision's weights {weights} from {weights.url} ({type(error).__name__}: {error}). "
            f"They are downloaded once ({weights.url.rsplit('/', 1)[-1]}) into {cache}: connect to the internet "
            f"and try again, or copy that file there from a machine that has it, or build the model without "
            f"weights (weights=None) to train it yourself.") from error
    return load_checked(model, state, f"torchvision's {weights}")


def load_checked(model, state, source):
    """Load the state_dict ``state`` into ``model`` after checking every key and shape, so that a
    mismatch names where the two differ (the pattern of nanoGPT's ``from_pretrained``); ``source``
    names where the weights come from, for the message."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
                  for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"{source} do not fit this model, so they cannot be loaded:\n"
            f"  keys only in the model ({len(missing)}): {missing[:5]}\n"
            f"  keys only in the weights ({len(unexpected)}): {unexpected[:5]}\n"
            f"  shapes that differ, weights vs model ({len(mismatched)}): {mismatched[:5]}")
    model.load_state_dict(state, strict=True)
    return model


def imagenet_model(name, block, layers, weights=None, progress=True, pretrained=None, **kwargs):
    """``ResNet(block, layers, **kwargs)``, with torchvision's published ImageNet weights loaded into it
    if ``weights`` (or ``pretrained=True``) asks for them, as torchvision's builder of the same name does."""
    weights = torchvision_weights(name, weights, pretrained)
    if weights is not None:
        classes = len(weights.meta["categories"])
        if kwargs.get("stem", "imagenet") != "imagenet" or kwargs.get("num_classes", classes) != classes:
            raise ValueError(f"torchvision's {weights} are for the 'imagenet' stem and {classes} classes; got "
                             f"stem={kwargs.get('stem', 'imagenet')!r}, "
                             f"num_classes={kwargs.get('num_classes', classes)}. Build with those, then replace the "
                             f"classifier for your classes: model.fc = nn.Linear(model.fc.in_features, your_classes)")
    model = ResNet(block, layers, **kwargs)
    return model if weights is None else load_torchvision_weights(model, weights, progress)


def resnet18(*, weights=None, progress=True, **kwargs):
    """ResNet18: BasicBlock, [2, 2, 2, 2]. 11,689,512 parameters with 1000 classes.

    ``weights``, as in torchvision: None (random), ``torchvision.models.ResNet18_Weights.IMAGENET1K_V1``
    or its name ("IMAGENET1K_V1", "DEFAULT"): torchvision's trained weights, loaded into this model.
    The other builders take the same arguments."""
    return imagenet_model("resnet18", BasicBlock, [2, 2, 2, 2], weights, progress, **kwargs)


def resnet34(*, weights=None, progress=True, **kwargs):
    """ResNet34: BasicBlock, [3, 4, 6, 3]."""
    return imagenet_model("resnet34", BasicBlock, [3, 4, 6, 3], weights, progress, **kwargs)


def resnet50(*, weights=None, progress=True, **kwargs):
    """ResNet50: Bottleneck, [3, 4, 6, 3]."""
    return imagenet_model("resnet50", Bottleneck, [3, 4, 6, 3], weights, progress, **kwargs)


def resnet101(*, weights=None, progress=True, **kwargs):
    """ResNet101: Bottleneck, [3, 4, 23, 3]."""
    return imagenet_model("resnet101", Bottleneck, [3, 4, 23, 3], weights, progress, **kwargs)


def resnet152(*, weights=None, progress=True, **kwargs):
    """ResNet152: Bottleneck, [3, 8, 36, 3]."""
    return imagenet_model("resnet152", Bottleneck, [3, 8, 36, 3], weights, progress, **kwargs)


def stride_on_first_1x1(module):
    """Move the stride of every strided Bottleneck in ``module`` (one block or a whole ResNet) from
    its 3x3 to its first 1x1: ResNet v1, the placement of the authors' released models. Works in
    place, returns ``module``; no parameter changes."""
    for block in module.modules():
        if isinstance(block, Bottleneck) and block.conv2.stride != (1, 1):
            block.conv1.stride, block.conv2.stride = block.conv2.stride, (1, 1)
    return module


# ----------------------------------------------------------------------------- the CIFAR-10 family

CIFAR_WIDTHS = (16, 32, 64)  # the paper's section 4.2: 32x32, 16x16 and 8x8 maps
CIFAR_DEPTHS = (20, 32, 44, 56, 110)  # the depths of the paper's Table 6 and Figure 6


class CifarResNet(nn.Module):
    """The paper's networks for CIFAR-10 (He et al., 2015, section 4.2): a 3x3 convolution to 16
    channels, three stages of ``n`` blocks at 16, 32 and 64 channels (the second and third halve the
    resolution), global average pooling and a classifier: 6n + 2 layers with weights.

    With ``BasicBlock`` and shortcut "A" (zero-padding, no parameters, as the paper used here) these
    are ResNet-20 ... ResNet-110; with ``PlainBlock`` (and ``shortcut=None``) the plain networks of
    the paper's Figure 6, whose layers and parameters are the same. Initialised as ``ResNet`` is.
    """

    def __init__(self, block, n, num_classes=10, shortcut="A", zero_init_residual=False):
        super().__init__()
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, the blocks per stage (ResNet-20 has n = 3); got {n!r}")
        _check_arguments([n] * 4, num_classes, "cifar")
        self.min_input_size = 4  # two stages halve the resolution
        w1, w2, w3 = CIFAR_WIDTHS
        self.conv1, self.bn1, self.relu = conv3x3(3, w1), nn.BatchNorm2d(w1), nn.ReLU(inplace=True)
        self.layer1 = make_stage(block, w1, w1, n, 1, shortcut)  # (N, 16, 32, 32)
        self.layer2 = make_stage(block, w1, w2, n, 2, shortcut)  # (N, 32, 16, 16)
        self.layer3 = make_stage(block, w2, w3, n, 2, shortcut)  # (N, 64, 8, 8)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w3, num_classes)
        init_weights(self, zero_init_residual)

    def forward(self, x):
        check_images(x, 3, self.min_input_size, self.training, "two stages halve an image's sides (4x in all)",
                     "Upsample the images, e.g. torch.nn.functional.interpolate(x, size=32) (CIFAR-10's size).",
                     self.conv1.weight.dtype)
        x = self.relu(self.bn1(self.conv1(x)))  # (N, 16, H, W)
        x = self.layer3(self.layer2(self.layer1(x)))  # (N, 64, H/4, W/4)
        return self.fc(torch.flatten(self.avgpool(x), 1))  # (N, num_classes)


def cifar_resnet(depth, plain=False, **kwargs):
    """ResNet-``depth`` for CIFAR-10 (depth = 6n + 2), or its plain twin with ``plain=True``."""
    if kwargs.get("weights") is not None or kwargs.get("pretrained"):
        raise ValueError(f"torchvision publishes no weights for the paper's CIFAR-10 networks (resnet{depth}, "
                         f"plain{depth}), so weights= and pretrained= do not apply: train one with "
                         f"resnet_edu.train.fit, or load a network the course trained with "
                         f"resnet_edu.trained.load(name) (resnet_edu.trained.available() lists them)")
    for name in ("weights", "pretrained"):  # None or False: no weights, as asked
        kwargs.pop(name, None)
    if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
        raise ValueError(f"depth must be 6n + 2 for a whole number n >= 1 (20, 32, 44, 56, 110 in the paper); "
                         f"got {depth!r}")
    if plain:
        return CifarResNet(PlainBlock, (depth - 2) // 6, shortcut=None, **kwargs)
    return CifarResNet(BasicBlock, (depth - 2) // 6, **kwargs)


def resnet20(**kwargs):
    """ResNet-20 for CIFAR-10: 269,722 parameters (the paper's Table 6: 0.27M)."""
    return cifar_resnet(20, **kwargs)


def resnet32(**kwargs):
    """ResNet-32 for CIFAR-10: 464,154 parameters (0.46M)."""
    return cifar_resnet(32, **kwargs)


def resnet44(**kwargs):
    """ResNet-44 for CIFAR-10: 658,586 parameters (0.66M)."""
    return cifar_resnet(44, **kwargs)


def resnet56(**kwargs):
    """ResNet-56 for CIFAR-10: 853,018 parameters (0.85M)."""
    return cifar_resnet(56, **kwargs)


def resnet110(**kwargs):
    """ResNet-110 for CIFAR-10: 1,727,962 parameters (1.7M)."""
    return cifar_resnet(110, **kwargs)


def plain20(**kwargs):
    """The plain twin of ResNet-20: the same 20 layers and parameters, no shortcuts."""
    return cifar_resnet(20, plain=True, **kwargs)


def plain56(**kwargs):
    """The plain twin of ResNet-56: the same 56 layers and parameters, no shortcuts."""
    return cifar_resnet(56, plain=True, **kwargs)


BUILDERS = {
    "resnet18": resnet18,
    "resnet34": resnet34,
    "resnet50": resnet50,
    "resnet101": resnet101,
    "resnet152": resnet152,
}


CIFAR_BUILDERS = {f"{kind}{depth}": functools.partial(cifar_resnet, depth, plain=kind == "plain")
                  for kind in ("resnet", "plain") for depth in CIFAR_DEPTHS}


def build(name, **kwargs):
    """Build a model by name, with the same keywords as its class: 'resnet18' ... 'resnet152'
    (ImageNet family, ``ResNet``), or 'resnet20' ... 'resnet110' and 'plain20' ... 'plain110' (the
    CIFAR-10 family, ``CifarResNet``, which has one stem: ``stem`` may be given only as "cifar")."""
    if name in CIFAR_BUILDERS:
        if kwargs.pop("stem", "cifar") != "cifar":
            raise ValueError(f"{name} is of the paper's CIFAR-10 family, whose stem is a 3x3 convolution: "
                             f"use stem='cifar' (or leave it out)")
        return CIFAR_BUILDERS[name](**kwargs)
    if name not in BUILDERS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(BUILDERS) + sorted(CIFAR_BUILDERS)}")
    return BUILDERS[name](**kwargs)

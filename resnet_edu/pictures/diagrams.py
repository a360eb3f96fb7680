"""The course's diagrams, drawn with matplotlib from models built by ``resnet_edu``.

Every label that names a layer, a channel count or a resolution is read from a real module (and
a real forward pass for the shapes), so the pictures cannot drift from the code they explain:

* :func:`draw_residual_block`: x -> conv-BN-ReLU -> conv-BN -> (+ x) -> ReLU, with the shortcut arc;
* :func:`draw_identity_and_conv_blocks`: the Identity Block and the Conv Block side by side;
* :func:`draw_resnet18_stages`: the stem, the four stages and the head of ResNet18 at 224x224;
* :func:`draw_bottleneck`: ResNet50's 1x1 reduce, 3x3, 1x1 expand block;
* :func:`draw_stride_placement`: a stride-2 bottleneck with the stride on the first 1x1 (v1)
  next to the same block with the stride on the 3x3 (v1.5).

Each function returns a :class:`Diagram`, a ``matplotlib.figure.Figure`` built without pyplot, so a
notebook shows it exactly once, as PNG, when it is the cell's value (in Jupyter and Colab alike),
and no global figure state leaks. ``python -m resnet_edu.pictures.diagrams
[DIRECTORY]`` writes all of them as PNG files into ``images/`` (or DIRECTORY).

One colour means one thing in every diagram (see ``COLOURS``): blue convolutions, yellow BN,
green ReLU, purple projection shortcuts (``downsample``) and Conv Blocks, peach Identity Blocks.
"""

import io
import sys
from pathlib import Path

import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyBboxPatch, Patch
from torch import nn

from ..blocks import BasicBlock, Bottleneck, ZeroPadShortcut, block_kind
from ..measure import shape_trace
from ..resnet import resnet18, stride_on_first_1x1

COLOURS = {
    "conv": "#a9cbf5",
    "bn": "#ffe08a",
    "relu": "#b4e3a8",
    "projection": "#d7bdf2",
    "identity_block": "#f8cfae",
    "tensor": "#ffffff",
    "other": "#e4e4e4",
    "arrow": "#333333",
    "shortcut": "#7a3fb0",
    "note": "#555555",
}
BOX_WIDTH = 2.8
BOX_HEIGHT = 0.5
ROW_STEP = 0.8
SHORTCUT_X = 3.1  # horizontal position of the shortcut path, right of the main column
DPI = 100


class Diagram(Figure):
    """A Figure that Jupyter displays as PNG even before pyplot's inline backend is active."""

    def _repr_png_(self):
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=DPI)
        return buffer.getvalue()


# ---------------------------------------------------------------- drawing primitives

def _box(ax, x, y, text, colour, width=BOX_WIDTH, height=BOX_HEIGHT, fontsize=10, **text_kwargs):
    """A rounded box centred on (x, y) with its text centred inside."""
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=colour, edgecolor=COLOURS["arrow"], linewidth=1.1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, **text_kwargs)


def _arrow(ax, start, end, colour=COLOURS["arrow"], style="-|>"):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=colour, lw=1.4, shrinkA=0, shrinkB=0))


def _line(ax, points, colour):
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=colour, lw=1.4, solid_capstyle="butt")


def _note(ax, x, y, text, ha="left", fontsize=8.5):
    ax.text(x, y, text, ha=ha, va="center", fontsize=fontsize, color=COLOURS["note"], style="italic")


def _blank_axes(ax, xlim, ylim):
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.axis("off")


def _legend(fig, kinds, y=0.01):
    labels = {"conv": "convolution", "bn": "batch norm", "relu": "ReLU",
              "projection": "projection shortcut / Conv Block", "identity_block": "Identity Block",
              "other": "stem, pooling, classifier"}
    handles = [Patch(facecolor=COLOURS[k], edgecolor=COLOURS["arrow"], label=labels[k]) for k in kinds]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=9,
               bbox_to_anchor=(0.5, y))


# ---------------------------------------------------------------- reading modules

def _layer_label(module):
    """'3x3 conv, 128, stride 2' for a Conv2d, 'BN' for BatchNorm2d, and so on."""
    if isinstance(module, nn.Conv2d):
        k, s = module.kernel_size[0], module.stride[0]
        text = f"{k}x{k} conv, {module.out_channels}"
        text += f", stride {s}" if s != 1 else ""
        return text + (" + bias" if module.bias is not None else "")
    if isinstance(module, nn.BatchNorm2d):
        return "BN"
    if isinstance(module, nn.ReLU):
        return "ReLU"
    if isinstance(module, nn.MaxPool2d):
        return f"{module.kernel_size}x{module.kernel_size} max-pool, stride {module.stride}"
    if isinstance(module, ZeroPadShortcut):
        return f"keep every {module.stride}th pixel,\nzero-pad {module.extra_channels} channels"
    return type(module).__name__


def _layer_colour(module):
    if isinstance(module, nn.Conv2d):
        return COLOURS["conv"]
    if isinstance(module, nn.BatchNorm2d):
        return COLOURS["bn"]
    if isinstance(module, nn.ReLU):
        return COLOURS["relu"]
    return COLOURS["other"]


def _residual_branch(block):
    """The branch F(x) in the order forward runs it: conv1, bn1, relu, conv2, bn2[, relu, conv3, bn3].

    Reads torchvision's names (conv1, bn1, ...); every BN but the last is followed by the ReLU.
    """
    layers, i = [], 1
    while hasattr(block, f"conv{i}"):
        if layers:
            layers.append(block.relu)
        layers += [getattr(block, f"conv{i}"), getattr(block, f"bn{i}")]
        i += 1
    return layers


def _fmt_shape(shape):
    return " x ".join(str(s) for s in shape[1:])  # drop the batch dimension: C x H x W


@torch.no_grad()
def _output_shapes(block, input_shape):
    """{module: output shape} for every layer of the block, from one forward pass."""
    shapes, hooks = {}, []

    def record(module, inputs, output):  # returns None: a hook's return value replaces the output
        shapes.setdefault(module, tuple(output.shape))

    hooks = [m.register_forward_hook(record) for m in block.modules() if m is not block]
    was_training = block.training
    block.eval()
    try:
        out = block(torch.zeros(1, *input_shape))
    finally:
        block.train(was_training)
        for hook in hooks:
            hook.remove()
    shapes[block] = tuple(out.shape)
    return shapes


# ---------------------------------------------------------------- one residual block

def _draw_block(ax, block, input_shape, title, roles=None):
    """Draw one BasicBlock or Bottleneck top to bottom, its shortcut on the right.

    The shape after each convolution is written beside the arrow that leaves it; ``roles`` maps
    a layer to a short note written to the right of its box (e.g. "reduce").
    """
    roles = roles or {}
    shapes = _output_shapes(block, input_shape)
    branch = _residual_branch(block)
    y = 0.0
    _box(ax, 0, y, f"x: {_fmt_shape((1,) + tuple(input_shape))}", COLOURS["tensor"])
    split_y = y - ROW_STEP / 2  # where the shortcut leaves the main path

    rows = []
    for module in branch:
        y -= ROW_STEP
        rows.append(y)
        _arrow(ax, (0, y + ROW_STEP - BOX_HEIGHT / 2), (0, y + BOX_HEIGHT / 2))
        _box(ax, 0, y, _layer_label(module), _layer_colour(module))
        if isinstance(module, nn.Conv2d):
            _note(ax, 0.12, y - ROW_STEP / 2, _fmt_shape(shapes[module]), fontsize=8)
        if module in roles:
            _note(ax, BOX_WIDTH / 2 + 0.1, y, roles[module], fontsize=9)

    add_y = y - ROW_STEP
    _arrow(ax, (0, y - BOX_HEIGHT / 2), (0, add_y + 0.22))
    ax.add_patch(Circle((0, add_y), 0.22, facecolor="white", edgecolor=COLOURS["arrow"], lw=1.4))
    ax.text(0, add_y, "+", ha="center", va="center", fontsize=15)
    shortcut = "x" if block.downsample is None else "downsample(x)"
    _note(ax, -0.32, add_y, f"F(x) + {shortcut}", ha="right")

    relu_y = add_y - ROW_STEP
    _arrow(ax, (0, add_y - 0.22), (0, relu_y + BOX_HEIGHT / 2))
    _box(ax, 0, relu_y, "ReLU", COLOURS["relu"])
    out_y = relu_y - ROW_STEP
    _arrow(ax, (0, relu_y - BOX_HEIGHT / 2), (0, out_y + BOX_HEIGHT / 2))
    _box(ax, 0, out_y, f"out: {_fmt_shape(shapes[block])}", COLOURS["tensor"])

    shortcut_x = SHORTCUT_X + (1.2 if roles else 0)  # room for the role notes
    _draw_shortcut(ax, block, split_y, add_y, shapes, shortcut_x)
    left = -BOX_WIDTH / 2 - 0.25
    _line(ax, [(left + 0.1, rows[0] + BOX_HEIGHT / 2), (left, rows[0] + BOX_HEIGHT / 2),
               (left, rows[-1] - BOX_HEIGHT / 2), (left + 0.1, rows[-1] - BOX_HEIGHT / 2)],
          COLOURS["note"])
    ax.text(left - 0.15, (rows[0] + rows[-1]) / 2, "residual branch F(x)", rotation=90,
            ha="right", va="center", fontsize=9.5, color=COLOURS["note"])
    ax.set_title(title, fontsize=12, pad=8)
    _blank_axes(ax, (-BOX_WIDTH / 2 - 1.3, shortcut_x + 1.5), (out_y - 0.5, 0.5))


def _draw_shortcut(ax, block, split_y, add_y, shapes, shortcut_x):
    """The right-hand path: x itself (Identity Block) or a box for ``downsample`` (Conv Block)."""
    colour = COLOURS["shortcut"]
    ax.plot([0], [split_y], "o", color=colour, markersize=4)
    if block.downsample is None:
        _line(ax, [(0, split_y), (shortcut_x, split_y), (shortcut_x, add_y)], colour)
        _arrow(ax, (shortcut_x, add_y), (0.22, add_y), colour)
        ax.text(shortcut_x + 0.12, (split_y + add_y) / 2, "identity: x\n(downsample=None)",
                ha="left", va="center", fontsize=9, color=colour, rotation=90)
        return
    layers = list(block.downsample) if isinstance(block.downsample, nn.Sequential) else [block.downsample]
    mid_y = (split_y + add_y) / 2
    height = 0.45 * len(layers) + 0.35
    _line(ax, [(0, split_y), (shortcut_x, split_y), (shortcut_x, mid_y + height / 2)], colour)
    _line(ax, [(shortcut_x, mid_y - height / 2), (shortcut_x, add_y)], colour)
    _arrow(ax, (shortcut_x, add_y), (0.22, add_y), colour)
    text = "downsample\n" + "\n".join(_layer_label(m) for m in layers)
    _box(ax, shortcut_x, mid_y, text, COLOURS["projection"], width=2.2, height=height, fontsize=9)
    _note(ax, shortcut_x + 0.1, (mid_y - height / 2 + add_y) / 2, _fmt_shape(shapes[block.downsample]),
          fontsize=8)


# ---------------------------------------------------------------- the four diagrams

def draw_residual_block(channels=64, size=56):
    """The basic residual block of the paper's Figure 2: out = ReLU(F(x) + x).

    Drawn from ``BasicBlock(channels, channels)`` run on a channels x size x size input (by
    default the first stage of ResNet18 at 224x224).
    """
    fig = Diagram(figsize=(6.2, 7.4), dpi=DPI)
    ax = fig.add_subplot()
    _draw_block(ax, BasicBlock(channels, channels), (channels, size, size),
                "The residual block: out = ReLU(F(x) + x)")
    _legend(fig, ["conv", "bn", "relu"])
    fig.subplots_adjust(left=0.02, right=0.98, top=0.94, bottom=0.06)
    return fig


def draw_identity_and_conv_blocks(in_channels=64, out_channels=128, stride=2, size=56):
    """The Identity Block (shortcut = x) next to the Conv Block (shortcut = 1x1 conv, stride s, BN).

    The Conv Block is ``BasicBlock(in_channels, out_channels, stride)``: its ``downsample``
    projects x to the branch's shape so that the two can be added.
    """
    fig = Diagram(figsize=(12, 7.4), dpi=DPI)
    left, right = fig.subplots(1, 2)
    _draw_block(left, BasicBlock(in_channels, in_channels), (in_channels, size, size),
                "Identity Block: the shape is unchanged,\nthe shortcut adds x itself")
    _draw_block(right, BasicBlock(in_channels, out_channels, stride), (in_channels, size, size),
                f"Conv Block: stride {stride}, {in_channels} -> {out_channels} channels,\n"
                "the shortcut adds downsample(x)")
    _legend(fig, ["conv", "bn", "relu", "projection"])
    fig.subplots_adjust(left=0.01, right=0.99, top=0.9, bottom=0.06, wspace=0.05)
    return fig


def draw_bottleneck(in_channels=256, width=64, stride=1, size=56):
    """ResNet50's bottleneck block: 1x1 reduce to ``width``, 3x3 at ``width``, 1x1 expand x4.

    The default is an Identity Block of ResNet50's first stage (256 -> 64 -> 64 -> 256 channels,
    the paper's Figure 5, right). ``in_channels=64`` draws that stage's opening Conv Block instead.
    """
    block = Bottleneck(in_channels, width, stride)
    fig = Diagram(figsize=(6.6, 10.2), dpi=DPI)
    ax = fig.add_subplot()
    kind = block_kind(block)
    roles = {block.conv1: f"reduce to {width}", block.conv2: "narrow 3x3",
             block.conv3: f"expand x{block.expansion}"}
    _draw_block(ax, block, (in_channels, size, size),
                f"The bottleneck block ({kind}): 1x1 reduce {in_channels} -> {width},\n"
                f"3x3 at {width}, 1x1 expand x{block.expansion} to {width * block.expansion}", roles)
    _legend(fig, ["conv", "bn", "relu"] + (["projection"] if block.downsample is not None else []))
    fig.subplots_adjust(left=0.02, right=0.98, top=0.94, bottom=0.04)
    return fig


def draw_stride_placement(in_channels=256, width=128, size=56):
    """Where a downsampling bottleneck puts its stride: v1 and v1.5 side by side.

    Both panels are ``Bottleneck(in_channels, width, stride=2)`` run on an in_channels x size x size
    input (by default ResNet50's layer2[0] at 224x224); the left one has its stride moved to the
    first 1x1 (v1, the authors' released models), the right one keeps it on the 3x3 (v1.5,
    torchvision and resnet_edu). The shapes under each convolution show where the resolution halves.
    """
    v15 = Bottleneck(in_channels, width, stride=2)
    v1 = stride_on_first_1x1(Bottleneck(in_channels, width, stride=2))
    fig = Diagram(figsize=(12.4, 8.6), dpi=DPI)
    left, right = fig.subplots(1, 2)
    for ax, block, title in (
            (left, v1, "v1: stride 2 on the first 1x1\n(the authors' released models)"),
            (right, v15, "v1.5 (ResNet-B): stride 2 on the 3x3\n(torchvision, resnet_edu)")):
        roles = {block.conv1: "reduce", block.conv3: "expand"}
        _draw_block(ax, block, (in_channels, size, size), title, roles)
    _legend(fig, ["conv", "bn", "relu", "projection"])
    fig.subplots_adjust(left=0.0, right=1.0, top=0.93, bottom=0.05, wspace=0.02)
    return fig


def _stage_blocks_text(block):
    """'Conv Block\\n64 -> 128, stride 2' or 'Identity Block\\n64 -> 64' for one block."""
    last_conv = _residual_branch(block)[-2]
    channels = f"{block.conv1.in_channels} -> {last_conv.out_channels}"
    return f"{block_kind(block)}\n{channels}" + (f", stride {block.stride}" if block.stride != 1 else "")


def _block_colour(block):
    return COLOURS["identity_block"] if block.downsample is None else COLOURS["projection"]


def _stem_text(model):
    parts = [_layer_label(model.conv1), "BN, ReLU"]
    if not isinstance(model.maxpool, nn.Identity):
        parts.append(_layer_label(model.maxpool))
    return "stem\n" + "\n".join(parts)


STAGE_BOX_WIDTH, STAGE_BOX_HEIGHT, STAGE_ROW_STEP, STAGE_COLUMN_STEP = 2.5, 0.75, 1.0, 3.1


def _draw_stage(ax, x, centre_y, name, stage, shape):
    """One stage as a dashed frame of blocks stacked top to bottom; returns the frame's right edge."""
    blocks = list(stage)
    first_y = centre_y + (len(blocks) - 1) * STAGE_ROW_STEP / 2
    last_y = first_y - (len(blocks) - 1) * STAGE_ROW_STEP
    for i, block in enumerate(blocks):
        y = first_y - i * STAGE_ROW_STEP
        _box(ax, x, y, _stage_blocks_text(block), _block_colour(block), width=STAGE_BOX_WIDTH,
             height=STAGE_BOX_HEIGHT, fontsize=8.5)
        if i:
            _arrow(ax, (x, y + STAGE_ROW_STEP - STAGE_BOX_HEIGHT / 2), (x, y + STAGE_BOX_HEIGHT / 2))
    half_width, margin = STAGE_BOX_WIDTH / 2 + 0.15, STAGE_BOX_HEIGHT / 2 + 0.15
    ax.add_patch(FancyBboxPatch((x - half_width, last_y - margin), 2 * half_width,
                                first_y - last_y + 2 * margin,
                                boxstyle="round,pad=0.02,rounding_size=0.12", facecolor="none",
                                edgecolor=COLOURS["note"], linestyle="--", lw=1))
    ax.text(x, first_y + margin + 0.3, name, ha="center", va="center", fontsize=11,
            fontweight="bold")
    ax.text(x, last_y - margin - 0.3, f"{shape[1]} channels, {shape[2]} x {shape[3]}",
            ha="center", va="center", fontsize=9)
    return x + half_width


def draw_resnet18_stages(model=None, image_size=224):
    """ResNet18 from input to classifier: the stem, four stages of blocks, pooling and fc.

    Read from ``model`` (default ``resnet18()``) and a forward pass at image_size x image_size:
    every channel count, resolution and block kind (Identity or Conv Block) comes from the model.
    Any ResNet of the package can be drawn this way (e.g. ``resnet34()``).
    """
    model = resnet18() if model is None else model
    shapes = dict(shape_trace(model, image_size))
    stages = ["layer1", "layer2", "layer3", "layer4"]
    most_blocks = max(len(getattr(model, s)) for s in stages)
    centre_y, half_height = 0.0, (most_blocks - 1) * STAGE_ROW_STEP / 2 + 1.1
    width = STAGE_BOX_WIDTH
    xlim = (-width / 2 - 0.1, 6 * STAGE_COLUMN_STEP + width / 2 + 0.1)
    ylim = (centre_y - half_height, centre_y + half_height)
    axes_height = 16 * (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
    fig = Diagram(figsize=(16, axes_height + 1.1), dpi=DPI)
    ax = fig.add_axes((0, 0.55 / (axes_height + 1.1), 1, axes_height / (axes_height + 1.1)))

    stem = model.conv1.out_channels, shapes["maxpool"][2], shapes["maxpool"][3]
    columns = [
        (f"input\n3 x {image_size} x {image_size}", COLOURS["tensor"], 0.9),
        (_stem_text(model) + f"\n-> {stem[0]} x {stem[1]} x {stem[2]}", COLOURS["other"], 1.7),
    ]
    x = 0.0
    for text, colour, height in columns:
        if x:
            _arrow(ax, (x - STAGE_COLUMN_STEP + width / 2, centre_y), (x - width / 2, centre_y))
        _box(ax, x, centre_y, text, colour, width=width, height=height, fontsize=8.5)
        x += STAGE_COLUMN_STEP
    right = x - STAGE_COLUMN_STEP + width / 2
    for stage in stages:
        _arrow(ax, (right, centre_y), (x - width / 2 - 0.15, centre_y))
        right = _draw_stage(ax, x, centre_y, stage, getattr(model, stage), shapes[stage])
        x += STAGE_COLUMN_STEP

    head = f"global avg pool\n-> {shapes['layer4'][1]} x 1 x 1\nfc -> {shapes['fc'][1]} classes"
    _arrow(ax, (right, centre_y), (x - width / 2, centre_y))
    _box(ax, x, centre_y, head, COLOURS["other"], width=width, height=1.2, fontsize=8.5)

    depth = _count_weight_layers(model)
    fig.suptitle(f"ResNet{depth} at {image_size} x {image_size}: the stem, four stages of blocks, "
                 "global pooling and the classifier", fontsize=12, y=1 - 0.2 / (axes_height + 1.1))
    _blank_axes(ax, xlim, ylim)
    _legend(fig, ["identity_block", "projection", "other"])
    return fig


def _count_weight_layers(model):
    """The depth the paper counts: convolutions and fully connected layers outside the shortcuts."""
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in name
               for name, m in model.named_modules())


# ---------------------------------------------------------------- regenerate images/

DIAGRAMS = {
    "residual_block": draw_residual_block,
    "identity_and_conv_blocks": draw_identity_and_conv_blocks,
    "resnet18_stages": draw_resnet18_stages,
    "bottleneck": draw_bottleneck,
}


def save_all(directory="images"):
    """Draw every diagram and write it as ``<directory>/<name>.png``; returns the paths written."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in DIAGRAMS.items():
        path = directory / f"{name}.png"
        draw().savefig(path, dpi=DPI, metadata={"Software": None})  # no version stamp: stable files
        paths.append(path)
    return paths


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print("usage: python -m resnet_edu.pictures.diagrams [DIRECTORY]   (default: images)")
        return 2
    for path in save_all(argv[0] if argv else "images"):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

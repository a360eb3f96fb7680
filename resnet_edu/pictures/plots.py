"""Plots of training: learning curves (also live, redrawn in place), image grids, class balance, the
confusion matrix and the speed ladder; and of what a trained network computes: its first layer's
filters, feature maps, heat maps over images. Every figure has a title, axis labels and units.

Every figure reads in greyscale and for colour-blind readers: two series in one plot differ in line
style and marker (or bar hatching), not in colour alone, and data of one sign are drawn with a colour
map whose lightness changes steadily from end to end (viridis, Blues, grey), never a rainbow such as jet.
tests/test_plots_accessible.py checks this on every function here.
"""

import io

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from ..dataset import CLASSES


def in_notebook():
    """True inside a Jupyter kernel, where a figure can be shown and then redrawn in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def plot_history(history, title="Training history", evaluated_on="test"):
    """Loss and accuracy per epoch, training and test, side by side. ``evaluated_on`` names what
    ``fit`` evaluated each epoch (the data's test slots): with a validation split, the held-out images."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
    epochs = history.epoch
    evaluated = [i for i, acc in enumerate(history.test_acc) if acc is not None]  # see eval_every
    tested = [epochs[i] for i in evaluated]
    left.plot(epochs, history.train_loss, "o-", label="train (with label smoothing)")
    left.plot(tested, [history.test_loss[i] for i in evaluated], "s--", label=evaluated_on)
    left.set(title="Loss", xlabel="epoch", ylabel="cross-entropy (nats)")
    right.plot(epochs, [100 * a for a in history.train_acc], "o-", label="train (augmented)")
    right.plot(tested, [100 * history.test_acc[i] for i in evaluated], "s--", label=evaluated_on)
    right.set(title="Accuracy", xlabel="epoch", ylabel="accuracy (%)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
        if len(epochs) <= 12:
            ax.set_xticks(epochs)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


class LivePlot:
    """One figure in a notebook, redrawn in place after each epoch (not a new figure per epoch).

    Outside a notebook it does nothing, so scripts and the command line are not slowed down.
    """

    def __init__(self, title="Training history"):
        self.title, self.handle, self.enabled = title, None, in_notebook()

    def update(self, history):
        if not self.enabled or len(history) == 0:
            return
        from IPython.display import display

        fig = plot_history(history, self.title)
        if self.handle is None:
            self.handle = display(fig, display_id=True)
        else:
            self.handle.update(fig)
        plt.close(fig)  # drawn into the display; closing keeps the inline backend from drawing it again


class PhotoGrid:
    """A grid of photographs that a notebook shows, and stores, as JPEG only: photographs compress
    several times better as JPEG than as PNG, which keeps a notebook with image grids light. It wraps
    a ``Figure`` built without pyplot (``.figure``; ``.savefig`` writes it), because IPython would
    store any Figure as PNG as well."""

    def __init__(self, figure, count):
        self.figure, self.count = figure, count

    def savefig(self, *args, **kwargs):
        return self.figure.savefig(*args, **kwargs)

    def _repr_jpeg_(self):
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="jpeg", dpi=72, pil_kwargs={"quality": 75})
        return buffer.getvalue()

    def __repr__(self):
        return f"<PhotoGrid of {self.count} images>"


def show_images(images, labels=None, classes=CLASSES, ncols=8, title="", captions=None, size=1.3):
    """A grid of uint8 images (N, 3, H, W) with their class names (or ``captions``) above them; in a
    notebook it shows as a JPEG when it is a cell's value."""
    images = torch.as_tensor(images)
    n = len(images)
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows + 0.4))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i].permute(1, 2, 0).numpy(), interpolation="nearest")
        if captions is not None:
            ax.set_title(captions[i], fontsize=7)
        elif labels is not None:
            ax.set_title(classes[int(labels[i])], fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return PhotoGrid(fig, n)


def plot_class_balance(train_labels, test_labels, classes=CLASSES):
    """Images per class in the training and test sets, as grouped bars (test bars hatched)."""
    x = np.arange(len(classes))
    fig, ax = plt.subplots(figsize=(9, 3))
    for offset, labels, name, hatch in ((-0.2, train_labels, "train", ""), (0.2, test_labels, "test", "//")):
        ax.bar(x + offset, torch.bincount(labels, minlength=len(classes)).numpy(), width=0.4, label=name,
               hatch=hatch)
    ax.set(title="Images per class", xlabel="class", ylabel="images", xticks=x)
    ax.set_xticklabels(classes, rotation=30)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, classes=CLASSES, title="Confusion matrix (test set)"):
    """The confusion matrix as a heat map, with the count written in every cell."""
    matrix = torch.as_tensor(matrix)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(matrix.numpy(), cmap="Blues")
    fig.colorbar(image, ax=ax, label="images")
    ticks = np.arange(len(classes))
    ax.set(title=title, xlabel="predicted class", ylabel="true class", xticks=ticks, yticks=ticks)
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    threshold = matrix.max().item() / 2
    for i in range(len(classes)):
        for j in range(len(classes)):
            value = matrix[i, j].item()
            ax.text(j, i, str(value), ha="center", va="center", fontsize=7,
                    color="white" if value > threshold else "black")
    fig.tight_layout()
    return fig


def plot_speed_ladder(rows, title="Training speed ladder"):
    """Bars of images per second for each rung, with the speed-up over the first rung written on them."""
    names = [r["rung"] for r in rows]
    speeds = [r["images_per_second"] for r in rows]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.5))
    bars = ax.barh(names[::-1], speeds[::-1])
    for bar, speed in zip(bars, speeds[::-1]):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {speed / speeds[0]:.2f}x",
                va="center")
    ax.set(title=title, xlabel="training throughput (images per second)", ylabel="rung")
    ax.set_xlim(0, max(speeds) * 1.2)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- inside a trained network


def show_filters(weights, ncols=16, title="", size=0.55):
    """The filters of a convolution on RGB images, (C_out, 3, k, k), as small colour pictures. Each
    filter is divided by its own largest absolute weight and mapped from [-1, 1] to [0, 1]: a zero
    weight is mid-grey, and the sign of each colour channel's weight makes that colour brighter or darker.
    Scaling filter by filter shows every pattern but hides how large the filters are, relative to each other."""
    weights = torch.as_tensor(weights).detach().float().cpu()
    peaks = weights.abs().flatten(1).max(1).values.clamp_min(torch.finfo(weights.dtype).tiny)
    pictures = weights / peaks[:, None, None, None] / 2 + 0.5
    nrows = -(-len(weights) // ncols)
    fig = Figure(figsize=(size * ncols, size * nrows + 0.4), layout="constrained")
    for i, ax in enumerate(fig.subplots(nrows, ncols, squeeze=False).flat):
        ax.axis("off")
        if i < len(weights):
            ax.imshow(pictures[i].permute(1, 2, 0).numpy(), interpolation="nearest")
    fig.suptitle(title)
    return PhotoGrid(fig, len(weights))


def show_feature_maps(maps, channels=8, title="", size=0.9):
    """One image's feature maps, a row per layer: ``maps`` is {row title: (C, h, w)}. Each row shows the
    ``channels`` channels with the largest mean activation in that layer, strongest first, in grey from
    0 (black) to the largest value in the row (white), so that the channels of one layer compare, even
    at 1x1; every map is drawn at the same size, whatever its resolution."""
    fig = Figure(figsize=(size * channels + 1.2, size * len(maps) + 0.7), layout="constrained")
    axes = fig.subplots(len(maps), channels, squeeze=False)
    for row, (name, layer_maps) in zip(axes, maps.items()):
        layer_maps = torch.as_tensor(layer_maps).detach().float().cpu()
        strongest = layer_maps.mean(dim=(1, 2)).argsort(descending=True)[:channels]
        brightest = max(layer_maps[strongest].max().item(), 1e-12)
        for ax, channel in zip(row, strongest.tolist()):
            ax.imshow(layer_maps[channel].numpy(), cmap="gray", vmin=0, vmax=brightest, interpolation="nearest")
            ax.set_title(f"channel {channel}", fontsize=7)
            ax.set_xticks([]), ax.set_yticks([])
        for ax in row[len(strongest):]:
            ax.axis("off")
        row[0].set_ylabel(name, fontsize=8)
    fig.suptitle(title)
    return PhotoGrid(fig, len(maps) * channels)


def show_heat_maps(panels, title="", size=1.1):
    """Heat maps over photographs, in panels side by side (e.g. right and wrong predictions). Each panel
    is (panel title, uint8 images (N, 3, H, W), one caption per image, {row title: maps (N, H, W) in
    [0, 1]}): its first row shows the images, each further row the images under one set of maps in
    viridis, yellow where a map is 1 and dark blue-purple where it is 0 (light to dark in greyscale too)."""
    nrows = 1 + max(len(rows) for *_, rows in panels)
    widths = [len(images) for _, images, _, _ in panels]
    fig = Figure(figsize=(size * sum(widths) + 1.5 * len(panels), size * nrows + 1.0), layout="constrained")
    for subfig, (panel_title, images, captions, rows) in zip(fig.subfigures(1, len(panels), squeeze=False,
                                                                            width_ratios=widths).flat, panels):
        axes = subfig.subplots(nrows, len(images), squeeze=False)
        pictures = torch.as_tensor(images).cpu().permute(0, 2, 3, 1).numpy()
        for row, (row_title, maps) in enumerate([("image", None)] + list(rows.items())):
            for col, ax in enumerate(axes[row]):
                ax.imshow(pictures[col], interpolation="nearest")
                if maps is not None:
                    heat = ax.imshow(torch.as_tensor(maps[col]).detach().float().cpu().numpy(), cmap="viridis",
                                     alpha=0.5, vmin=0, vmax=1, interpolation="bilinear")
                ax.set_xticks([]), ax.set_yticks([])
            axes[row, 0].set_ylabel(row_title, fontsize=8)
        for col, ax in enumerate(axes[0]):
            ax.set_title(captions[col], fontsize=7)
        subfig.suptitle(panel_title, fontsize=10)
    if nrows > 1:
        subfig.colorbar(heat, ax=axes[1:].ravel().tolist(), shrink=0.8, label="Grad-CAM (0 to 1)")
    fig.suptitle(title)
    return PhotoGrid(fig, sum(widths))

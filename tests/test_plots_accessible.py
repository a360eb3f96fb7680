"""Every plot of resnet_edu.pictures.plots reads in greyscale and for colour-blind readers (issue 19).

Each plotting function draws small made-up data; the checks read the returned figure's artists:

* two line series in one axes never share colour, line style and marker all three, and two series
  (lines, or groups of bars) that a greyscale print would show in the same grey differ in style
  (line style, marker or hatching);
* a colour-mapped image of one-signed data uses a map whose lightness changes steadily from one end
  to the other (viridis, cividis, Blues, grey), so it reads in greyscale; never jet, rainbow or hsv.
  A diverging map (coolwarm, RdBu) is allowed only for signed data centred on zero.

The checks themselves are tested on figures that break them. Run:
    nice -n 19 .venv/bin/python -m pytest tests/test_plots_accessible.py -q
"""

import matplotlib

matplotlib.use("Agg")

import itertools  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.colors import to_hex, to_rgb  # noqa: E402
from matplotlib.container import BarContainer  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from resnet_edu.pictures import plots  # noqa: E402
from resnet_edu.train import History  # noqa: E402

# Two greys closer than this (CIE L*, 0 black to 100 white) are taken as the same grey on paper: a fifth
# of the range from black to white. matplotlib's first two default colours, blue and orange, differ by 19.
SAME_GREY = 20
RAINBOWS = {"jet", "rainbow", "gist_rainbow", "hsv", "nipy_spectral", "gist_ncar", "gist_stern", "turbo",
            "Spectral", "Paired", "Set1", "Set3", "prism", "flag", "tab10", "tab20"}
DIVERGING = {"coolwarm", "bwr", "seismic", "RdBu", "RdBu_r", "PuOr", "BrBG", "PiYG", "PRGn", "RdGy"}


def lightness(colour):
    """CIE L* of an sRGB colour: what a greyscale print keeps of it."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in to_rgb(colour)]
    y = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 116 * y ** (1 / 3) - 16 if y > 216 / 24389 else y * 24389 / 27


# ----------------------------------------------------------------------------- the checks


def _figure(drawn):
    return getattr(drawn, "figure", drawn)  # a PhotoGrid wraps its Figure


def _all_axes(figure):
    return figure.findobj(lambda artist: isinstance(artist, matplotlib.axes.Axes))


def _line_series(ax):
    """(label, colour, line style, marker) of each plotted line with a legend label."""
    return [(line.get_label(), to_hex(line.get_color()), line.get_linestyle(), line.get_marker())
            for line in ax.lines if not line.get_label().startswith("_")]


def _bar_series(ax):
    """(label, face colour, hatch) of each group of bars."""
    return [(bars.get_label(), to_hex(bars[0].get_facecolor()), bars[0].get_hatch() or "")
            for bars in ax.containers if isinstance(bars, BarContainer) and len(bars)]


def series_problems(figure):
    """What would make two series of one axes look the same in colour-blind or greyscale eyes."""
    problems = []
    for ax in _all_axes(figure):
        lines = [(label, colour, (style, marker)) for label, colour, style, marker in _line_series(ax)]
        bars = [(label, colour, hatch) for label, colour, hatch in _bar_series(ax)]
        for (name_a, colour_a, style_a), (name_b, colour_b, style_b) in itertools.chain(
                itertools.combinations(lines, 2), itertools.combinations(bars, 2)):
            if style_a != style_b:
                continue  # told apart by style, whatever the colours
            if colour_a == colour_b:
                problems.append(f"{ax.get_title()!r}: {name_a!r} and {name_b!r} look identical")
            elif abs(lightness(colour_a) - lightness(colour_b)) < SAME_GREY:
                problems.append(f"{ax.get_title()!r}: {name_a!r} and {name_b!r} differ by colour alone "
                                f"({colour_a} and {colour_b}: the same grey within {SAME_GREY} L*)")
    return problems


def _lightness_is_monotonic(cmap, samples=64):
    steps = np.diff([lightness(cmap(x)[:3]) for x in np.linspace(0, 1, samples)])
    return bool(np.all(steps >= -0.5) or np.all(steps <= 0.5))  # half an L* unit of rounding allowed


def colour_map_problems(figure):
    """Colour-mapped images whose map is a rainbow, or does not read in greyscale for their data."""
    problems = []
    for image in figure.findobj(lambda artist: isinstance(artist, AxesImage)):
        data = np.asarray(image.get_array())
        if data.ndim == 3:
            continue  # an RGB picture: its colours are the data, no colour map
        name, low, high = image.get_cmap().name, image.norm.vmin, image.norm.vmax
        if name in RAINBOWS:
            problems.append(f"{name}: a rainbow map, no order in greyscale and red-green confusions")
        elif name in DIVERGING:
            if not (low is not None and low < 0 < high and np.isclose(-low, high)):
                problems.append(f"{name}: a diverging map on data from {low} to {high}, not centred on zero")
        elif not _lightness_is_monotonic(image.get_cmap()):
            problems.append(f"{name}: its lightness goes up and down, so greys repeat")
    return problems


def assert_accessible(drawn):
    figure = _figure(drawn)
    try:
        assert series_problems(figure) == []
        assert colour_map_problems(figure) == []
    finally:
        plt.close(figure)


# ----------------------------------------------------------------------------- the checks catch problems


def test_the_checks_catch_colour_only_lines_and_rainbow_maps():
    figure, (left, right) = plt.subplots(1, 2)
    left.plot([0, 1], [0, 1], "-", color="tab:red", label="plain")
    left.plot([0, 1], [1, 0], "-", color="tab:green", label="residual")  # red against green, same style
    left.plot([0, 1], [0.5, 0.5], "-", color="tab:red", label="again")  # and the very same look
    right.imshow(np.random.default_rng(0).random((4, 4)), cmap="jet")
    right.imshow(np.random.default_rng(0).random((4, 4)), cmap="coolwarm", vmin=0, vmax=1)
    right.imshow(np.random.default_rng(0).random((4, 4)), cmap="twilight")  # cyclic: lightness up and down
    assert len(series_problems(figure)) == 3
    assert [p.split(":")[0] for p in colour_map_problems(figure)] == ["jet", "coolwarm", "twilight"]
    plt.close(figure)


def test_the_checks_accept_style_differences_and_perceptual_maps():
    figure, (left, right) = plt.subplots(1, 2)
    left.plot([0, 1], [0, 1], "o-", color="tab:red", label="plain")
    left.plot([0, 1], [1, 0], "s--", color="tab:green", label="residual")
    left.bar([0, 1], [1, 2], label="a")
    left.bar([0, 1], [2, 1], label="b", hatch="//")
    for cmap in ("viridis", "cividis", "gray", "Blues"):
        right.imshow(np.random.default_rng(0).random((4, 4)), cmap=cmap)
    right.imshow(np.random.default_rng(0).random((4, 4)) - 0.5, cmap="RdBu", vmin=-0.5, vmax=0.5)
    assert series_problems(figure) == [] and colour_map_problems(figure) == []
    plt.close(figure)


def test_lightness_is_cie_l_star():
    assert lightness("black") == pytest.approx(0) and lightness("white") == pytest.approx(100)
    assert lightness("#777777") == pytest.approx(50.0, abs=0.1)


# ----------------------------------------------------------------------------- every plotting function


def _history():
    return History(epoch=[1, 2, 3], train_loss=[2.0, 1.5, 1.2], train_acc=[0.3, 0.5, 0.6],
                   test_loss=[1.9, 1.6, 1.4], test_acc=[0.35, None, 0.5])


def _images(n, size=8):
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


DRAWINGS = {
    "plot_history": lambda: plots.plot_history(_history()),
    "plot_class_balance": lambda: plots.plot_class_balance(torch.tensor([0, 1, 1, 2]), torch.tensor([0, 2]),
                                                           ["a", "b", "c"]),
    "plot_confusion_matrix": lambda: plots.plot_confusion_matrix(torch.tensor([[3, 1], [0, 4]]), ["a", "b"]),
    "plot_speed_ladder": lambda: plots.plot_speed_ladder([{"rung": "fp32", "images_per_second": 100.0},
                                                          {"rung": "bf16", "images_per_second": 180.0}]),
    "show_images": lambda: plots.show_images(_images(3), torch.tensor([0, 1, 2]), ["a", "b", "c"], ncols=3),
    "show_filters": lambda: plots.show_filters(torch.randn(4, 3, 3, 3), ncols=4),
    "show_feature_maps": lambda: plots.show_feature_maps({"layer1": torch.rand(4, 4, 4),
                                                          "layer4": torch.rand(4, 1, 1)}, channels=2),
    "show_heat_maps": lambda: plots.show_heat_maps([("right", _images(2), ["a", "b"], {"cam": torch.rand(2, 8, 8)}),
                                                    ("wrong", _images(1), ["c"], {"cam": torch.rand(1, 8, 8)})]),
}


def test_every_plotting_function_is_checked():
    drawing = {name for name in vars(plots) if name.startswith(("plot_", "show_"))}
    assert drawing == set(DRAWINGS), "add the new plotting function to DRAWINGS"


@pytest.mark.parametrize("name", sorted(DRAWINGS))
def test_plot_reads_in_greyscale_and_for_colour_blind_readers(name):
    assert_accessible(DRAWINGS[name]())


def test_history_and_class_balance_series_differ_in_style_not_only_colour():
    """The two series of these plots are matplotlib's blue and orange, 19 L* apart: style must carry them."""
    figure = plots.plot_history(_history())
    for ax in figure.axes:
        styles = {(style, marker) for _, _, style, marker in _line_series(ax)}
        assert len(styles) == 2, ax.get_title()
    plt.close(figure)
    figure = DRAWINGS["plot_class_balance"]()
    assert len({hatch for _, _, hatch in _bar_series(figure.axes[0])}) == 2
    plt.close(figure)


def test_heat_maps_use_a_map_that_reads_in_greyscale():
    figure = _figure(DRAWINGS["show_heat_maps"]())
    maps = [image for image in figure.findobj(lambda a: isinstance(a, AxesImage)) if image.get_array().ndim == 2]
    assert maps and {image.get_cmap().name for image in maps} == {"viridis"}
    plt.close(figure)

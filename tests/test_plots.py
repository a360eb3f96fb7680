"""resnet_edu.pictures.plots: the live plot, the history plot, the image grids."""

import torch

from resnet_edu.train import History


def test_live_plot_is_silent_outside_a_notebook():
    from resnet_edu.pictures.plots import LivePlot, plot_history

    history = History(epoch=[1, 2], train_loss=[2.0, 1.5], train_acc=[0.3, 0.5], test_loss=[1.9, 1.6],
                      test_acc=[0.35, 0.45])
    live = LivePlot()
    assert not live.enabled
    live.update(history)  # does nothing, raises nothing
    figure = plot_history(history, "t")
    assert [ax.get_title() for ax in figure.axes] == ["Loss", "Accuracy"]


def test_image_grids_are_stored_as_jpeg_only():
    """Photographs as JPEG keep notebook 05 under 400 KB; a Figure would be stored as PNG as well."""
    from resnet_edu.pictures.plots import show_images

    grid = show_images(torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8), torch.arange(4), ncols=4)
    assert grid._repr_jpeg_()[:3] == b"\xff\xd8\xff" and not hasattr(grid, "_repr_png_")
    assert repr(grid) == "<PhotoGrid of 4 images>"


"""Notebook 05's results: what depends on the machine or the data is not compared verbatim, and its
learning curves name what they were measured on."""

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from resnet_edu.pictures.plots import plot_history  # noqa: E402
from resnet_edu.train import History  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "05_train_on_gpu.ipynb"
# Calls whose printed results depend on the processor's arithmetic (bf16 or fp32) or on the data source.
MACHINE_OR_DATA = ("fit(", "evaluate(", "predict(", "channel_stats(", "data_label(", "speed_ladder(")


def code_cells():
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    return [("".join(c["source"]), c["metadata"].get("tags", [])) for c in cells if c["cell_type"] == "code"]


def test_cells_whose_output_depends_on_the_machine_or_the_data_are_not_compared():
    compared = [source.splitlines()[0] for source, tags in code_cells()
                if any(call in source for call in MACHINE_OR_DATA) and "nbval-ignore-output" not in tags]
    assert compared == [], f"tag these cells nbval-ignore-output and assert a range instead: {compared}"


def test_the_test_set_is_evaluated_once_and_checked_against_a_range():
    evaluating = [source for source, _ in code_cells() if "evaluate(model, test_loader" in source]
    assert len(evaluating) == 1 and "assert low <= test_acc <= high" in evaluating[0]
    assert any("fit(model, split, config)" in source for source, _ in code_cells()), \
        "the run trains on the validation split, whose test slots hold held-out training images"


def test_learning_curves_name_what_they_were_measured_on():
    history = History(epoch=[1, 2], train_loss=[2.0, 1.5], train_acc=[0.3, 0.5], test_loss=[1.8, 1.2],
                      test_acc=[0.4, 0.6], lr=[0.1, 0.01], seconds=[1.0, 1.0], images_per_second=[10.0, 10.0])
    figure = plot_history(history, "t", evaluated_on="held-out (5,000 training images)")
    labels = [[text.get_text() for text in ax.get_legend().get_texts()] for ax in figure.axes]
    assert all("held-out (5,000 training images)" in ax_labels and "test" not in ax_labels for ax_labels in labels)
    plt.close(figure)
    figure = plot_history(history, "t")  # the default stays "test"
    assert all("test" in [t.get_text() for t in ax.get_legend().get_texts()] for ax in figure.axes)
    plt.close(figure)

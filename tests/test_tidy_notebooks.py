"""The committed notebooks read well where no kernel runs: tools/tidy_notebooks.py has nothing left to
do, none is over 400 KB, and no stored output shows a path of the machine that ran it."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import tidy_notebooks  # noqa: E402


def test_every_committed_notebook_is_tidy(capsys):
    assert tidy_notebooks.main(["--check"]) == 0, capsys.readouterr().out


def test_tidying_moves_markers_to_tags_drops_widgets_and_joins_streams():
    cell = {"cell_type": "code", "metadata": {"execution": {"iopub.status.busy": "2026"}},
            "source": ["# NBVAL_IGNORE_OUTPUT\n", "# timings vary\n", "print(1)\n"],
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["a\n"]},
                {"output_type": "display_data", "metadata": {},
                 "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                          "text/plain": ["epoch 1/2:   0%|          | 0/260"]}},
                {"output_type": "stream", "name": "stdout", "text": ["b\n"]},
                {"output_type": "stream", "name": "stderr", "text": ["c\n"]}]}
    tidied = tidy_notebooks.tidy_cell(cell)
    assert tidied["metadata"] == {"tags": ["nbval-ignore-output"]}
    assert "".join(tidied["source"]) == "# timings vary\nprint(1)\n"
    assert [(o["name"], "".join(o["text"])) for o in tidied["outputs"]] == [("stdout", "a\nb\n"), ("stderr", "c\n")]


def test_the_cache_fill_line_of_a_first_load_is_dropped():
    """Whether load_cifar10 decodes depends on the machine's cache, and its line names the machine's paths."""
    cell = {"cell_type": "code", "metadata": {}, "source": ["data = load_cifar10()\n"], "outputs": [
        {"output_type": "stream", "name": "stdout",
         "text": ["Decoding CIFAR-10 from /data/cifar10-jpeg.tar.gz (once; cached in /cache/resnet_edu) ...\n",
                  "loaded: CIFAR-10 (JPEG copy)\n"]},
        {"output_type": "stream", "name": "stdout",
         "text": ["Decoding CIFAR-10 from /data/cifar10 (once; cached in /cache/resnet_edu) ...\n"]}]}
    tidied = tidy_notebooks.tidy_cell(cell)
    kept = [(o["name"], "".join(o["text"])) for o in tidied["outputs"]]
    assert kept == [("stdout", "loaded: CIFAR-10 (JPEG copy)\n")]


def test_a_machine_path_in_an_output_is_reported():
    notebook = {"cells": [{"cell_type": "code", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": ["not cached at /root/.cache/torch/hub\n"]}]}]}
    assert tidy_notebooks.machine_paths(notebook) == ["cell 0: /root/..."]


def test_a_cell_tagged_remove_output_is_stored_without_output():
    cell = {"cell_type": "code", "metadata": {"tags": ["remove-output"]}, "source": ["check(my_block)\n"],
            "outputs": [{"output_type": "stream", "name": "stdout", "text": ["FAIL  the answer\n"]}]}
    tidied = tidy_notebooks.tidy_cell(cell)
    assert tidied["outputs"] == []
    assert "nbval-ignore-output" in tidied["metadata"]["tags"]  # nothing stored, so nothing to compare


def test_a_png_figure_is_stored_with_a_palette_when_that_is_smaller():
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from PIL import Image

    fig, ax = plt.subplots(figsize=(6, 3), dpi=72)
    for k in range(5):
        ax.plot([0, 1, 2, 3], [k, k + 1, k - 1, k + 2], label=f"line {k}")
    ax.legend()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    shrunk = tidy_notebooks.shrink_png(encoded)
    assert len(shrunk) < 0.9 * len(encoded)
    before, after = (Image.open(io.BytesIO(base64.b64decode(e))) for e in (encoded, shrunk))
    assert before.size == after.size and after.mode == "P"
    assert tidy_notebooks.shrink_png(shrunk) == shrunk  # a second pass changes nothing

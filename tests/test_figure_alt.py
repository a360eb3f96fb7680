"""Every figure of the committed notebooks has alternative text (tools/figure_alt.py stores it from
docs/figure_alt.json), every markdown image has some, and the tool writes nothing but that text.

    python -m pytest tests/test_figure_alt.py -q
"""

import copy
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import figure_alt  # noqa: E402
from tidy_notebooks import serialise  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPj/HwADAgH/p8V0GQAAAABJRU5ErkJggg==\n"


def load(path):
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem[:2])
def test_every_image_output_has_alternative_text(path):
    lacking = [f"cell {cell_id} image {index}" for cell_id, index, output in figure_alt.figures(load(path))
               if not (figure_alt.stored_alt(output) or "").strip()]
    assert not lacking, f"{path.name}: no alternative text for {lacking}; run python tools/figure_alt.py --write"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem[:2])
def test_every_markdown_image_has_alternative_text(path):
    sources = ["".join(cell["source"]) for cell in load(path)["cells"] if cell["cell_type"] == "markdown"]
    empty = [target for source in sources for target in re.findall(r"!\[\s*\]\(([^)\s]+)", source)]
    no_alt = [tag for source in sources for tag in re.findall(r"<img\b[^>]*>", source)
              if not re.search(r"\balt=\S", tag)]
    assert not empty + no_alt, f"{path.name}: images without alternative text: {empty + no_alt}"


def test_the_stored_texts_match_the_file(capsys):
    assert figure_alt.main(["--check"]) == 0, capsys.readouterr().out


def test_the_file_describes_each_figure_in_a_sentence_or_two():
    for name, cells in figure_alt.load_alt_texts().items():
        for cell_id, texts in cells.items():
            for text in texts:
                assert 60 <= len(text) <= 700 and text.endswith("."), f"{name} {cell_id}: {text!r}"


def notebook_with_figures():
    """Two cells: one with a PNG and a JPEG output (and a stream between), one with a PNG."""
    def image(mime):
        return {"output_type": "display_data", "data": {mime: PNG, "text/plain": ["<Figure>"]}, "metadata": {}}
    stream = {"output_type": "stream", "name": "stdout", "text": ["hello\n"]}
    cells = [{"cell_type": "code", "id": "aaa", "metadata": {}, "execution_count": 1, "source": ["plot()"],
              "outputs": [image("image/png"), stream, image("image/jpeg")]},
             {"cell_type": "code", "id": "bbb", "metadata": {}, "execution_count": 2, "source": ["plot()"],
              "outputs": [image("image/png")]}]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_write_stores_the_text_under_the_mime_type_and_changes_nothing_else(tmp_path):
    path = tmp_path / "demo.ipynb"
    before = notebook_with_figures()
    path.write_text(serialise(before), encoding="utf-8")
    texts = {"demo.ipynb": {"aaa": ["A line chart.", "A photo."], "bbb": ["A bar chart."]}}
    figure_alt.write([path], texts)
    after = load(path)
    assert after["cells"][0]["outputs"][0]["metadata"] == {"image/png": {"alt": "A line chart."}}
    assert after["cells"][0]["outputs"][2]["metadata"] == {"image/jpeg": {"alt": "A photo."}}
    assert after["cells"][1]["outputs"][0]["metadata"] == {"image/png": {"alt": "A bar chart."}}
    for _cell_id, _index, output in figure_alt.figures(after):
        output["metadata"] = {}
    assert after == before
    assert figure_alt.problems("demo.ipynb", load(path), texts["demo.ipynb"]) == []


def test_check_reports_missing_differing_and_stale_texts(tmp_path):
    notebook = notebook_with_figures()
    texts = {"aaa": ["A line chart.", "A photo."], "bbb": ["A bar chart."]}
    figure_alt.apply(notebook, texts)
    edited = copy.deepcopy(texts)
    edited["aaa"][1] = "A photo of a cat."
    del edited["bbb"]
    edited["gone"] = ["A figure of a cell that was deleted."]
    found = "\n".join(figure_alt.problems("demo.ipynb", notebook, edited))
    assert "cell aaa image 1: its stored alternative text differs" in found
    assert "cell bbb image 0: no text" in found
    assert "cell gone image 0: a text for an image that no longer exists" in found
    assert "cell aaa image 0" not in found
    notebook["cells"][1]["outputs"][0]["metadata"] = {}  # what re-executing the cell does
    assert "cell bbb image 0: its stored alternative text has none" in "\n".join(
        figure_alt.problems("demo.ipynb", notebook, texts))


def test_write_leaves_a_notebook_alone_when_it_is_not_in_tidy_form(tmp_path):
    path = tmp_path / "demo.ipynb"
    untidy = json.dumps(notebook_with_figures(), indent=2)
    path.write_text(untidy, encoding="utf-8")
    figure_alt.write([path], {"demo.ipynb": {"aaa": ["A line chart.", "A photo."]}})
    assert path.read_text(encoding="utf-8") == untidy

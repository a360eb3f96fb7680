"""Make the committed notebooks read well where no kernel runs (GitHub, nbviewer, an untrusted
JupyterLab), and check that they do.

    python tools/tidy_notebooks.py            # tidy every notebook in notebooks/ in place
    python tools/tidy_notebooks.py --check    # change nothing; list what is untidy, exit 1 if anything is

Run it after executing a notebook, then `python tools/figure_alt.py --write` (executing a notebook drops
its figures' alternative text with the old outputs; that tool stores the texts of docs/figure_alt.json)
and `python tools/slides.py --write` (the slide layout depends on the outputs' length). What it does to each notebook:

* nbval markers move from comments in the learner's code (``# NBVAL_IGNORE_OUTPUT``) to cell tags
  (``nbval-ignore-output``), which nbval reads the same way;
* widget outputs (sliders, tqdm's bars) are dropped with the saved widget state: without a kernel
  they show only as text such as ``interactive(children=(IntSlider(...`` or ``0% 0/260``, so a
  notebook stores the figure a widget draws, not the widget (a live kernel still shows it);
* the line ``load_cifar10`` prints when it fills its cache ("Decoding CIFAR-10 from PATH (once; cached
  in DIR) ...") is dropped: whether it appears depends on whether the machine had decoded that copy
  before, and it names the machine's paths (a run on a warm cache prints nothing there);
* consecutive stream outputs of one kind are joined into one, and the execution-timing metadata
  that Jupyter adds to every cell is removed;
* PNG figures are stored with a palette of 256 colours where that saves at least 10% (a plot looks
  the same; notebooks stay under :data:`MAX_BYTES`);
* a cell tagged ``remove-output`` (the tag Jupyter Book and nbconvert know) keeps no output (an
  exercise whose report would give its answer away is stored without it) and is tagged
  ``nbval-ignore-output`` too, since nbval has no stored output to compare it with.

``--check`` also reports notebooks over :data:`MAX_BYTES` and stored outputs that show an absolute
path of the machine they ran on.
"""

import json
import re
import sys
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
MAX_BYTES = 400_000
MARKER = re.compile(r"^# NBVAL_([A-Z_]+)[^\n]*\n?", re.MULTILINE)
WIDGET = "application/vnd.jupyter.widget-view+json"
CACHE_FILL = re.compile(r"^Decoding CIFAR-10 from .* \(once; cached in .*\) \.\.\.\n?", re.MULTILINE)
MACHINE_PATH = re.compile(r"(/root/|/home/\w+/|/tmp/|/work/|C:\\\\Users\\\\)")


def tidy_cell(cell):
    """The cell with markers as tags, widget outputs dropped, streams joined, timings removed."""
    cell.get("metadata", {}).pop("execution", None)
    if cell["cell_type"] != "code":
        return cell
    source = "".join(cell["source"])
    tags = cell["metadata"].get("tags", [])
    for name in MARKER.findall(source):
        tag = "nbval-" + name.lower().replace("_", "-")
        tags += [] if tag in tags else [tag]
    if tags:
        cell["metadata"]["tags"] = tags
    cell["source"] = MARKER.sub("", source).splitlines(keepends=True)
    if "remove-output" in tags:  # stored without output, so nbval has nothing to compare it with
        cell["outputs"] = []
        tags += [] if "nbval-ignore-output" in tags else ["nbval-ignore-output"]
    outputs = []
    for output in cell["outputs"]:
        if WIDGET in output.get("data", {}):
            continue
        if output["output_type"] == "stream" and CACHE_FILL.search("".join(output["text"])):
            output["text"] = CACHE_FILL.sub("", "".join(output["text"])).splitlines(keepends=True)
            if not output["text"]:
                continue
        previous = outputs[-1] if outputs else None
        if output["output_type"] == "stream" and previous and previous["output_type"] == "stream" \
                and previous["name"] == output["name"]:
            previous["text"] = ("".join(previous["text"]) + "".join(output["text"])).splitlines(keepends=True)
            continue
        outputs.append(output)
    cell["outputs"] = outputs
    return cell


def tidy(notebook, shrink_images=True):
    notebook["metadata"].pop("widgets", None)
    notebook["cells"] = [tidy_cell(cell) for cell in notebook["cells"]]
    if shrink_images:
        for cell in notebook["cells"]:
            for output in cell.get("outputs", []):
                if "image/png" in output.get("data", {}):
                    output["data"]["image/png"] = shrink_png(output["data"]["image/png"])
    return notebook


def shrink_png(encoded):
    """A PNG (base64, as a notebook stores it) with its colours reduced to a palette of 256, when that
    makes it at least 10% smaller: a plot's flat colours and anti-aliased edges look the same, in a
    third of the bytes. Anything else, or a PNG that would not shrink, comes back as it was."""
    import base64
    import io

    from PIL import Image

    raw = base64.b64decode("".join(encoded))
    image = Image.open(io.BytesIO(raw))
    buffer = io.BytesIO()
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(buffer, format="PNG",
                                                                                       optimize=True)
    smaller = buffer.getvalue()
    return base64.b64encode(smaller).decode() + "\n" if len(smaller) < 0.9 * len(raw) else encoded


def serialise(notebook):
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def machine_paths(notebook):
    """Stored text outputs that name an absolute path of the machine that ran them."""
    found = []
    for index, cell in enumerate(notebook["cells"]):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + "".join(output.get("data", {}).get("text/plain", ""))
            found += [f"cell {index}: {match.group(0)}..." for match in MACHINE_PATH.finditer(text)]
    return found


def problems(path):
    """What is untidy in the notebook at ``path`` (an empty list when nothing is)."""
    text = path.read_text(encoding="utf-8")
    notebook = json.loads(text)
    tidied = serialise(tidy(json.loads(text), shrink_images=False))  # shrinking is not checked: it depends on Pillow
    found = [] if tidied == text else ["not tidy: run python tools/tidy_notebooks.py"]
    if len(text.encode()) > MAX_BYTES:
        found.append(f"{len(text.encode()):,} bytes, more than {MAX_BYTES:,}")
    return found + machine_paths(notebook)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if argv == ["--check"]:
        report = {path.name: problems(path) for path in paths}
        for name, found in report.items():
            for problem in found:
                print(f"{name}: {problem}")
        return 1 if any(report.values()) else 0
    if argv:
        print(__doc__)
        return 2
    for path in paths:
        before = path.read_text(encoding="utf-8")
        after = serialise(tidy(json.loads(before)))
        if after != before:
            path.write_text(after, encoding="utf-8")
            print(f"tidied {path.name} ({len(after.encode()):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

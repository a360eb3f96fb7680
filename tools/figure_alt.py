"""Alternative text for the notebooks' figures: written once in docs/figure_alt.json, stored in the
notebooks with each image output.

    python tools/figure_alt.py --write   # put each text into its image output's metadata (in place)
    python tools/figure_alt.py --check   # change nothing; exit 1 if a figure lacks its text or differs
    python tools/figure_alt.py --list    # every image output with its text, for writing new ones

docs/figure_alt.json maps a notebook's file name to its cells, by cell id, and each cell to a list
of texts, one for each of the cell's outputs that holds an image, in order. ``--write`` stores a
text in the output's metadata under its image's mime type, ``{"image/png": {"alt": "..."}}``, where
the site (docs/site/_ext/course_site.py), nbconvert's HTML and slides, and JupyterLab's own
exporters read it. Only that metadata changes: a notebook is re-read from disk just before it is
written, and written in the form of tools/tidy_notebooks.py, which keeps output metadata.

Executing a notebook again keeps its cell ids but replaces its outputs, and their metadata with
them: run ``python tools/figure_alt.py --write`` again after re-executing a notebook (and after
tools/tidy_notebooks.py). ``--check`` reports a figure with no text in the file (a new figure:
write its text, saying what it shows and what to notice), a figure whose stored text is missing or
differs from the file (run --write), and a text whose cell or output no longer exists.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from tidy_notebooks import serialise  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
ALT_FILE = ROOT / "docs" / "figure_alt.json"


def load_alt_texts(path=ALT_FILE):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def image_mimes(output):
    return [mime for mime in output.get("data", {}) if mime.startswith("image/")]


def figures(notebook):
    """(cell id, index among the cell's image outputs, output) for every output that shows an image."""
    found = []
    for cell in notebook["cells"]:
        image_outputs = [output for output in cell.get("outputs", []) if image_mimes(output)]
        found += [(cell.get("id"), index, output) for index, output in enumerate(image_outputs)]
    return found


def stored_alt(output):
    """The output's alternative text, or None when one of its images has none (or they differ)."""
    alts = {output.get("metadata", {}).get(mime, {}).get("alt") for mime in image_mimes(output)}
    return alts.pop() if len(alts) == 1 else None


def with_alt(output, text):
    for mime in image_mimes(output):
        output.setdefault("metadata", {}).setdefault(mime, {})["alt"] = text


def problems(name, notebook, texts):
    """What --check reports for one notebook; `texts` is its part of the file ({cell id: [text]})."""
    found = []
    present = {(cell_id, index) for cell_id, index, _ in figures(notebook)}
    for cell_id, index, output in figures(notebook):
        wanted = texts.get(cell_id, [])[index:index + 1]
        where = f"{name} cell {cell_id} image {index}"
        if not wanted:
            found.append(f"{where}: no text in {ALT_FILE.relative_to(ROOT)}; write one")
        elif stored_alt(output) != wanted[0]:
            state = "has none" if stored_alt(output) is None else "differs from the file"
            found.append(f"{where}: its stored alternative text {state}; run python tools/figure_alt.py --write")
    for cell_id, cell_texts in texts.items():
        for index in range(len(cell_texts)):
            if (cell_id, index) not in present:
                found.append(f"{name} cell {cell_id} image {index}: a text for an image that no longer exists")
    return found


def apply(notebook, texts):
    """Store the file's texts in the notebook's image outputs; returns how many changed."""
    changed = 0
    for cell_id, index, output in figures(notebook):
        wanted = texts.get(cell_id, [])[index:index + 1]
        if wanted and stored_alt(output) != wanted[0]:
            with_alt(output, wanted[0])
            changed += 1
    return changed


def write(paths, alt_texts):
    for path in paths:
        before = path.read_text(encoding="utf-8")  # read just before writing: others may edit the text
        notebook = json.loads(before)
        if serialise(notebook) != before:
            print(f"{path.name}: not in tools/tidy_notebooks.py's form; run it first (not written)")
            continue
        changed = apply(notebook, alt_texts.get(path.name, {}))
        if changed:
            path.write_text(serialise(notebook), encoding="utf-8")
            print(f"{path.name}: alternative text stored for {changed} figure(s)")


def check(paths, alt_texts):
    report = []
    for path in paths:
        report += problems(path.name, json.loads(path.read_text(encoding="utf-8")), alt_texts.get(path.name, {}))
    report += [f"{name}: a notebook in {ALT_FILE.name} that is not in notebooks/"
               for name in sorted(set(alt_texts) - {path.name for path in paths})]
    print("\n".join(report) if report else f"every figure of {len(paths)} notebooks has its alternative text")
    return 1 if report else 0


def list_figures(paths, alt_texts):
    for path in paths:
        texts = alt_texts.get(path.name, {})
        for cell_id, index, output in figures(json.loads(path.read_text(encoding="utf-8"))):
            text = texts.get(cell_id, [])[index:index + 1]
            print(f"{path.name} {cell_id} {index} {image_mimes(output)}: {text[0] if text else '(no text)'}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    actions = {"--write": write, "--check": check, "--list": list_figures}
    if len(argv) != 1 or argv[0] not in actions:
        print(__doc__)
        return 2
    return actions[argv[0]](paths, load_alt_texts()) or 0


if __name__ == "__main__":
    sys.exit(main())

"""Slides for a classroom: give the notebooks slide metadata by a few teaching rules, check it,
and build one reveal.js deck per notebook that opens offline.

    python tools/slides.py --write            # set every cell's slide type in notebooks/ (in place)
    python tools/slides.py --check            # change nothing; exit 1 if --write would change a notebook
    python tools/slides.py --build OUT        # OUT/index.html and OUT/<notebook>.html, with reveal.js inside OUT
    python tools/slides.py --notebooks DIR ...  # the same on the notebooks in DIR

The rules, applied to each cell in order (``OVERRIDES``, keyed by a cell's ``id``, wins over them):

1. The title cell (``# ...``) is a slide. The code before the first ``##`` section (the Colab
   install and the imports), the "About this run" section, code that is only comments (the
   commented-out ``show_solution(...)`` lines) and "Stuck? ..." hints are skipped.
2. Every ``##`` section heading starts a slide; a section whose heading says "optional" starts a
   sub-slide instead, so that the right arrow passes it by and the down arrow goes into it.
3. Every other markdown cell (one idea each, ``###`` headings included) starts a sub-slide.
4. A code cell is a fragment of the sub-slide before it (the explanation first, then the code and
   its stored output on a key press) when both fit on one 1280x720 screen by the estimate of
   :func:`estimated_height`; otherwise (a long cell or a long output) it starts its own sub-slide.

``--build`` runs nbconvert's slides exporter on the notebooks as they are (nothing is executed),
with the template in docs/slides/template/resnet_edu (local reveal.js and MathJax, no jQuery, RequireJS or
Mermaid from a CDN, styles for a 1280x720 projector). reveal.js and MathJax come from the npm
registry at the versions in docs/slides/package-lock.json (`npm ci`, once: they are kept in
~/.cache/resnet_edu; Node.js's npm is needed, Debian's package `npm` on a bare machine); only the
files the decks load are copied into OUT. Remote images in markdown (the Colab badge) become
their alternative text as a link, so that a deck requests nothing from the internet.
"""

import argparse
import base64
import copy
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
SLIDES_DOCS = ROOT / "docs" / "slides"
TEMPLATE = SLIDES_DOCS / "template" / "resnet_edu"  # nbconvert template: conf.json, index.html.j2, slides.css

# A cell's id -> its slide type, where a rule's choice reads badly. Slide types: "slide",
# "subslide", "fragment", "-" (continues the sub-slide), "skip", "notes".
OVERRIDES = {}

# The 1280x720 slide's budget and the sizes docs/slides/template/slides.css gives (in CSS pixels).
SLIDE_WIDTH, SLIDE_HEIGHT = 1280, 720
HEIGHT_BUDGET = 640  # the slide's height less its padding and a margin for the estimate's error
TEXT_LINE, TEXT_CHARS = 29, 105  # markdown body: px per line, characters per wrapped line
CODE_LINE, CODE_CHARS = 20, 125  # code and text outputs
CELL_GAP = 14
IMAGE_MAX_HEIGHT = 540  # slides.css: img { max-height }
IMAGE_MAX_WIDTH = 1200

REMOTE_IMAGE = re.compile(r"!\[([^\]]*)\]\((https?://[^)\s]+)\)")
VENDOR_FILES = {  # what the decks load, relative to node_modules: copied into OUT/vendor
    "reveal.js/dist/reveal.js", "reveal.js/dist/reveal.css", "reveal.js/dist/theme/white.css",
    "reveal.js/dist/theme/fonts/source-sans-pro", "reveal.js/LICENSE",
    "mathjax/es5/tex-chtml.js", "mathjax/es5/output/chtml/fonts/woff-v2", "mathjax/es5/input/tex/extensions",
    "mathjax/LICENSE",
}


# --- the rules -------------------------------------------------------------------------------

def source(cell):
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def heading_level(cell):
    """1 for '# title', 2 for '## section', 3 for '### ...'; 0 for a cell that opens with no heading."""
    if cell["cell_type"] != "markdown":
        return 0
    match = re.match(r"(#{1,6}) ", source(cell).lstrip())
    return len(match.group(1)) if match else 0


def first_line(cell):
    return source(cell).strip().splitlines()[0] if source(cell).strip() else ""


def is_only_comments(cell):
    lines = [line.strip() for line in source(cell).splitlines() if line.strip()]
    return all(line.startswith("#") for line in lines) and not cell.get("outputs")


def png_size(encoded):
    """(width, height) of a base64 PNG, read from its header."""
    header = base64.b64decode(encoded[:64])
    return struct.unpack(">II", header[16:24])


def wrapped_lines(text, width):
    return sum(max(1, -(-len(line) // width)) for line in text.splitlines()) if text else 0


def markdown_height(text):
    lines = 0.0
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            lines += 0.4  # paragraph spacing
        elif stripped.startswith("#"):
            lines += 2.0  # a heading: larger type and its margin
        else:
            lines += wrapped_lines(stripped, TEXT_CHARS)
    return int(lines * TEXT_LINE)


def output_height(output):
    data = output.get("data", {})
    if "image/png" in data:
        width, height = png_size(data["image/png"])
        scale = min(1.0, IMAGE_MAX_WIDTH / width, IMAGE_MAX_HEIGHT / height)
        return int(height * scale)
    if output["output_type"] == "stream":
        text = "".join(output["text"])
    elif output["output_type"] == "error":
        text = "\n".join(output.get("traceback", []))
    else:
        text = "".join(data.get("text/plain", ""))
    return wrapped_lines(text.rstrip("\n"), CODE_CHARS) * CODE_LINE + CELL_GAP


def estimated_height(cell):
    """The cell's height on a 1280x720 slide in CSS pixels, estimated from its lines and figures."""
    if cell["cell_type"] == "markdown":
        return markdown_height(source(cell)) + CELL_GAP
    code = wrapped_lines(source(cell).rstrip("\n"), CODE_CHARS) * CODE_LINE + 2 * CELL_GAP
    return code + sum(output_height(output) for output in cell.get("outputs", []))


def skipped_sections(cells):
    """Indices of the cells before the first '##' section (the title excepted) and of the
    'About this run' section."""
    skipped, in_about, seen_section = set(), False, False
    for index, cell in enumerate(cells):
        level = heading_level(cell)
        if level and level <= 2:
            seen_section = seen_section or level == 2
            in_about = level == 2 and re.match(r"##\s+About this run", first_line(cell)) is not None
        if in_about or (not seen_section and level != 1):
            skipped.add(index)
    return skipped


def slide_types(notebook):
    """The slide type of every cell by the rules of the module's docstring."""
    cells = notebook["cells"]
    skipped = skipped_sections(cells)
    types, height = [], 0
    for index, cell in enumerate(cells):
        level = heading_level(cell)
        if index in skipped or (cell["cell_type"] == "code" and is_only_comments(cell)) \
                or (cell["cell_type"] == "markdown" and source(cell).lstrip().startswith("Stuck?")):
            kind = "skip"
        elif level == 1:
            kind = "slide"
        elif level == 2:
            kind = "subslide" if "optional" in first_line(cell).lower() else "slide"
        elif cell["cell_type"] == "markdown":
            kind = "subslide"
        else:
            kind = "fragment" if height + estimated_height(cell) <= HEIGHT_BUDGET else "subslide"
        kind = OVERRIDES.get(cell.get("id"), kind)
        if kind in ("slide", "subslide"):
            height = estimated_height(cell)
        elif kind in ("fragment", "-"):
            height += estimated_height(cell)
        types.append(kind)
    return types


def with_slide_metadata(notebook):
    """A copy of the notebook with every cell's metadata.slideshow.slide_type set by the rules."""
    notebook = copy.deepcopy(notebook)
    for cell, kind in zip(notebook["cells"], slide_types(notebook)):
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
    return notebook


# --- --write and --check ---------------------------------------------------------------------

def notebook_paths(folder):
    return sorted(Path(folder).glob("[0-9][0-9]_*.ipynb"))


def dump(notebook):
    """The notebook as Jupyter writes it (indent 1, non-ASCII kept, a final newline)."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def write(folder):
    changed = []
    for path in notebook_paths(folder):
        text = path.read_text(encoding="utf-8")
        new = dump(with_slide_metadata(json.loads(text)))
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path.name)
    return changed


def check(folder):
    """Names of the notebooks whose slide metadata differs from what the rules give."""
    stale = []
    for path in notebook_paths(folder):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        wanted = slide_types(notebook)
        stored = [cell.get("metadata", {}).get("slideshow", {}).get("slide_type") for cell in notebook["cells"]]
        if stored != wanted:
            stale.append(path.name)
    return stale


# --- --build ---------------------------------------------------------------------------------

class MissingTool(RuntimeError):
    """A tool the build needs is not installed."""


def vendor_is_cached():
    return (vendor_path() / "node_modules" / ".complete").exists()


def vendor_path():
    lock = (SLIDES_DOCS / "package-lock.json").read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "resnet_edu"
    return cache / ("slides-vendor-" + hashlib.sha256(lock).hexdigest()[:16])


def vendor_folder():
    """node_modules with reveal.js and MathJax at the locked versions (npm ci once, then cached)."""
    folder = vendor_path()
    if vendor_is_cached():
        return folder / "node_modules"
    npm = shutil.which("npm")
    if npm is None:
        raise MissingTool("tools/slides.py --build needs npm (Node.js's package manager) for reveal.js and MathJax "
                          "the first time: apt-get install npm")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SLIDES_DOCS / name, folder / name)
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline"],
                   cwd=folder, check=True, stdout=subprocess.DEVNULL)
    (folder / "node_modules" / ".complete").touch()
    return folder / "node_modules"


def copy_vendor(out):
    modules = vendor_folder()
    for relative in sorted(VENDOR_FILES):
        source_path, target = modules / relative, out / "vendor" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if source_path.is_dir():
            shutil.copytree(source_path, target, dirs_exist_ok=True)
        else:
            shutil.copy(source_path, target)


def local_only(notebook):
    """The notebook with remote images in markdown (the Colab badge) replaced by their alternative
    text, which stays a link: a deck must load nothing from the internet."""
    notebook = copy.deepcopy(notebook)
    for index, cell in enumerate(notebook["cells"]):
        cell.setdefault("id", f"cell-{index}")  # nbformat 4.5 wants one; a few cells lack it
        if cell["cell_type"] == "markdown":
            cell["source"] = REMOTE_IMAGE.sub(lambda match: match.group(1) or "image", source(cell))
    return notebook


def build_deck(path, out):
    import nbformat
    from nbconvert import SlidesExporter

    notebook = nbformat.reads(json.dumps(local_only(json.loads(path.read_text(encoding="utf-8")))), 4)
    exporter = SlidesExporter(template_name="resnet_edu", extra_template_basedirs=[str(TEMPLATE.parent)],
                              reveal_url_prefix="vendor/reveal.js", reveal_theme="white", exclude_input_prompt=True,
                              exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
    target = out / f"{path.stem}.html"
    target.write_text(html, encoding="utf-8")
    return target


def index_page(decks):
    items = "\n".join(f'  <li><a href="{deck.name}">{deck.stem.replace("_", " ")}</a></li>' for deck in decks)
    return textwrap.dedent("""\
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><title>resnet_edu: slides</title></head>
        <body style="font-family: sans-serif; max-width: 40em; margin: 3em auto">
        <h1>resnet_edu: one deck per notebook</h1>
        <p>Arrow keys: right for the next section, down for the next slide in a section; space for
        everything in order; Esc for an overview; F for full screen.</p>
        <ul>
        {items}
        </ul></body></html>
        """).format(items=items)


def build(folder, out):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    copy_vendor(out)
    shutil.copy(TEMPLATE / "slides.css", out / "vendor" / "slides.css")
    decks = [build_deck(path, out) for path in notebook_paths(folder)]
    (out / "index.html").write_text(index_page(decks), encoding="utf-8")
    return decks


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help="set the slide metadata in place")
    action.add_argument("--check", action="store_true", help="exit 1 if --write would change a notebook")
    action.add_argument("--build", metavar="OUT", help="build one deck per notebook into OUT")
    parser.add_argument("--notebooks", metavar="DIR", default=NOTEBOOKS, help="default: notebooks/")
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.notebooks)
        print("slide metadata written to " + (", ".join(changed) if changed else "no notebook (all up to date)"))
    elif args.check:
        stale = check(args.notebooks)
        if stale:
            print("slide metadata differs from the rules in " + ", ".join(stale)
                  + ": run python tools/slides.py --write")
            return 1
        print("slide metadata up to date")
    else:
        try:
            decks = build(args.notebooks, args.build)
        except MissingTool as error:
            print(error, file=sys.stderr)
            return 2
        for deck in decks:
            print(deck)
    return 0


if __name__ == "__main__":
    sys.exit(main())

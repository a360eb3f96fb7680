"""Build the course's static site from the committed notebooks, without running them.

    python tools/build_site.py              # into docs/_build/site
    python tools/build_site.py OUT          # into OUT
    python -m http.server -d docs/_build/site   # then read it at http://localhost:8000
    python tools/build_site.py --alt-report # list the notebooks' images that lack alternative text

The build tools are in docs/requirements.txt (`pip install -r docs/requirements.txt`).
tests/test_site.py builds the site and checks every page in headless Chromium.

Why Sphinx with MyST-NB rather than Jupyter Book 2 (mystmd): every piece installs from PyPI
(no Node.js), it builds offline (mystmd's HTML build fetches its site theme from the web the first
time it runs), it renders the notebooks' stored outputs without a kernel (`nb_execution_mode =
"off"`), and it has a search that works offline (a prebuilt index and a script, both on the site).
With maths written as MathML at build time (docs/site/_ext/course_site.py) and the Furo theme,
which ships its own assets, a page loads nothing from the internet.

What the build does: it copies docs/site/ (configuration, home page, results page, static files)
into a staging folder beside the notebooks, the README (the home page and the results page include
its sections) and docs/teaching.md (a placeholder page if it is missing); in the staged copies,
each notebook's Colab badge, whose image comes from colab.research.google.com, becomes a local
badge linking to `colab_url(notebook)`, and a link to a repository file that is not on the site
points to that file on the repository's web page. Then Sphinx builds the staged folder with
warnings as errors, so a broken reference or a missing image stops the build.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from colab_links import BADGE_LINE, NOTEBOOKS, colab_url, repository  # noqa: E402

SITE_SOURCE = ROOT / "docs" / "site"
DEFAULT_OUT = ROOT / "docs" / "_build" / "site"
GUIDE = "docs/teaching.md"
LOCAL_BADGE = "_static/open-in-colab.svg"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
MARKDOWN_TARGET = re.compile(r"\]\(([^)\s]+)\)")
PLACEHOLDER_GUIDE = """# Teacher's guide

The teacher's guide (`docs/teaching.md`) is not written yet; this page takes its place until it is.
"""


def site_pages():
    """Repository paths of the files that are pages of the site."""
    return {f"notebooks/{path.name}" for path in NOTEBOOKS} | {GUIDE}


def staged_target(target, source_dir, stage):
    """Where a relative link or image of a staged markdown text should point. `source_dir` is the
    folder of the text in the repository (and in the staging folder, which mirrors it)."""
    if re.match(r"^([a-z][a-z0-9+.-]*:|#|/)", target, re.IGNORECASE):
        return target  # an address, an anchor on the page, or an absolute path
    path, hash_, anchor = target.partition("#")
    in_repo = (ROOT / source_dir / path).resolve()
    if not in_repo.is_relative_to(ROOT) or not in_repo.exists():
        return target  # Sphinx reports it, and the build fails
    repo_path = in_repo.relative_to(ROOT).as_posix()
    if repo_path in site_pages() or (stage / repo_path).exists():
        return target
    if in_repo.suffix.lower() in IMAGE_SUFFIXES:  # shown on the page: copied onto the site
        (stage / repo_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(in_repo, stage / repo_path)
        return target
    kind = "tree" if in_repo.is_dir() else "blob"
    return f"{repository()}/{kind}/main/{repo_path}{hash_}{anchor}"


def staged_markdown(text, source_dir, stage):
    return MARKDOWN_TARGET.sub(lambda m: f"]({staged_target(m.group(1), source_dir, stage)})", text)


def local_badge(notebook):
    return f"[![Open in Colab](../{LOCAL_BADGE})]({colab_url(notebook)})\n\n"


def staged_notebook(notebook, stage):
    """The notebook's JSON with its Colab badge made local and its links made to work on the site."""
    nb = json.loads(notebook.read_text())
    markdown_cells = [cell for cell in nb["cells"] if cell["cell_type"] == "markdown"]
    intro = "".join(markdown_cells[0]["source"])
    if BADGE_LINE.search(intro):
        intro = BADGE_LINE.sub(lambda _: local_badge(notebook), intro, count=1)
    else:  # no badge: one goes under the title
        title, _, rest = intro.partition("\n")
        intro = f"{title}\n\n{local_badge(notebook)}{rest.lstrip()}"
    markdown_cells[0]["source"] = intro
    for cell in markdown_cells:
        cell["source"] = staged_markdown("".join(cell["source"]), "notebooks", stage)
    return json.dumps(with_cell_ids(nb), ensure_ascii=False)


def with_cell_ids(nb):
    """nbformat 4.5 gives every cell an id; one without would make the build warn."""
    for number, cell in enumerate(nb["cells"]):
        cell.setdefault("id", f"cell-{number}")
    return nb


def stage_sources(stage):
    """Fill `stage` with everything Sphinx reads, laid out as in the repository."""
    shutil.copytree(SITE_SOURCE, stage, ignore=shutil.ignore_patterns("__pycache__", "screenshot.png"))
    (stage / "notebooks").mkdir()
    for notebook in NOTEBOOKS:
        (stage / "notebooks" / notebook.name).write_text(staged_notebook(notebook, stage))
    (stage / "README.md").write_text(staged_markdown((ROOT / "README.md").read_text(), ".", stage))
    guide = ROOT / GUIDE
    (stage / GUIDE).parent.mkdir(parents=True, exist_ok=True)
    guide_text = staged_markdown(guide.read_text(), "docs", stage) if guide.exists() else PLACEHOLDER_GUIDE
    (stage / GUIDE).write_text(guide_text)


def images_lacking_alt_text():
    """(notebook, cell number, what) for every image in the notebooks without alternative text: image
    outputs with no `alt` in the output's metadata nor in the cell's (`"mystnb": {"image": {"alt":
    ...}}`), and markdown images with empty alt text."""
    found = []
    for notebook in NOTEBOOKS:
        for number, cell in enumerate(json.loads(notebook.read_text())["cells"]):
            source = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                found += [(notebook.name, number, f"markdown image {target}")
                          for target in re.findall(r"!\[\s*\]\(([^)\s]+)", source)]
                found += [(notebook.name, number, "HTML <img> without alt")
                          for tag in re.findall(r"<img\b[^>]*>", source) if not re.search(r"\balt=\S", tag)]
                continue
            cell_alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")
            for output in cell.get("outputs", []):
                for mime in output.get("data", {}):
                    if mime.startswith("image/") and not (
                            output.get("metadata", {}).get(mime, {}).get("alt") or cell_alt):
                        found.append((notebook.name, number, f"{mime} output"))
    return found


def missing_tools():
    missing = []
    for module in ["sphinx", "myst_nb", "furo", "latex2mathml"]:
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


def build(out):
    """Build the site into `out` (replaced); returns Sphinx's exit code."""
    out = Path(out).resolve()
    with tempfile.TemporaryDirectory(prefix="resnet_edu_site_") as work:
        stage = Path(work) / "source"
        stage_sources(stage)
        if out.exists():
            shutil.rmtree(out)
        command = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                   "-d", str(Path(work) / "doctrees"), str(stage), str(out)]
        return subprocess.run(command, cwd=stage).returncode


def alt_report():
    lacking = images_lacking_alt_text()
    for notebook, cell, what in lacking:
        print(f"{notebook} cell {cell}: {what} has no alternative text")
    print(f"{len(lacking)} images without alternative text")
    return 0


def main(argv):
    if "--alt-report" in argv:
        return alt_report()
    missing = missing_tools()
    if missing:
        print(f"missing build tools: {', '.join(missing)}; install them with "
              f"`pip install -r docs/requirements.txt`", file=sys.stderr)
        return 2
    out = Path(argv[0]) if argv else DEFAULT_OUT
    start = time.perf_counter()
    code = build(out)
    if code == 0:
        print(f"built the site in {time.perf_counter() - start:.0f} s: {out / 'index.html'}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

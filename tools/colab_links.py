"""Write the repository's address into every notebook and the README, from one place.

    python tools/colab_links.py            # rewrite the notebooks' badge and install cell, and the README's badges
    python tools/colab_links.py --check    # exit 1 and list what differs (tests/test_colab.py runs this)

The address is `[project.urls] Repository` in pyproject.toml. Each notebook gets an "Open in Colab"
badge under its title and, as its first code cell, the cell that installs the helper package (with
the extra the notebooks import: torchinfo and ipywidgets) when it runs in Colab, and nothing locally.
"""

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\(.*\)\]\(.*\)\n?\n?", re.MULTILINE)
README_BADGES = ("<!-- colab badges: start -->", "<!-- colab badges: end -->")


def repository():
    """The repository's web address, from pyproject.toml."""
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'^Repository\s*=\s*"([^"]+)"', text, re.MULTILINE).group(1).rstrip("/")


def colab_url(notebook):
    """Where Colab opens a notebook of this repository's main branch."""
    github_path = repository().replace("https://github.com/", "github/")
    return f"https://colab.research.google.com/{github_path}/blob/main/notebooks/{notebook.name}"


def badge(notebook):
    return f"[![Open In Colab]({BADGE_IMAGE})]({colab_url(notebook)})"


def install_cell_source():
    return ("# In Colab, install the course's helper package (and what the notebooks import) from its\n"
            "# repository; locally this does nothing.\n"
            "import sys\n"
            'if "google.colab" in sys.modules:\n'
            f'    !pip install -q "resnet_edu[notebooks] @ git+{repository()}"')


def lines(text):
    """A cell's source as Jupyter stores it: lines keeping their newline, the last without."""
    return text.splitlines(keepends=True)


def updated_notebook(path):
    """The notebook's JSON text with the current badge and install cell."""
    nb = json.loads(path.read_text())
    intro = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    title, _, rest = BADGE_LINE.sub("", "".join(intro["source"])).partition("\n")
    intro["source"] = lines(f"{title}\n\n{badge(path)}\n{rest}" if rest.startswith("\n") else
                            f"{title}\n\n{badge(path)}\n\n{rest}")
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    first_code["source"] = lines(install_cell_source())
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def updated_readme():
    """The README with one badge (notebook 01) and a link to each notebook in Colab between its markers."""
    text = (ROOT / "README.md").read_text()
    start, end = README_BADGES
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    links = " · ".join(f"[{p.stem}]({colab_url(p)})" for p in NOTEBOOKS)
    return f"{head}{start}\n{badge(NOTEBOOKS[0])} {links}\n{end}{tail}"


def differences():
    """(path, new text) for every file whose text would change."""
    wanted = [(p, updated_notebook(p)) for p in NOTEBOOKS] + [(ROOT / "README.md", updated_readme())]
    return [(path, text) for path, text in wanted if path.read_text() != text]


def main(argv):
    changed = differences()
    if "--check" in argv:
        for path, _ in changed:
            print(f"{path.relative_to(ROOT)}: badge or install cell out of date; run python tools/colab_links.py")
        return 1 if changed else 0
    for path, text in changed:
        path.write_text(text)
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

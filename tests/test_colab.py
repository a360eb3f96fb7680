"""What a learner meets on opening a notebook in Colab or JupyterLab: the Colab badge and install
cell name this repository, the install cell brings every package the notebooks import, and opening a
notebook changes nothing in it."""

import ast
import json
import subprocess
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# Every Jupyter kernel, Colab's included, runs on these; the install cell need not bring them.
KERNEL_PACKAGES = {"ipython", "ipykernel"}


def python_of(cell):
    """A code cell's Python, with IPython's ! and % lines made into ``pass``."""
    return "\n".join(line[:len(line) - len(line.lstrip())] + "pass" if line.lstrip().startswith(("!", "%"))
                     else line for line in "".join(cell["source"]).splitlines())


def imported_modules(notebook):
    cells = [c for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"]
    modules = set()
    for node in (n for cell in cells for n in ast.walk(ast.parse(python_of(cell)))):
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            modules.add(node.module.split(".")[0])
    return modules - set(sys.stdlib_module_names)


def installed_by_the_first_cell():
    """The distributions that `pip install resnet_edu[notebooks]` brings (names lower-cased)."""
    names = {"resnet_edu"}
    for requirement in requires("resnet_edu"):
        name = requirement.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        names.add(name.strip().lower())
    return names


def test_badges_and_install_cells_name_the_repository():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "colab_links.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_install_cell_brings_every_package_the_notebook_imports(notebook):
    distributions = packages_distributions()
    needed = {dist.lower() for module in imported_modules(notebook) for dist in distributions.get(module, [module])}
    missing = needed - installed_by_the_first_cell() - KERNEL_PACKAGES
    assert not missing, (f"{notebook.name} imports {sorted(missing)}, which `resnet_edu[notebooks]` does not "
                         f"install: add them to pyproject.toml (dependencies or the notebooks extra)")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_opening_a_notebook_changes_nothing(notebook):
    """JupyterLab rewrites the stored kernel name to the running kernel's, marking the notebook modified."""
    from jupyter_client.kernelspec import KernelSpecManager

    stored = json.loads(notebook.read_text())["metadata"]["kernelspec"]
    running = KernelSpecManager().get_kernel_spec(stored["name"])
    assert stored["display_name"] == running.display_name

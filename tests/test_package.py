"""The package's front door: the models import from the top, as torchvision.models has them, and
importing the package loads no plotting or data code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import resnet_edu


def test_the_public_names_import_from_the_top():
    for name in resnet_edu.__all__:
        assert hasattr(resnet_edu, name), name
    model = resnet_edu.resnet18()
    assert sum(p.numel() for p in model.parameters()) == 11_689_512  # torchvision's count
    assert isinstance(model, resnet_edu.ResNet) and isinstance(model.layer1[0], resnet_edu.BasicBlock)
    assert resnet_edu.__version__.count(".") >= 1 or resnet_edu.__version__ == "0+unknown"


def test_importing_the_package_stays_light():
    code = "import sys, resnet_edu; print(sorted(m for m in ('matplotlib', 'resnet_edu.dataset', " \
           "'resnet_edu.loaders', " \
           "'resnet_edu.train', 'resnet_edu.exercises', 'torchvision') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_the_names_a_learner_reaches_for_first_load_on_first_use():
    from resnet_edu.measure import count_parameters
    from resnet_edu.train import fit, recipe

    assert resnet_edu.fit is fit and resnet_edu.recipe is recipe and resnet_edu.count_parameters is count_parameters
    assert resnet_edu.count_parameters(resnet_edu.naive_resnet18()) > 0
    with pytest.raises(AttributeError, match="has no attribute 'resnet19'"):
        resnet_edu.resnet19  # noqa: B018 (the attribute access is the test)


def package_imports():
    """{module: the package modules it imports anywhere in its code}, read from the source with ast."""
    root = Path(resnet_edu.__file__).parent
    graph = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        package = parts if parts[-1] == "__init__" else parts[:-1]
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - node.level + 1] if package[-1] != "__init__" else package[:-node.level]
                target = ".".join(p for p in base + (node.module.split(".") if node.module else []) if p != "__init__")
                imported |= {target} if node.module else {f"{target}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("resnet_edu"):
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names if alias.name.startswith("resnet_edu")}
        graph[name] = imported
    return graph


def test_no_module_imports_one_that_imports_it_back():
    graph = package_imports()
    modules = set(graph)
    edges = {m: {t for t in targets if t in modules and t != m} for m, targets in graph.items()}
    assert edges["resnet_edu.train"] >= {"resnet_edu.loaders", "resnet_edu.runtime"}  # the reader works

    def cycle_from(start, path):
        for target in edges[path[-1]]:
            if target == start:
                return path + [target]
            if target not in path:
                found = cycle_from(start, path + [target])
                if found:
                    return found
        return None

    cycles = [cycle_from(m, [m]) for m in sorted(modules)]
    assert not [c for c in cycles if c], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles if c)

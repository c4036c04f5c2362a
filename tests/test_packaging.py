"""The package's metadata declares every library its code imports, so `pip install .` alone gives a working package.

Each folder is held to what a user of it installs: the package's own modules to the core dependencies, the Space to
the core and the ``space`` extra, the tests and benchmarks to those and the ``dev`` extra.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions, requires
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OWN_MODULES = {"dataset_script", "generation", "modeling", "training", "spaces", "tests", "benchmarks"} | {
    path.stem for path in (ROOT / "spaces" / "detector").glob("*.py")
}
"""Our packages, and the Space's modules, which import each other as top-level names."""
PACKAGE = ("dataset_script", "generation", "modeling", "training")


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return normalised(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip()).group(0))


def declared(*extras: str) -> set[str]:
    """The distributions the installed package's metadata requires, with those of ``extras``."""
    names = set()
    for requirement in requires("deepfake-mnist-plus") or []:
        extra = re.search(r"""extra\s*==\s*["']([^"']+)["']""", requirement)
        if extra is None or extra.group(1) in extras:
            names.add(requirement_name(requirement))
    return names


def imported_modules(folders: list[Path]) -> dict[str, str]:
    """Top-level module -> the first file importing it, for every absolute import in the folders' Python files, at
    any depth (an import inside a function counts: it runs when that function does)."""
    found: dict[str, str] = {}
    for path in sorted(file for folder in folders for file in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], path.relative_to(path.parents[1]).as_posix())
    return found


def undeclared(folders: list[Path], allowed: set[str]) -> list[str]:
    """Each third-party import whose distribution ``allowed`` lacks, named with a file that imports it."""
    distributions = packages_distributions()
    problems = []
    for module, where in sorted(imported_modules(folders).items()):
        if module in sys.stdlib_module_names or module in OWN_MODULES or module == "__future__":
            continue
        owners = {normalised(name) for name in distributions.get(module, [])}
        if not owners and normalised(module) in allowed:  # an extra's library that this environment lacks
            continue
        if not owners:
            problems.append(f"{module} (imported by {where}) is not installed, so no distribution declares it")
        elif not owners & allowed:
            problems.append(f"{module} (imported by {where}) comes from {', '.join(sorted(owners))}, undeclared")
    return problems


@pytest.mark.parametrize(
    ("folders", "extras"),
    [
        (PACKAGE, ()),
        (("spaces",), ("space",)),
        (("tests", "benchmarks"), ("space", "dev")),
    ],
    ids=["package-core", "space", "tests-and-benchmarks"],
)
def test_every_imported_library_is_declared(folders, extras):
    assert undeclared([ROOT / folder for folder in folders], declared(*extras)) == []


def test_the_check_names_an_undeclared_import(tmp_path):
    (tmp_path / "module.py").write_text("def load():\n    import facenet_pytorch\n    import yaml\n")
    problems = undeclared([tmp_path], declared() - {"facenet-pytorch"})
    assert len(problems) == 1 and "facenet_pytorch" in problems[0] and "facenet-pytorch, undeclared" in problems[0]

"""An operator installs what the README says (`pip install -e .`, no extras): every module
the deploy and its commands import at run time must come with the runtime dependencies."""

from __future__ import annotations

import ast
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = sorted([*ROOT.glob("*.py"), *(ROOT / "tasks").rglob("*.py")])


def imported_top_level_modules(paths) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


def distributions_with_their_dependencies(names: list[str]) -> set[str]:
    """The runtime dependencies, and what they in turn require (pyinfra brings gevent, ...)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return seen


def runtime_dependencies() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text).name for text in project["dependencies"]]


def test_every_runtime_import_is_a_runtime_dependency():
    if sys.version_info < (3, 11):  # tomllib
        import pytest

        pytest.skip("reads pyproject.toml with tomllib (Python 3.11+)")
    provided = distributions_with_their_dependencies(runtime_dependencies())
    by_module = metadata.packages_distributions()
    local = {"tasks", "tests", "benchmarks"} | {path.stem for path in ROOT.glob("*.py")}
    missing = {}
    for module, files in imported_top_level_modules(RUNTIME).items():
        if module in sys.stdlib_module_names or module in local or module == "__future__":
            continue
        distributions = {name.lower().replace("_", "-") for name in by_module.get(module, [])}
        if not distributions & provided:
            missing[module] = sorted(files)
    assert missing == {}, f"imported at run time but not brought by [project].dependencies: {missing}"

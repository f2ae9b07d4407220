"""The layers import one way: domain <- constraints, cost_models <- pipeline <- apps, scenarios.

Every import statement counts, including those inside functions and under TYPE_CHECKING ("not
even for type hints"). Constraint and cost modules are peers and do not import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cvxrebalance

ROOT = Path(cvxrebalance.__file__).resolve().parent
LAYERS = [  # (prefix, rank); the longest matching prefix decides
    ("cvxrebalance.optimizer", 0),  # the package's own __init__: a docstring only
    ("cvxrebalance.optimizer.domain", 0),
    ("cvxrebalance.constraints", 1),
    ("cvxrebalance.cost_models", 1),
    ("cvxrebalance.optimizer.pipeline", 2),
    ("cvxrebalance.optimizer.apps", 3),
    ("cvxrebalance.scenarios", 3),
    ("cvxrebalance", 4),  # the facade: everything above may be reached through it
]


def layer(module: str) -> tuple[str, int] | None:
    matches = [(p, r) for p, r in LAYERS if module == p or module.startswith(p + ".")]
    return max(matches, key=lambda m: len(m[0])) if matches else None


def modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] not in {"optimizer", "constraints", "cost_models", "scenarios"}:
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(["cvxrebalance", *parts])] = path
    return out


def imported(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}:{node.lineno}: relative import; use cvxrebalance.* paths")
    return out


MODULES = modules()


def test_every_package_is_in_a_layer():
    assert MODULES
    for name in MODULES:
        assert layer(name) is not None and layer(name)[1] < 4, name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_go_down(name):
    own_prefix, own = layer(name)
    for line, target in imported(MODULES[name]):
        found = layer(target)
        if found is None:
            continue  # a third-party or standard-library module
        prefix, rank = found
        where = f"{MODULES[name].relative_to(ROOT)}:{line} imports {target}"
        assert rank <= own, f"{where}: a layer {rank} module from layer {own}"
        if rank == own == 1:
            assert prefix == own_prefix, f"{where}: constraint and cost modules are peers"


def test_every_package_of_the_tree_is_installed():
    """A non-editable install (the README's, and CI's) ships only the packages pyproject lists:
    a new subpackage left out imports in development and fails once installed."""
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    listed = set(tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {"cvxrebalance"} | {
        "cvxrebalance." + ".".join(p.parent.relative_to(root).parts) for p in root.rglob("__init__.py")
        if p.parent != root and not {"tests", "benchmarks", "notebooks", ".git"} & set(p.relative_to(root).parts)
        and not any(part.startswith(".") or part in ("build", "dist") for part in p.relative_to(root).parts)}
    assert found - listed == set(), "packages missing from pyproject.toml [tool.setuptools] packages"

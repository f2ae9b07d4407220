"""The code base stays lint-clean (ruff, configured in pyproject.toml), every package imports on
its own, and the wheel installs one top-level package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ["cvxrebalance", "cvxrebalance.optimizer.domain", "cvxrebalance.constraints",
            "cvxrebalance.cost_models", "cvxrebalance.optimizer.pipeline", "cvxrebalance.optimizer.apps.cli",
            "cvxrebalance.scenarios"]


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is in the test extras")
def test_ruff_clean():
    out = subprocess.run(["ruff", "check", str(ROOT)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_first(package):
    # A fresh interpreter importing one package first catches circular imports between them.
    out = subprocess.run([sys.executable, "-c", f"import {package}"], capture_output=True, text=True,
                         cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr


def test_public_api_names_resolve():
    import cvxrebalance as cr

    assert sorted(cr.__all__) == sorted(cr._EXPORTS)
    for name in cr.__all__:
        assert getattr(cr, name) is not None, name
    with pytest.raises(AttributeError):
        cr.no_such_name  # noqa: B018


def test_command_line_starts_without_the_solvers():
    # `cvxrebalance --help` must not pay for cvxpy, pandas or the solvers (issue: 4 s start-up).
    code = ("import sys\nfrom cvxrebalance.optimizer.apps import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('cvxpy', 'pandas', 'scipy', 'piqp', 'clarabel', 'osqp') if m in sys.modules]\n"
            "print('heavy:' + ','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "heavy:", f"--help imported {out.stdout.splitlines()[-1]}"

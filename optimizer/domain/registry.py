"""Find a package's plug-in objects: every module of the package that defines ``attr``."""

from __future__ import annotations

import importlib
import pkgutil


def members(package: str, path, attr: str) -> tuple:
    """The ``attr`` objects of the modules of ``package`` (its ``__path__``), in module-name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(path), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        if hasattr(module, attr):
            found.append(getattr(module, attr))
    return tuple(found)

"""Scenarios: bundled example cases (package data under scenarios/cases/), market data and
backtests.

``backtest``, ``BacktestResult``, ``Market``, ``load_market``, ``shock`` and the tactical entry
points (``tactical_rebalance``, ``load_tactical_case``, ``Tactical``) are imported on first use, so
listing the cases (the command line's start) does not load the solvers.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def list_cases() -> list[str]:
    """Names of the bundled example cases."""
    root = resources.files(__name__) / "cases"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))


def case_path(name: str) -> Path:
    """Directory of a bundled case, e.g. ``case_path("example")``.

    Raises
    ------
    KeyError
        No bundled case has that name.
    """
    if name not in list_cases():
        raise KeyError(f"no bundled case {name!r}; bundled: {', '.join(list_cases())}")
    return Path(str(resources.files(__name__) / "cases" / name))


def book_path(name: str) -> Path:
    """Directory of a bundled batch input (an advisor's book), e.g. ``book_path("advisor")``.

    Raises
    ------
    KeyError
        No bundled book has that name.
    """
    books = Path(str(resources.files(__name__) / "books"))
    names = sorted(p.name for p in books.iterdir() if p.is_dir()) if books.is_dir() else []
    if name not in names:
        raise KeyError(f"no bundled book {name!r}; bundled: {', '.join(names) or 'none'}")
    return books / name


def trade_file_template(name: str) -> Path | None:
    """A bundled custodian layout (``scenarios/trade_files/NAME.toml``), or None if none is."""
    path = Path(str(resources.files(__name__) / "trade_files" / f"{name}.toml"))
    return path if path.is_file() else None


def trade_file_templates() -> list[str]:
    """Names of the bundled custodian layouts (``trade_file_template``)."""
    root = resources.files(__name__) / "trade_files"
    return sorted(p.name.removesuffix(".toml") for p in root.iterdir() if p.name.endswith(".toml"))


def describe_case(name: str) -> str:
    """First sentence of a bundled case's README (after its title)."""
    readme = case_path(name) / "README.md"
    if not readme.exists():
        return ""
    body = " ".join(line.strip() for line in readme.read_text().split("\n\n", 2)[1].splitlines())
    return body.replace("**", "").split(": ")[0].split(". ")[0]


_LAZY = {"backtest": "backtests", "BacktestResult": "backtests", "Market": "market", "load_market": "market",
         "shock": "shocks", "ShockResult": "shocks", "tactical_rebalance": "tactical",
         "load_tactical_case": "tactical", "Tactical": "tactical"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BacktestResult", "Market", "ShockResult", "Tactical", "backtest", "book_path", "case_path", "describe_case",
           "list_cases", "load_market", "load_tactical_case", "shock", "tactical_rebalance"]

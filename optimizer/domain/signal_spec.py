"""What a ``[signals.NAME]`` table of policy.toml may say: its ``kind``, the ``classes`` it acts
on and each kind's parameters with their defaults (the definitions are in docs/signals.md and
``scenarios.signals``).

The domain only reads and checks the table (every bad key named, as the other sections); the
signals themselves read market data, so they live in ``scenarios``, above the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cvxrebalance.optimizer.domain.errors import Problem

# Keys every tilt signal takes: how long a tilt may be held and how it reverts; most also name
# the classes that fund the tilt.
_TIME = {"max_days": 0.0, "reversion": "immediate", "reversion_periods": 1.0}
_TILT = {"funded_by": ("cash",), **_TIME}
KINDS: dict[str, dict[str, Any]] = {
    "momentum": {"lookback": 12.0, "skip": 0.0, "mode": "sign", "size": 0.02, "scale": 1.0, **_TILT},
    "trend": {"window": 10.0, "mode": "sign", "size": 0.02, "scale": 1.0, **_TILT},
    "volatility_target": {"window": 12.0, "target_vol": 0.10, "cap": 1.0, "safe": "cash", **_TIME},
    "volatility_bands": {"window": 12.0, "long_window": 0.0, "max_multiplier": 2.0},
    "momentum_bands": {"lookback": 12.0, "widen": 1.5},
    "valuation": {"series": "", "window": 0.0, "min_observations": 12.0, "direction": -1.0, "scale": 0.01,
                  "size": 0.02, **_TILT},
    "macro": {"series": "", "regimes": {}, **_TILT},
    "views": {"views": {}, "conviction": 1.0, "use": "tilt", **_TILT},
}
MODES = {"momentum": ("sign", "linear", "relative"), "trend": ("sign", "linear")}
REVERSIONS = ("immediate", "linear")
USES = ("tilt", "alpha")
BAND_KINDS = ("volatility_bands", "momentum_bands")
MAX_PERIODS = 100_000  # a window longer than 400 years of daily data is a typo
WHOLE = ("lookback", "skip", "window", "long_window", "min_observations", "reversion_periods")


@dataclass(frozen=True)
class SignalSpec:
    """One ``[signals.NAME]`` table: ``kind``, ``classes`` and the kind's parameters (defaults
    filled in)."""

    name: str
    kind: str
    classes: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, key: str) -> Any:
        params = self.__dict__.get("params", {})
        if key in params:
            return params[key]
        raise AttributeError(key)

    def to_dict(self) -> dict[str, Any]:
        """The table as written in policy.toml."""
        return {"kind": self.kind, "classes": list(self.classes),
                **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}}


def parse_signals(raw: Any, file: str, problems: list[Problem], coerce: Callable[[Any, Any], Any]) -> tuple[SignalSpec, ...]:
    """``[signals]``: a table of tables, one per signal, read in file order. ``coerce(value,
    default)`` reads a value as the type of its default (the policy's own reader, which raises
    TypeError or ValueError)."""
    if not isinstance(raw, dict):
        problems.append(Problem(file, None, "signals", "must be a table of [signals.NAME] tables"))
        return ()
    out = []
    for name, table in raw.items():
        where = f"signals.{name}"
        if not isinstance(table, dict):
            problems.append(Problem(file, None, where, "must be a table with a kind"))
            continue
        kind = table.get("kind")
        if kind not in KINDS:
            problems.append(Problem(file, None, f"{where}.kind", f"{kind!r} is not one of {', '.join(KINDS)}"))
            continue
        spec = _spec(name, kind, table, file, problems, coerce)
        if spec is not None:
            out.append(spec)
    return tuple(out)


def _spec(name: str, kind: str, table: dict, file: str, problems: list[Problem], coerce) -> SignalSpec | None:
    n = len(problems)

    def bad(key: str, msg: str) -> None:
        problems.append(Problem(file, None, f"signals.{name}.{key}", msg))

    defaults = {"classes": (), **KINDS[kind]}
    values = dict(defaults)
    for key, value in table.items():
        if key == "kind":
            continue
        if key not in defaults:
            bad(key, f"unknown key for a {kind} signal (keys: {', '.join(defaults)})")
            continue
        try:
            values[key] = coerce(value, defaults[key])
        except (TypeError, ValueError) as exc:
            bad(key, str(exc))  # the key keeps its default, so the checks of the others still run
    classes = values.pop("classes")
    spec = SignalSpec(name, kind, classes, values)
    _check(spec, bad)
    return spec if len(problems) == n else None


def _check(spec: SignalSpec, bad) -> None:
    """Ranges and choices of a spec whose keys all parsed."""
    p = spec.params
    for key in WHOLE:
        if key in p and (not 0 <= p[key] <= MAX_PERIODS or p[key] != int(p[key])):
            bad(key, f"must be a whole number of periods in [0, {MAX_PERIODS}]")
    for key in ("classes", "funded_by"):
        names = spec.classes if key == "classes" else p.get(key, ())
        for twice in sorted({c for c in names if names.count(c) > 1}):
            bad(key, f"names {twice!r} twice")
    if "funded_by" in p and not p["funded_by"] and p.get("mode") != "relative":
        bad("funded_by", "name at least one class to fund the tilt (the default is cash)")
    if spec.kind == "valuation" and p["window"] and p["window"] < max(p["min_observations"], 2):
        bad("window", "must be 0 (every observation so far) or at least min_observations (and 2)")
    if spec.kind in ("momentum", "trend", "volatility_target", "volatility_bands") and \
            p.get("lookback", p.get("window")) < 2 - (spec.kind == "momentum"):
        bad("lookback" if spec.kind == "momentum" else "window",
            "must be at least 1 period" if spec.kind == "momentum" else "must be at least 2 periods")
    if spec.kind in MODES and p["mode"] not in MODES[spec.kind]:
        bad("mode", f"{p['mode']!r} is not one of {', '.join(MODES[spec.kind])}")
    for key in ("size", "cap", "conviction"):
        if key in p and not 0 <= p[key] <= 1:
            bad(key, "must be in [0, 1] (a weight)")
    for key in ("target_vol", "scale"):
        if key in p and not p[key] > 0:
            bad(key, "must be > 0")
    if "max_multiplier" in p and not p["max_multiplier"] >= 1:
        bad("max_multiplier", "must be >= 1 (bands only widen)")
    if "widen" in p and not p["widen"] >= 1:
        bad("widen", "must be >= 1 (bands only widen)")
    if "direction" in p and p["direction"] not in (-1.0, 1.0):
        bad("direction", "must be 1 (a high value tilts toward the classes) or -1 (away from them)")
    if "max_days" in p and p["max_days"] < 0:
        bad("max_days", "must be >= 0 days (0: no limit)")
    if "reversion" in p and p["reversion"] not in REVERSIONS:
        bad("reversion", f"{p['reversion']!r} is not one of {', '.join(REVERSIONS)}")
    if "reversion_periods" in p and p["reversion_periods"] < 1:
        bad("reversion_periods", "must be at least 1 period")
    if "series" in p and not p["series"]:
        bad("series", "name the series of signals.csv this signal reads")
    if spec.kind == "views":
        if p["use"] not in USES:
            bad("use", f"{p['use']!r} is not one of {', '.join(USES)}")
        if not p["views"]:
            bad("views", "give at least one view: a table of class = tilt (or expected active return)")
        for cls, v in p["views"].items():
            if not abs(v) <= 1:
                bad(f"views.{cls}", "must be in [-1, 1]")
        if spec.classes:
            bad("classes", "a views signal acts on the classes its views name: leave classes out")
    elif not spec.classes:
        bad("classes", "name at least one asset class the signal acts on")
    if spec.kind == "macro":
        if not p["regimes"]:
            bad("regimes", "give at least one regime: a table of label = tilt")
        for label, v in p["regimes"].items():
            if not abs(v) <= 1:
                bad(f"regimes.{label}", "must be in [-1, 1] (a tilt)")
    funded = p.get("funded_by", (p["safe"],) if "safe" in p else ())
    tilted = set(p["views"]) if spec.kind == "views" else set(spec.classes)
    if p.get("mode") != "relative" and set(funded) & tilted:
        bad("safe" if "safe" in p else "funded_by", "a class cannot fund its own tilt")
    if spec.kind == "momentum" and p["mode"] == "relative" and len(spec.classes) < 2:
        bad("classes", "relative strength ranks at least 2 classes")

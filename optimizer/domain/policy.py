"""The rebalancing policy: objective weights, bands, trigger, tax, limits, trades, solver.

Every key has a documented default (docs/case_format.md); unknown keys are errors.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from cvxrebalance.optimizer.domain.calendar import FREQUENCIES
from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.signal_spec import SignalSpec, parse_signals
from cvxrebalance.optimizer.domain.tables import decode_utf8, iso_date

BAND_RULES = ("none", "absolute", "relative", "5/25", "volatility")
TRIGGER_MODES = ("always", "threshold", "calendar", "hybrid", "never")
REBALANCE_TO = ("target", "tolerance")
ESG_MODES = ("hold", "sell")
SOLVERS = ("auto", "PIQP", "CLARABEL", "OSQP")
INSTRUMENTS = ("both", "cash_only", "overlay_only")
BANDS_ON = ("exposure", "physical")
SPREADS = ("one_per_class", "pro_rata")
ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
MAX_NUMBER = 1e15  # any number in a policy (docs/case_format.md: the same limit as the tables)
MAX_WEIGHT = 1e9  # an objective weight; beyond it the other terms vanish in floating point


@dataclass(frozen=True)
class Objective:
    """Weights of the objective terms (costs and taxes are fractions of household value)."""

    risk_weight: float = 100.0
    cost_weight: float = 1.0
    tax_weight: float = 1.0
    location_weight: float = 0.0
    alpha_weight: float = 0.0  # the views' expected active return (targets.csv alpha), per year
    # factor_targets.csv's drift term, sum_k F_kk (x_k - target_k)^2: a factor's variance like
    # risk_weight's a' S a, so equal weights price a unit of factor variance alike.
    factor_weight: float = 100.0


@dataclass(frozen=True)
class Bands:
    """Band rule around each asset-class target (Daryanani's 5/25 by default)."""

    rule: str = "5/25"
    absolute: float = 0.05
    relative: float = 0.25
    inner: float = 0.5
    # Rule "volatility": a class as volatile as this (annual) gets ``absolute``; others in proportion.
    reference_vol: float = 0.15
    on: str = "exposure"  # "exposure" (physical + overlay) | "physical"
    # Rule "none" means no band rows at all; true keeps each class's weight (its exposure, with
    # an overlay) and cash within [0, 1] even then: an exposure floor and cap.
    exposure_floor: bool = False


@dataclass(frozen=True)
class Trigger:
    """Whether to trade at all (``mode``) and how far (``rebalance_to``)."""

    mode: str = "always"
    rebalance_to: str = "target"
    # The check dates of "calendar" and "hybrid" (optimizer.domain.calendar).
    frequency: str = "quarterly"
    # Partial rebalancing: move this fraction of the way from the current to the reference weights.
    fraction: float = 1.0


@dataclass(frozen=True)
class Tax:
    """Capital-gains rates by term, the trade date, gain netting and wash-sale settings.

    Realized gains net with the year's earlier gains (accounts.csv ``ytd_*``) into the convex
    tax max(c * net, net), net = short_rate * short gains + long_rate * long gains (household).
    ``c`` is ``loss_value`` in ``harvest`` mode (what a net loss carried forward is worth per
    dollar of tax) and 0 otherwise (losses only offset gains). ``gain_budget`` caps the net
    gain realized by this rebalance (currency; negative: no cap).
    """

    short_term_rate: float = 0.37
    long_term_rate: float = 0.20
    as_of: dt.date = field(default_factory=dt.date.today)
    harvest: bool = False
    loss_value: float = 0.5
    gain_budget: float = -1.0
    allow_short_term_gains: bool = True
    wash_window_days: float = 30.0


@dataclass(frozen=True)
class Tactical:
    """The governance of tilts (docs/signals.md): the default maximum |tilt| per class where
    targets.csv gives none, and the tactical risk budget, the largest ex-ante tracking error
    (annual) of the combined tilts against the strategic allocation (0: none); and the largest
    product of band signals' multipliers on a half-width (0: none)."""

    max_tilt: float = 0.05
    risk_budget: float = 0.0
    max_band_multiplier: float = 0.0


@dataclass(frozen=True)
class Esg:
    """What happens to excluded securities, and the minimum household ESG score."""

    excluded: str = "hold"
    min_score: float = 0.0


@dataclass(frozen=True)
class Limits:
    """Trading limits as fractions of household value."""

    turnover: float = 1.0


@dataclass(frozen=True)
class Trades:
    """What makes a ticket: the smallest trade (currency and shares; securities.csv overrides per
    security), a fixed cost per trade (currency), the most trades per household and per account
    (0: no limit), and how buys of interchangeable securities spread (``spread``):
    "one_per_class" buys each class through one security per account where the class's members
    are substitutes to the risk model (``constraints.priority``), "pro_rata" lets the objective's
    tie-break spread them over every member in proportion to the benchmark."""

    min_value: float = 0.0
    min_shares: float = 0.0
    ticket_cost: float = 0.0
    max_trades: float = 0.0
    max_trades_per_account: float = 0.0
    spread: str = "one_per_class"


@dataclass(frozen=True)
class Backtest:
    """How a backtest (scenarios.backtests) carries the household through time: which rebalancer
    decides, how the rule relieves lots, fractional shares, the start, and when taxes are paid."""

    rebalancer: str = "optimizer"  # "optimizer" (the convex program) | "rule" (scenarios.rule)
    lot_method: str = "fifo"  # the rule's lot relief: "fifo" | "hifo" | "average"
    fractional: bool = False  # the rule trades fractional shares (the optimizer trades whole ones)
    initial: str = "holdings"  # "holdings" (as given) | "target" (invested at target, no cost)
    tax_payment: str = "annual"  # "annual" (next year's first date) | "at_sale"
    # A phased schedule: once a check date trades, it and the next check dates move these
    # fractions of the original way to the reference weights (1.0 alone: all at once).
    phases: tuple[float, ...] = (1.0,)
    # The overlay's contracts are continuously rolled series: every such check date each
    # position pays a roll (both legs' commission and spread).
    roll_frequency: str = "quarterly"


@dataclass(frozen=True)
class Overlay:
    """The futures/forwards overlay: which instruments trade, margin, limits, rolls, hedges.

    ``gross_limit``/``net_limit`` bound sum |notional| and |sum notional| (fractions of household
    value); contracts expiring before ``horizon`` are closed and rolled into the next contract of
    the same underlying; ``hedge_ratio`` maps a currency to the share of the benchmark's exposure
    to it that is hedged (the target the currency forwards steer to). ``counterparty_limit`` caps
    the gross notional of the OTC contracts (forwards, swaps) of each counterparty, a fraction of
    household value (0: no limit), ``counterparty_limits`` per named counterparty; a swap without
    its own ``collateral`` reserves its value change under a ``collateral_move`` parallel rate move.
    """

    instruments: str = "both"  # "both" | "cash_only" | "overlay_only"
    margin_buffer: float = 0.10
    collateral_move: float = 0.005  # 50 bp: about a 10-day 99% move of swap rates
    counterparty_limit: float = 0.0
    counterparty_limits: dict[str, float] = field(default_factory=dict)
    gross_limit: float = 1.0
    net_limit: float = 1.0
    horizon: dt.date | None = None
    accounts: tuple[str, ...] = ("taxable",)
    hedge_ratio: dict[str, float] = field(default_factory=dict)
    compare_cash_only: bool = True


@dataclass(frozen=True)
class Solver:
    """Solver name: ``auto`` walks the measured fallback chain."""

    name: str = "auto"


@dataclass(frozen=True)
class Policy:
    """A complete rebalancing policy.

    Examples
    --------
    >>> from cvxrebalance import Policy
    >>> p = Policy.from_dict({"bands": {"rule": "absolute", "absolute": 0.03}})
    >>> p.bands.rule, p.bands.absolute, p.objective.risk_weight
    ('absolute', 0.03, 100.0)
    """

    objective: Objective = field(default_factory=Objective)
    bands: Bands = field(default_factory=Bands)
    trigger: Trigger = field(default_factory=Trigger)
    tax: Tax = field(default_factory=Tax)
    tactical: Tactical = field(default_factory=Tactical)
    esg: Esg = field(default_factory=Esg)
    limits: Limits = field(default_factory=Limits)
    trades: Trades = field(default_factory=Trades)
    overlay: Overlay = field(default_factory=Overlay)
    solver: Solver = field(default_factory=Solver)
    backtest: Backtest = field(default_factory=Backtest)
    # ``[signals.NAME]`` tables (optimizer.domain.signal_spec), applied by scenarios.signals.
    signals: tuple[SignalSpec, ...] = ()

    @classmethod
    def from_dict(cls, data: dict[str, Any], file: str = "policy.toml") -> Policy:
        """Build a policy from a nested dict (as read from TOML), reporting every bad key.

        Raises
        ------
        ValidationError
            Unknown sections or keys, wrong types, values out of range.
        """
        problems: list[Problem] = []
        sections: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "signals":
                sections[f.name] = parse_signals(data.get(f.name, {}), file, problems, _coerce)
                continue
            section_cls = f.default_factory  # type: ignore[misc]
            raw = data.get(f.name, {})
            if not isinstance(raw, dict):
                problems.append(Problem(file, None, f.name, "must be a table"))
                continue
            sections[f.name] = _parse_section(section_cls, f.name, raw, file, problems)
        for name in data:
            if name not in sections and name not in {f.name for f in fields(cls)}:
                problems.append(Problem(file, None, name, "unknown section"))
        # Sections that could not be read keep their defaults, so the value checks still run.
        policy = cls(**sections)
        problems.extend(policy.problems(file))
        if problems:
            raise ValidationError(problems)
        return policy

    @classmethod
    def from_toml(cls, path: str | Path) -> Policy:
        """Read a policy file; a missing file means all defaults."""
        path = Path(path)
        if not path.exists():
            return cls()
        problems: list[Problem] = []
        if path.is_dir():
            raise ValidationError([Problem(path.name, None, None, "is a directory, not a file")])
        text = decode_utf8(path.read_bytes(), path.name, problems)  # a byte-order mark is dropped
        if text is None:
            raise ValidationError(problems)
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            where = re.search(r"at line (\d+)", str(exc))
            line = int(where.group(1)) if where else None
            raise ValidationError([Problem(path.name, line, None, f"not valid TOML: {exc}")]) from exc
        return cls.from_dict(data, file=path.name)

    def replace(self, **sections: dict[str, Any]) -> Policy:
        """A copy with some keys changed, e.g. ``policy.replace(bands={"rule": "none"})``."""
        data = self.to_dict()
        for name, changes in sections.items():
            if name not in data or not isinstance(changes, dict):
                raise ValidationError([Problem("policy", None, name, "unknown section")])
            data[name] = {**data[name], **changes}
        return Policy.from_dict(data, file="policy")

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """The policy as nested dicts (the shape of policy.toml)."""
        out = {f.name: {g.name: getattr(getattr(self, f.name), g.name)
                        for g in fields(getattr(self, f.name))} for f in fields(self) if f.name != "signals"}
        return out | {"signals": {s.name: s.to_dict() for s in self.signals}}

    def problems(self, file: str) -> list[Problem]:
        """Range and choice checks on a built policy."""
        out: list[Problem] = []

        def bad(section: str, key: str, msg: str) -> None:
            out.append(Problem(file, None, f"{section}.{key}", msg))

        for key in ("risk_weight", "cost_weight", "tax_weight", "location_weight", "alpha_weight", "factor_weight"):
            if not 0 <= getattr(self.objective, key) <= MAX_WEIGHT:
                bad("objective", key, f"must be in [0, {MAX_WEIGHT:g}]")
        _choice(self.bands.rule, BAND_RULES, "bands", "rule", bad)
        _choice(self.trigger.mode, TRIGGER_MODES, "trigger", "mode", bad)
        _choice(self.trigger.rebalance_to, REBALANCE_TO, "trigger", "rebalance_to", bad)
        _choice(self.trigger.frequency, FREQUENCIES, "trigger", "frequency", bad)
        if not 0 < self.trigger.fraction <= 1:
            bad("trigger", "fraction", "must be in (0, 1] (1: all the way to the reference weights)")
        _choice(self.backtest.rebalancer, ("optimizer", "rule"), "backtest", "rebalancer", bad)
        _choice(self.backtest.lot_method, ("fifo", "hifo", "average"), "backtest", "lot_method", bad)
        _choice(self.backtest.initial, ("holdings", "target"), "backtest", "initial", bad)
        _choice(self.backtest.tax_payment, ("annual", "at_sale"), "backtest", "tax_payment", bad)
        _choice(self.backtest.roll_frequency, FREQUENCIES, "backtest", "roll_frequency", bad)
        phases = self.backtest.phases
        if any(not 0 < f <= 1 for f in phases) or sum(phases) > 1 + 1e-9:
            bad("backtest", "phases", "each phase must be in (0, 1] and together at most 1 (fractions of the "
                "way to the reference weights)")
        elif phases != (1.0,) and self.trigger.fraction != 1:
            bad("backtest", "phases", "give either [trigger] fraction or [backtest] phases, not both")
        _choice(self.esg.excluded, ESG_MODES, "esg", "excluded", bad)
        _choice(self.solver.name.upper(), SOLVERS + ("AUTO",), "solver", "name", bad)
        for key in ("absolute", "relative"):
            if not 0 <= getattr(self.bands, key) <= 1:
                bad("bands", key, "must be in [0, 1]")
        if not 0 <= self.bands.inner <= 1:
            bad("bands", "inner", "must be in [0, 1]")
        if not 0 < self.bands.reference_vol <= 10:
            bad("bands", "reference_vol", "must be in (0, 10] (an annual volatility)")
        for key in ("short_term_rate", "long_term_rate", "loss_value"):
            if not 0 <= getattr(self.tax, key) <= 1:
                bad("tax", key, "must be in [0, 1]")
        if not 0 <= self.tactical.max_tilt <= 1:
            bad("tactical", "max_tilt", "must be in [0, 1]")
        if not 0 <= self.tactical.risk_budget <= 1:
            bad("tactical", "risk_budget", "must be in [0, 1] (an annual tracking error; 0: no budget)")
        if not (self.tactical.max_band_multiplier == 0 or 1 <= self.tactical.max_band_multiplier <= 100):
            bad("tactical", "max_band_multiplier", "must be in [1, 100] (bands only widen; 0: no cap)")
        if not 0 <= self.tax.wash_window_days <= 3660 or self.tax.wash_window_days != int(self.tax.wash_window_days):
            bad("tax", "wash_window_days", "must be a whole number of days in [0, 3660] (0: no wash-sale rule)")
        if self.esg.min_score < 0:
            bad("esg", "min_score", "must be >= 0 (0: no minimum)")
        if self.limits.turnover < 0:
            bad("limits", "turnover", "must be >= 0")
        for key in ("min_value", "min_shares", "ticket_cost"):
            if getattr(self.trades, key) < 0:
                bad("trades", key, "must be >= 0 (0: none)")
        for key in ("max_trades", "max_trades_per_account"):
            n = getattr(self.trades, key)
            if n < 0 or n != int(n):
                bad("trades", key, "must be a whole number >= 0 (0: no limit)")
        _choice(self.bands.on, BANDS_ON, "bands", "on", bad)
        _choice(self.trades.spread, SPREADS, "trades", "spread", bad)
        _choice(self.overlay.instruments, INSTRUMENTS, "overlay", "instruments", bad)
        for t in self.overlay.accounts:
            _choice(t, ACCOUNT_TYPES, "overlay", "accounts", bad)
        for key in ("margin_buffer", "gross_limit", "net_limit"):
            if not 0 <= getattr(self.overlay, key) <= 100:
                bad("overlay", key, "must be in [0, 100] (fractions of household value)")
        if not 0 <= self.overlay.collateral_move <= 1:
            bad("overlay", "collateral_move", "must be a rate move in [0, 1] (0.005 is 50 basis points)")
        for key, limit in [("counterparty_limit", self.overlay.counterparty_limit),
                           *((f"counterparty_limits.{c}", v) for c, v in self.overlay.counterparty_limits.items())]:
            if not 0 <= limit <= 100:
                bad("overlay", key, "must be in [0, 100] (fractions of household value; 0 in counterparty_limit: "
                    "no limit)")
        for cur, h in self.overlay.hedge_ratio.items():
            if not 0 <= h <= 1:
                bad("overlay", f"hedge_ratio.{cur}", "must be in [0, 1]")
        # A threshold trigger with bands rule "none" needs edges of the household's own
        # (targets.csv lower/upper, factor_targets.csv): checked with the household, in prepare.
        if self.trigger.rebalance_to == "tolerance" and self.bands.rule == "none":
            bad("trigger", "rebalance_to", '"tolerance" needs a band rule other than "none" (without '
                "bands every weight is within tolerance, so nothing would ever trade)")
        return out


def _choice(value: str, allowed: tuple[str, ...], section: str, key: str, bad) -> None:
    if value not in allowed:
        bad(section, key, f"{value!r} is not one of {', '.join(allowed)}")


def _parse_section(section_cls, name: str, raw: dict, file: str, problems: list[Problem]):
    known = {f.name: f for f in fields(section_cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(Problem(file, None, f"{name}.{key}", "unknown key"))
            continue
        default = getattr(section_cls(), key)
        try:
            values[key] = _coerce(value, default)
        except (TypeError, ValueError) as exc:
            problems.append(Problem(file, None, f"{name}.{key}", str(exc)))
    return section_cls(**values)


def _coerce(value: Any, default: Any) -> Any:
    if isinstance(default, tuple) and default and isinstance(default[0], float):
        if not isinstance(value, list | tuple) or not value:
            raise TypeError(f"expected a list of numbers, got {value!r}")
        return tuple(_coerce(v, 0.0) for v in value)
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise TypeError(f"expected a list of strings, got {value!r}")
        return tuple(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise TypeError(f"expected a table, got {value!r}")
        return {str(k).strip(): float(_coerce(v, 0.0)) for k, v in value.items()}  # keys trimmed like cells
    if default is None:  # an optional date (overlay.horizon)
        return None if value is None else _coerce(value, dt.date.today())
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise TypeError(f"expected true or false, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"expected a number, got {value!r}")
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise ValueError(f"expected a finite number of size at most {MAX_NUMBER:g}, got {value!r}")
        return float(value)
    if isinstance(default, dt.date):
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return iso_date(value.strip())
        raise TypeError(f"expected a date, got {value!r}")
    if isinstance(default, str):
        if not isinstance(value, str):
            raise TypeError(f"expected a string, got {value!r}")
        return value
    return value

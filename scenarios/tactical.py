"""Tactical signals applied: the same rule in a single rebalance (today's values) and in every
decision of a backtest (the signals' history).

``Tactical(household, policy, market, series)`` reads the policy's ``[signals.NAME]`` tables
once: the classes' benchmark returns from the market data, every signal's history
(``scenarios.signals``), each tilt signal under its time limits (``governance.hold``).
``at(date)`` combines them on a date under the size and risk limits (``governance.limit``) into
a ``Decision``; ``household(household, decision)`` writes it into the targets the optimizer
reads (tilt, band edges, expected active return), so the pipeline needs nothing new and its
checker verifies the tilts as any other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.prepare import prepare
from cvxrebalance.optimizer.domain.signal_spec import BAND_KINDS
from cvxrebalance.optimizer.domain.tables import CASH, Column, file_lines, parse_table
from cvxrebalance.scenarios import governance
from cvxrebalance.scenarios.market import Market
from cvxrebalance.scenarios.signals import History, Inputs, history

SIGNALS = {"date": Column("date", required=True), "name": Column("str", required=True),
           "value": Column("str", required=True)}
HAND = "targets.csv"  # the source name of the hand-typed tilt


@dataclass
class Decision:
    """The tactical state on one date.

    Attributes
    ----------
    date : Timestamp
        The data date the signals were read on (the last one on or before the date asked).
    tilt : Series
        Final tilt per class (``cash`` included), summing to zero.
    by_signal : DataFrame
        Each source's share of the final tilt (sources x classes; ``targets.csv`` is the hand tilt).
    raw : DataFrame
        Each tilt source's tilt before the limits (after its time limits), sources x classes.
    lower, upper : Series
        Band half-width multipliers per class (1: the policy's band).
    alpha : Series
        Expected active return per class (annual), from ``views`` with ``use = "alpha"``.
    readings : dict of name -> Series
        Each signal's own reading on the date (a momentum, a z-score, a volatility ratio).
    clips : DataFrame
        Every tilt a limit changed (``governance.CLIP_COLUMNS``).
    tracking_error : float
        Ex-ante tracking error of the final tilt (annual).
    strategic : Series
        Strategic weight per class.
    """

    date: pd.Timestamp
    strategic: pd.Series
    tilt: pd.Series
    by_signal: pd.DataFrame
    raw: pd.DataFrame
    lower: pd.Series
    upper: pd.Series
    alpha: pd.Series
    readings: dict[str, pd.Series]
    clips: pd.DataFrame
    tracking_error: float
    budget: float = 0.0

    def table(self) -> pd.DataFrame:
        """One row per class: the strategic weight, each source's tilt before the limits
        (``raw_<source>``), the final tilt and target, the band multipliers and the expected
        active return (what ``cvxrebalance signals`` prints)."""
        out = pd.DataFrame({"strategic": self.strategic})
        out = out.join(self.raw.T.add_prefix("raw_"))
        out["tilt"] = self.tilt
        out["target"] = self.strategic + self.tilt
        out["band_lower_x"], out["band_upper_x"] = self.lower, self.upper
        if self.alpha.any():
            out["alpha"] = self.alpha
        return out.rename_axis("asset_class")

    def to_text(self) -> str:
        """The readings, the tilts they imply and every clip, for a terminal."""
        lines = [f"Signals read on {self.date.date()}", "", "Readings (each signal's own value)"]
        for name, reading in self.readings.items():
            values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in reading.items())
            lines.append(f"  {name}: {values or 'no value yet (its window is not full)'}")
        table = self.table()
        formats = {c: (lambda x: f"x{x:.3g}") if c.startswith("band_") else (lambda x: f"{x:+.3%}" if x else "0")
                   for c in table.columns}
        formats["strategic"] = formats["target"] = lambda x: f"{x:.3%}"
        lines += ["", "Tilts (weights of household value; band_*_x multiply the band's half-widths)",
                  table.to_string(formatters=formats)]
        budget = f" (budget {self.budget:.2%})" if self.budget else ""
        lines += ["", f"Ex-ante tracking error of the tilts: {self.tracking_error:.3%}{budget}", ""]
        if len(self.clips):
            # Tilts in percent of household value; a band multiplier as x1.5.
            clips = self.clips.drop(columns="date").astype(object)
            bands = clips["signal"] == "bands"
            for c in ("before", "after"):
                clips[c] = [f"x{v:.3g}" if b else f"{v + 0.0:+.3%}" for v, b in zip(self.clips[c], bands, strict=True)]
            lines += ["Clipped by the governance limits", clips.to_string(index=False)]
        else:
            lines.append("No limit clipped a tilt.")
        return "\n".join(lines)


class Tactical:
    """A policy's signals over a market history, for one household (module docstring).

    Parameters
    ----------
    household : Household
        Its targets give the classes, the strategic weights, the hand tilts and ``max_tilt``;
        its risk model the covariance of the risk budget.
    policy : Policy
        ``[signals.NAME]`` tables and ``[tactical]`` limits.
    market : Market
        The history the signals read; a date's signals read only the rows up to that date.
    series : DataFrame, optional
        signals.csv (``date, name, value``): the user series of ``valuation`` and ``macro``.

    Raises
    ------
    ValidationError
        A class a signal names that the household does not have, a missing or bad series, a
        band signal on a model portfolio (security targets).
    """

    def __init__(self, household: Household, policy: Policy, market: Market,
                 series: pd.DataFrame | None = None) -> None:
        self.policy = policy
        self.specs = policy.signals
        self.plain = dataclasses.replace(policy, signals=())
        self.data = data = prepare(household, self.plain)  # the household as given (the backtest's start)
        self.classes = [*data.classes, CASH]
        self.by_security = household.target_by == "security_id"
        self._check_classes(household)
        V = _class_mix(data)
        strategic = np.append(data.strategic, 1.0 - data.strategic.sum())
        self.strategic = pd.Series(strategic, index=self.classes)
        self.max_tilt = np.append(data.targets_detail.max_tilt, policy.tactical.max_tilt)
        self.cov = _class_covariance(data, V)
        self.inputs = Inputs(_class_returns(market, data, V), market.periods_per_year, self.strategic,
                             _read_series(series, self.specs))
        self._check_returns(market)
        self.histories: dict[str, History] = {s.name: history(s, self.inputs) for s in self.specs}
        self.held: dict[str, tuple[pd.DataFrame, pd.Series]] = {
            s.name: governance.hold(self.histories[s.name].values, s) for s in self.specs
            if self.histories[s.name].use == "tilt"}
        self._targets = household.targets
        self.hand_tilt = bool(household.targets["tilt"].any())  # targets.csv has a tilt (live or expired)
        self._security_class = dict(zip(household.securities["security_id"], household.securities["asset_class"],
                                        strict=True)) if self.by_security else {}

    # ------------------------------------------------------------------------------ checks
    def _check_classes(self, household: Household) -> None:
        problems = []
        known = set(self.classes)
        for s in self.specs:
            named = {"classes": s.classes, "funded_by": s.params.get("funded_by", ()),
                     "safe": (s.params["safe"],) if "safe" in s.params else (),
                     "views": tuple(s.params.get("views", {}))}
            for key, names in named.items():
                for c in names:
                    if c not in known:
                        problems.append(Problem("policy.toml", None, f"signals.{s.name}.{key}",
                                                f"{c!r} is not an asset class of the household "
                                                f"({', '.join(self.classes)})"))
            if s.kind in BAND_KINDS and self.by_security:
                problems.append(Problem("policy.toml", None, f"signals.{s.name}.kind",
                                        "band signals adjust asset-class bands: the targets are by security_id"))
        if problems:
            raise ValidationError(problems)

    @property
    def active(self) -> bool:
        """Whether any tilt can be in force: a signal, or a hand tilt in targets.csv."""
        return bool(self.specs) or self.hand_tilt

    def _check_returns(self, market: Market) -> None:
        """Every class a return-reading signal acts on has a return series in the data."""
        problems = []
        for s in self.specs:
            if s.kind in ("valuation", "macro", "views"):
                continue
            for c in (*s.classes, *s.params.get("funded_by", ())):
                if self.inputs.returns[c].isna().all():
                    problems.append(Problem(market.source, None, c, f"no return series for the securities of class "
                                            f"{c!r}, which signals.{s.name} reads"))
        if problems:
            raise ValidationError(problems)

    # ---------------------------------------------------------------------------- a date
    def at(self, date) -> Decision:
        """The signals combined under the governance limits on ``date`` (the last data date on
        or before it; before the data begins, no signal has a value)."""
        index = self.inputs.returns.index
        when = pd.Timestamp(date)
        t = int(index.searchsorted(when, side="right")) - 1
        day = index[t] if t >= 0 else when
        classes = self.classes
        sources, clips, readings = {}, [], {}
        lower = pd.Series(1.0, index=classes)
        upper = pd.Series(1.0, index=classes)
        alpha = pd.Series(0.0, index=classes)
        for s in self.specs:
            h = self.histories[s.name]
            readings[s.name] = h.raw.iloc[t].dropna() if t >= 0 else pd.Series(dtype=float)  # NaN: no value yet
            if t < 0:
                continue
            if h.use == "tilt":
                held, cut = self.held[s.name]
                sources[s.name] = held.iloc[t]
                if cut.iloc[t]:
                    clips.extend(governance.Clip(day, s.name, c, "max_days", float(v), float(held.iloc[t][c]))
                                 for c, v in h.values.iloc[t].items() if abs(v) > governance.TOL)
            elif h.use == "bands":
                lower = lower * h.values.iloc[t].reindex(classes, fill_value=1.0)
                upper = upper * h.upper.iloc[t].reindex(classes, fill_value=1.0)
            else:
                alpha = alpha + h.values.iloc[t].reindex(classes, fill_value=0.0)
        cap = self.policy.tactical.max_band_multiplier
        if cap:  # band signals multiply: their product is held to the cap
            for side, m in (("lower", lower), ("upper", upper)):
                clips.extend(governance.Clip(day, "bands", c, f"max_band_multiplier ({side})", float(v), cap)
                             for c, v in m.items() if v > cap + governance.TOL)
            lower, upper = lower.clip(upper=cap), upper.clip(upper=cap)
        sources[HAND] = self._hand_tilt(when)
        raw = pd.DataFrame(sources, index=classes).T.fillna(0.0)
        final, share, limited = governance.limit(day, raw, self.strategic.to_numpy(), self.max_tilt, self.cov,
                                                 self.policy.tactical.risk_budget)
        clips.extend(limited)
        keep = [k for k in raw.index if k != HAND or raw.loc[HAND].any()]
        return Decision(day, self.strategic, pd.Series(final, index=classes), pd.DataFrame(share, raw.index, classes).loc[keep],
                        raw.loc[keep], lower, upper, alpha, readings,
                        pd.DataFrame([dataclasses.astuple(c) for c in clips], columns=governance.CLIP_COLUMNS),
                        governance.tracking_error(final, self.cov), self.policy.tactical.risk_budget)

    def _hand_tilt(self, when: pd.Timestamp) -> pd.Series:
        """The live targets.csv tilt per class on ``when`` (expired tilts revert to zero)."""
        out = pd.Series(0.0, index=self.classes)
        tgt = self._targets
        cls_of = self._security_class
        for key, tilt, expires in zip(tgt["id"], tgt["tilt"], tgt["tilt_expires"], strict=True):
            if tilt and (expires is None or when.date() <= expires):
                out[cls_of.get(key, key)] += tilt
        return out

    # ------------------------------------------------------------------- into the targets
    def household(self, household: Household, decision: Decision) -> Household:
        """``household`` with the decision written into its targets: the final tilt (replacing
        targets.csv's own, which it includes), band edges widened by the multipliers and the
        expected active returns. Its ``tilt_expires`` are cleared: expiry is already applied."""
        tgt = household.targets.copy()
        present = set(tgt["id"])
        extra = [c for c in self.classes if c not in present and (c == CASH or not self.by_security) and
                 (abs(decision.tilt[c]) > governance.TOL or decision.alpha[c])]
        if extra:  # a class (or cash) without a targets.csv row: a strategic weight of zero
            tgt = pd.concat([tgt, pd.DataFrame({"id": extra, "weight": 0.0, "tilt": 0.0, "max_tilt": np.nan},
                                               index=range(-len(extra), 0))])
        if self.by_security:  # a class's tilt goes to its securities pro rata to their weights
            cls = tgt["id"].map(lambda i: self._security_class.get(i, i))
            hand = self._hand_tilt(decision.date)
            total = tgt.groupby(cls)["weight"].transform("sum").to_numpy(float)
            count = tgt.groupby(cls)["weight"].transform("size").to_numpy(float)
            share = np.where(total > 0, tgt["weight"].to_numpy(float) / np.where(total > 0, total, 1), 1 / count)
            live = [t if e is None or decision.date.date() <= e else 0.0
                    for t, e in zip(tgt["tilt"], tgt["tilt_expires"], strict=True)]
            tgt["tilt"] = np.where(cls == CASH, cls.map(decision.tilt),
                                   live + (cls.map(decision.tilt) - cls.map(hand)).to_numpy(float) * share)
        else:
            tgt["tilt"] = tgt["id"].map(decision.tilt).fillna(0.0).to_numpy(float)
        tgt["tilt_expires"] = None
        if decision.alpha.any():  # the views' expected active returns add to targets.csv's own
            own = tgt["alpha"].fillna(0.0) if "alpha" in tgt.columns else 0.0
            tgt["alpha"] = own + tgt["id"].map(lambda i: decision.alpha.get(self._security_class.get(i, i), 0.0))
        out = dataclasses.replace(household, targets=tgt)
        if (decision.lower != 1).any() or (decision.upper != 1).any():
            out = self._widen(out, decision)
        return out

    def _widen(self, household: Household, decision: Decision) -> Household:
        """Band edges t - m_lo (t - lo) and t + m_hi (hi - t) around the tilted target, with lo
        and hi the policy's edges (or targets.csv's own)."""
        # The policy's edges, prepared on a date no lot or trade of the household comes after.
        when = max(self.plain.tax.as_of, decision.date.date())
        data = prepare(household, dataclasses.replace(self.plain, tax=dataclasses.replace(self.plain.tax, as_of=when)))
        tgt = household.targets.copy()
        edges = dict(zip(data.classes, zip(data.target, data.lower, data.upper, strict=True), strict=True))
        for r, c in zip(tgt.index, tgt["id"], strict=True):
            if c not in edges or decision.lower[c] == decision.upper[c] == 1.0:
                continue
            t, lo, hi = edges[c]
            tgt.loc[r, "lower"] = max(0.0, t - decision.lower[c] * (t - lo))
            tgt.loc[r, "upper"] = min(1.0, t + decision.upper[c] * (hi - t))
        return dataclasses.replace(household, targets=tgt)


def _class_mix(data) -> np.ndarray:
    """(N, C) each class's securities weighted as the benchmark spreads its target (equal
    weights for a class without one), each column summing to one."""
    V = data.X * np.asarray(data.bench_target, float)[:, None]
    sums = V.sum(0)
    empty = sums <= 0
    V[:, empty] = data.X[:, empty]
    return V / np.maximum(V.sum(0), 1e-300)


def _class_returns(market: Market, data, V: np.ndarray) -> pd.DataFrame:
    """Each class's benchmark return per period: its securities' returns weighted by ``V``
    over those with a return that period; NaN when none has one."""
    cols = [s if s in market.returns.columns else None for s in data.security_ids]
    R = np.column_stack([market.returns[c].to_numpy(float) if c else np.full(len(market.dates), np.nan)
                         for c in cols]) if cols else np.zeros((len(market.dates), 0))
    have = ~np.isnan(R)
    num, den = np.nan_to_num(R) @ V, have @ V
    out = pd.DataFrame(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan), index=market.dates,
                       columns=list(data.classes))
    out[CASH] = market.returns[CASH].to_numpy(float)
    return out


def _class_covariance(data, V: np.ndarray) -> np.ndarray:
    """(C+1, C+1) covariance of class tilts (cash last) under the risk model: a tilt t moves
    the securities by V t and cash by t_cash, so S_class = M' S M with M = [V 0; 0 1]."""
    rf = data.risk
    E = np.column_stack([rf.B.T @ V, rf.b_cash]) if rf.L.size else np.zeros((0, V.shape[1] + 1))
    Y = rf.L.T @ E if rf.L.size else np.zeros((0, V.shape[1] + 1))
    D = np.zeros((V.shape[1] + 1, V.shape[1] + 1))
    D[:-1, :-1] = V.T @ (rf.d[:, None] ** 2 * V)
    return Y.T @ Y + D


def _read_series(df: pd.DataFrame | None, specs) -> dict[str, pd.Series]:
    """signals.csv's series that the specs name, by name (dates increasing, values as text
    for ``macro`` and numbers for ``valuation``); every problem named by line and field."""
    wanted = {s.params["series"]: s for s in specs if "series" in s.params}
    if not wanted:
        return {}
    problems: list[Problem] = []
    for s in specs:  # one series is numbers or labels, not both
        other = wanted.get(s.params.get("series"))
        if other is not None and other.kind != s.kind:
            problems.append(Problem("policy.toml", None, f"signals.{s.name}.series", (
                f"the series {s.series!r} is read as {'numbers' if s.kind == 'valuation' else 'labels'} here and as "
                f"{'numbers' if other.kind == 'valuation' else 'labels'} by signals.{other.name}: a valuation reads "
                "numbers, a macro signal labels")))
    if problems:
        raise ValidationError(problems)
    if df is None:
        raise ValidationError([Problem("signals.csv", None, None, f"missing: signals.{s.name} reads the series "
                                       f"{name!r}") for name, s in wanted.items()])
    table = parse_table(df, "signals.csv", SIGNALS, problems)
    lines = file_lines(df)
    out: dict[str, pd.Series] = {}
    for name, spec in wanted.items():
        rows = [j for j, n in enumerate(table["name"]) if n == name]
        if not rows:
            problems.append(Problem("signals.csv", None, "name", f"no rows for the series {name!r} "
                                    f"(signals.{spec.name} reads it)"))
            continue
        dates, values = [], []
        for j in rows:
            d, v = table["date"].iat[j], table["value"].iat[j]
            if d is None or v is None:
                continue
            if dates and d <= dates[-1]:
                problems.append(Problem("signals.csv", lines[j], "date", f"{d} does not come after {dates[-1]} "
                                        f"in the series {name!r} (dates increase, without repeats)"))
            if spec.kind == "valuation":
                try:
                    v = float(v)
                    if not np.isfinite(v):
                        raise ValueError
                except ValueError:
                    problems.append(Problem("signals.csv", lines[j], "value", f"{v!r} is not a finite number "
                                            f"(the series {name!r} is a valuation)"))
                    continue
            elif v not in spec.regimes:
                problems.append(Problem("signals.csv", lines[j], "value", f"regime {v!r} has no tilt in "
                                        f"signals.{spec.name}.regimes ({', '.join(spec.regimes)})"))
                continue
            dates.append(d)
            values.append(v)
        out[name] = pd.Series(values, index=pd.to_datetime([str(d) for d in dates]), dtype=object)
    if problems:
        raise ValidationError(problems)
    return out


def load_signals(case_dir) -> pd.DataFrame | None:
    """A case directory's signals.csv (every cell as text, lines kept), or None."""
    from pathlib import Path

    from cvxrebalance.optimizer.domain.case_io import read_csv

    path = Path(case_dir) / "signals.csv"
    return read_csv(path) if path.exists() else None


def case_tactical(case_dir) -> tuple[Household, Policy, Tactical | None]:
    """A case's household and policy, and its signals over the case's market data and
    signals.csv (None when the policy has no ``[signals.NAME]`` table).

    Raises
    ------
    ValidationError
        The policy has signals but the case has no market data, or any problem of the case.
    """
    from cvxrebalance.optimizer.domain.case_io import load_case
    from cvxrebalance.scenarios.market import load_market

    household, policy = load_case(case_dir)
    if not policy.signals:
        return household, policy, None
    market = load_market(case_dir)
    if market is None:
        raise ValidationError([Problem("returns.csv", None, None, f"missing from {case_dir}: the policy's signals "
                                       "read market data (prices.csv or returns.csv)")])
    return household, policy, Tactical(household, policy, market, load_signals(case_dir))


def load_tactical_case(case_dir) -> tuple[Household, Policy]:
    """A case as a single rebalance reads it: with ``[signals.NAME]`` tables, the household with
    the signals of the as-of date written into its targets (from the case's market data and
    signals.csv) and the policy without its signals; otherwise ``load_case`` as it is."""
    household, policy, tactical = case_tactical(case_dir)
    if tactical is None:
        return household, policy
    return tactical.household(household, tactical.at(policy.tax.as_of)), tactical.plain


def tactical_rebalance(household: Household, policy: Policy, market: Market, series: pd.DataFrame | None = None,
                       *, date=None):
    """A single rebalance with the policy's signals read on ``date`` (default: the policy's
    as-of date) from the market data up to it.

    Returns
    -------
    RebalanceResult
        Its targets carry the tilts (``asset_classes``: ``tilt``); ``signals(...)`` gives
        the signal values, the tilts and the clips behind them.
    """
    from cvxrebalance.optimizer.pipeline.rebalance import rebalance

    tactical = Tactical(household, policy, market, series)
    decision = tactical.at(policy.tax.as_of if date is None else date)
    return rebalance(tactical.household(household, decision), tactical.plain)


def signals(household: Household, policy: Policy, market: Market, series: pd.DataFrame | None = None, *,
            date=None) -> Decision:
    """The policy's signals on ``date`` (default: the as-of date): values, tilts and clips."""
    return Tactical(household, policy, market, series).at(policy.tax.as_of if date is None else date)

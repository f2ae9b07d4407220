"""Return attribution of a backtest (the seed's "Performance Measurement"), period by period.

For the period ending at t, with weights taken after the decision at t-1 (fractions of the value
V then): w_k the physical weight of class k (cash a class), e_k the overlay's exposure, s_k the
strategic weight, tau_{j,k} the tilt of source j in force (its share of the governed tilt of the
last decision), r_k the class's benchmark return (its securities in the benchmark's mix; cash's
return for cash), a_k the household's own return on what it held in the class, and
r_P = sum_k s_k r_k the strategic policy's return:

    policy     r_P
    signal j   sum_k tau_{j,k} (r_k - r_P)                       (allocation effect of a tilt)
    drift      sum_k (w_k + e_k - s_k - sum_j tau_{j,k}) (r_k - r_P)   (drift and the rebalancing rules)
    selection  sum_k w_k (a_k - r_k)                             (what was held in a class vs its benchmark)
    overlay    F / V - sum_k e_k (r_k - r_P)                     (the futures' P&L F beyond their exposure)
    costs      -(trading and roll costs paid at t) / V
    taxes      -(taxes paid at t) / V

Since sum_k w_k = sum_k s_k = 1, the pieces add up to sum_k w_k a_k + F / V - (costs + taxes) / V,
which is the period's return (V_t - flow_t) / V_{t-1} - 1 exactly: flows arrive after the
period's returns. Over many periods the table sums each piece's period returns (arithmetic, so
the columns add up to the sum of the period returns; ``annualized`` is the mean times P).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.scenarios.governance import CLIP_COLUMNS
from cvxrebalance.scenarios.tactical import HAND

PIECES = ["policy", "drift", "selection", "overlay", "costs", "taxes"]


@dataclass
class PeriodData:
    """What a policy's backtest records for the attribution: per period t (rows) and class k
    (columns, cash last)."""

    dates: pd.DatetimeIndex
    classes: list[str]
    periods_per_year: int
    value_before: np.ndarray  # (T,) V_{t-1}
    weights: np.ndarray  # (T, K) w
    overlay: np.ndarray  # (T, K) e
    held_returns: np.ndarray  # (T, K) a
    bench_returns: np.ndarray  # (T, K) r
    strategic: np.ndarray  # (K,) s
    tilts: dict[str, np.ndarray]  # source -> (T, K) tau
    futures_pnl: np.ndarray  # (T,)
    costs: np.ndarray  # (T,)
    taxes: np.ndarray  # (T,)
    net_return: np.ndarray  # (T,) (V_t - flow_t) / V_{t-1} - 1


@dataclass
class Attribution:
    """A backtest's return by source.

    Attributes
    ----------
    periods : DataFrame
        dates x pieces (``policy``, one column per signal, ``drift``, ``selection``,
        ``overlay``, ``costs``, ``taxes``) and ``total``, the period's return; each row's
        pieces sum to ``total``.
    by_class : DataFrame
        The allocation pieces (each signal, drift) and selection per class, summed over periods.
    periods_per_year : int
    """

    periods: pd.DataFrame
    by_class: pd.DataFrame
    periods_per_year: int

    @property
    def table(self) -> pd.DataFrame:
        """Per piece: ``sum`` (of period returns) and ``annualized`` (mean x P); the last row is
        the total, which the pieces add up to."""
        total = self.periods.sum()
        return pd.DataFrame({"sum": total, "annualized": self.periods.mean() * self.periods_per_year})

    def plot(self, ax=None):
        """Cumulative sum of each piece but the policy's own return, and their sum, the active
        return (total - policy), over time (a matplotlib Axes)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(9, 4.5))
        pieces = self.periods.drop(columns=["total", "policy"])
        pieces = pieces.loc[:, pieces.abs().sum() > 1e-12].cumsum()  # pieces that are never nonzero: left out
        for column in pieces:
            ax.plot(pieces.index, pieces[column], label=column, linewidth=1.4)
        active = (self.periods["total"] - self.periods["policy"]).cumsum()
        ax.plot(active.index, active, "k--", linewidth=1.2, label="active (total - policy)")
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.yaxis.set_major_formatter(lambda x, _: f"{x:.1%}")
        ax.set_ylabel("cumulative sum of period returns")
        ax.set_title(f"Active return by source (policy: {self.periods['policy'].sum():.1%}, "
                     f"total: {self.periods['total'].sum():.1%})")
        ax.legend(fontsize=8, ncol=2)
        return ax

    def plot_by_class(self, ax=None):
        """Each source's contribution per class (a bar chart)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(8, 4))
        self.by_class.T.plot.bar(ax=ax, rot=0)
        ax.axhline(0.0, color="grey", linewidth=0.6)
        ax.yaxis.set_major_formatter(lambda x, _: f"{x:.1%}")
        ax.set_ylabel("sum of period returns")
        ax.set_title("Attribution by class")
        return ax


def attribute(p: PeriodData) -> Attribution:
    """The pieces of the module docstring for every period of ``p``."""
    r = np.where(np.isnan(p.bench_returns), p.held_returns, p.bench_returns)
    r_p = r @ p.strategic
    active = r - r_p[:, None]
    tau = sum(p.tilts.values()) if p.tilts else np.zeros_like(p.weights)
    pieces = {"policy": r_p}
    by_class = {}
    for source, t in p.tilts.items():
        pieces[source] = (t * active).sum(1)
        by_class[source] = (t * active).sum(0)
    drift = (p.weights + p.overlay - p.strategic - tau) * active
    selection = p.weights * np.nan_to_num(p.held_returns - r)
    V = p.value_before
    pieces.update(drift=drift.sum(1), selection=selection.sum(1),
                  overlay=p.futures_pnl / V - (p.overlay * active).sum(1), costs=-p.costs / V, taxes=-p.taxes / V)
    by_class.update(drift=drift.sum(0), selection=selection.sum(0))
    periods = pd.DataFrame(pieces, index=p.dates)
    periods["total"] = p.net_return
    return Attribution(periods, pd.DataFrame(by_class, index=p.classes).T, p.periods_per_year)


class PeriodRecorder:
    """Collects ``PeriodData`` inside the backtest loop: ``start`` before a period's returns,
    ``returns`` after them, ``decided`` when a decision's signals are read, ``end`` after the
    date's trades."""

    def __init__(self, tactical, market, X: np.ndarray, G: np.ndarray) -> None:
        self.X, self.G = X, G
        self.market = market
        self.classes = tactical.classes
        self.strategic = tactical.strategic.to_numpy(float)
        self.bench = tactical.inputs.returns.reindex(market.dates)[self.classes].to_numpy(float)
        hand = [HAND] if tactical.hand_tilt else []
        self.sources = [*[s.name for s in tactical.specs if tactical.histories[s.name].use == "tilt"], *hand]
        self.in_force = np.zeros((len(self.sources), len(self.classes)))
        self.rows: list[tuple] = []
        self.clips: list[pd.DataFrame] = []
        self._start: tuple | None = None

    def decided(self, decision) -> None:
        self.in_force = decision.by_signal.reindex(self.sources, fill_value=0.0).to_numpy(float)
        if len(decision.clips):
            self.clips.append(decision.clips)

    def start(self, state) -> None:
        value = state.value()
        held = self.X.T @ (state.shares * state.price)
        exposure = np.zeros(len(self.classes))
        exposure[:-1] = state.exposure(self.G)
        self._start = (value, np.append(held, state.cash.sum()) / value, exposure / value, held)

    def returns(self, state, t: int) -> None:
        value, w, e, held = self._start
        now = self.X.T @ (state.shares * state.price)
        a = np.divide(now, held, out=np.full(len(held), np.nan), where=held > 0) - 1.0
        self._start = (value, w, e, np.append(a, state.cash_returns[t]), self.in_force.copy())

    def end(self, pnl: float, cost: float, tax: float) -> None:
        self.rows.append((*self._start, pnl, cost, tax))

    def data(self, values: pd.DataFrame) -> PeriodData:
        v = values["value"].to_numpy(float)
        flow = values["flow"].to_numpy(float)
        value, w, e, a, tau, pnl, cost, tax = (np.array(x) for x in zip(*self.rows, strict=True)) if self.rows else \
            [np.zeros((0, len(self.classes)))] * 8
        return PeriodData(self.market.dates, self.classes, self.market.periods_per_year, value, w, e, a, self.bench,
                          self.strategic, {s: tau[:, j] for j, s in enumerate(self.sources)}, pnl, cost, tax,
                          (v[1:] - flow[1:]) / v[:-1] - 1.0)

    @property
    def clip_table(self) -> pd.DataFrame:
        return pd.concat(self.clips, ignore_index=True) if self.clips else pd.DataFrame(columns=CLIP_COLUMNS)

"""Which lots to sell, once the quantities are decided: the exact tax first, then the loss carried
forward.

The convex tax term prices a lot by its rate-weighted gain and nets the year as a whole, so when
the year nets to a loss every choice of lots costs the same model tax (zero) and the solver's
choice among them is arbitrary; when short and long terms net against each other the model is
off from the exact rules (cost_models.tax). A loss not used this year is carried forward and is
worth something. So, for the whole-share quantities the pipeline settled, four lot choices are
compared: the optimizer's, HIFO, FIFO and the "tax" order (largest losses first, then the smallest
gains; cost_models.lot_relief), each taking the lots a rule forbids (a wash-sale block, a
short-term gain that is not allowed) only last. The one kept passes the checker and has the
lowest exact incremental tax, then the largest loss carried forward, then the lowest model tax;
the optimizer's own choice wins ties. So the result is never taxed more than HIFO or FIFO relief of
the same quantities under the exact rules (when they keep the rules), and a lot at a gain is not sold
while a loss lot of the same position and term is left, unless a rule forces it.
"""

from __future__ import annotations

import numpy as np

from cvxrebalance.constraints import default_constraints, trade_masks
from cvxrebalance.constraints.wash_sales import bought_groups
from cvxrebalance.cost_models.lot_relief import relieve
from cvxrebalance.cost_models.tax import gains_by_term, incremental
from cvxrebalance.optimizer.domain.solution import Solution

# The rule families that read which lots are sold (the quantities, cash and weights are the
# same for every choice): lots within their holdings, gain budgets and short-term gains, wash sales.
LOT_RULES = ("holdings", "tax_rules", "wash_sales")


def carried_forward(data, short: float, long: float) -> float:
    """The net loss of the year (this rebalance's gains with the year-to-date ones) carried
    forward, currency (0 when the year nets to a gain)."""
    return max(0.0, -(short + data.ytd_short + long + data.ytd_long))


def score(sol: Solution) -> tuple[float, float, float]:
    """(exact incremental tax, minus the loss carried forward, model tax), to the cent."""
    short, long, _ = gains_by_term(sol.data, sol.lot_sell_q)
    model, exact = incremental(sol.data, short, long)
    return round(exact, 2), -round(carried_forward(sol.data, short, long), 2), round(model, 2)


def choose(sol: Solution) -> Solution:
    """The best of the four lot choices for ``sol``'s quantities (see the module docstring)."""
    d = sol.data
    if not d.L or not sol.lot_sell_q.any():
        return sol
    _, _, lot_ok = trade_masks(d)
    bought = np.isin(d.wash.group[d.lot_security], list(bought_groups(d, sol.buy_q)))
    last = ~lot_ok | (bought & (d.lot_gain < 0))  # loss sales in a group this list buys: a wash
    sold = d.lots_by_position(sol.lot_sell_q)
    best, best_score = sol, score(sol)
    for method in ("hifo", "fifo", "tax"):
        lots = relieve(d, sold, method, last)
        if np.array_equal(lots, sol.lot_sell_q):
            continue
        other = Solution(d, sol.buy_q, sol.sell_q, lots, sol.contracts_q)
        s = score(other)
        if s < best_score and not any(m.check(other) for m in default_constraints() if m.name in LOT_RULES):
            best, best_score = other, s
    return best

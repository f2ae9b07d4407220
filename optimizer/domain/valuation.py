"""Stale valuations of illiquid holdings, rolled forward by a public proxy.

An illiquid fund (private equity, venture capital) reports its value with a lag: its ``price`` in
securities.csv is the value per share on ``valuation_date``, not on the as-of date. Given a
``proxy``, the price is rolled forward by the proxy's return since then:

    adjusted price = price * (1 + proxy_beta * proxy return)

The proxy return comes from exactly one source, by the kind of proxy:

- a security of securities.csv (liquid): ``price[proxy] / proxy_price - 1``, where ``proxy_price``
  is the proxy's price on ``valuation_date`` and ``price[proxy]`` its price now;
- an asset class: ``proxy_return``, the class's total return since ``valuation_date`` as given
  (a class has no price of its own to take the return from).

``proxy_beta`` (default 1) is the fund's sensitivity to the proxy. A ``valuation_date`` without a
proxy is reported (how stale the value is) but not adjusted. The adjusted price is the security's
price everywhere downstream (``prepare``): household value, class weights, bands, drift and
tracking error. Illiquid holdings are never traded, so no trade is priced with it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import index_of, is_blank

FILE = "securities.csv"
# The securities.csv columns of a stale valuation (only an illiquid security may fill them).
COLUMNS = ("valuation_date", "proxy", "proxy_price", "proxy_return", "proxy_beta")


@dataclass(frozen=True)
class Valuations:
    """Reported and adjusted prices per security (shape (N,), securities.csv order).

    Attributes
    ----------
    reported : ndarray
        ``price`` as given.
    price : ndarray
        ``reported * (1 + beta * proxy_return)``; equal to ``reported`` without a proxy.
    proxy_return : ndarray
        The proxy's return since ``valuation_date`` (0 without a proxy).
    beta : ndarray
        ``proxy_beta`` (1 where blank or without a proxy).
    dated : ndarray
        bool: the security has a ``valuation_date``.
    """

    reported: np.ndarray
    price: np.ndarray
    proxy_return: np.ndarray
    beta: np.ndarray
    dated: np.ndarray


def roll_forward(sec: pd.DataFrame) -> Valuations:
    """The adjusted prices of a validated securities table (see the module's formula).

    Examples
    --------
    A fund reported at 1,000 per share whose proxy went from 100 to 108 (+8%), beta 1.2:
    1,000 * (1 + 1.2 * 0.08) = 1,096.

    >>> sec = pd.DataFrame({"security_id": ["FUND", "INDEX"], "price": [1000.0, 108.0],
    ...     "valuation_date": [dt.date(2026, 9, 30), None], "proxy": ["INDEX", ""],
    ...     "proxy_price": [100.0, np.nan], "proxy_return": [np.nan, np.nan], "proxy_beta": [1.2, np.nan]})
    >>> roll_forward(sec).price.round(6).tolist()
    [1096.0, 108.0]
    """
    reported = sec["price"].to_numpy(float)
    n = len(reported)
    dated = np.fromiter((d is not None for d in sec["valuation_date"].tolist()), bool, count=n)
    ret, beta = np.zeros(n), np.ones(n)
    if dated.any():  # most households have no stale valuation: nothing to compute
        proxy = sec["proxy"].to_numpy(object)
        has = np.fromiter((bool(p) for p in proxy), bool, count=n)
        at = index_of(sec["security_id"].to_numpy(), proxy)
        # A security proxy: its price now over its price on valuation_date, less 1; a class: as given.
        from_price = reported[np.maximum(at, 0)] / sec["proxy_price"].to_numpy(float) - 1.0
        ret = np.where(has, np.where(at >= 0, from_price, sec["proxy_return"].to_numpy(float)), 0.0)
        given = sec["proxy_beta"].to_numpy(float)
        beta = np.where(has & ~np.isnan(given), given, 1.0)
    return Valuations(reported=reported, price=reported * (1.0 + beta * ret), proxy_return=ret, beta=beta,
                      dated=dated)


def check_valuations(sec: pd.DataFrame, problems: list[Problem]) -> None:
    """Problems of the stale-valuation columns of a parsed securities table (``sec`` indexed by
    file line): only illiquid securities carry them, a proxy needs a valuation date and is a
    liquid security (with ``proxy_price``) or an asset class holding a liquid security (with
    ``proxy_return``), and the adjusted price is positive. The date against the as-of date is
    checked with the policy (:func:`check_dates`)."""
    if all(is_blank(v) for c in COLUMNS for v in sec[c].tolist()):
        return  # no stale valuation anywhere (most households)
    # A cell the parser already reported is not reported again (one bad cell, one problem).
    bad = {p.row for p in problems if p.file == FILE and p.field in (*COLUMNS, "price")}
    before = len(problems)
    liquid_of = dict(zip(sec["security_id"].tolist(), sec["liquid"].tolist(), strict=True))
    liquid_classes = set(sec.loc[sec["liquid"], "asset_class"].tolist())
    classes = set(sec["asset_class"].tolist())
    for line, row in sec.iterrows():
        given = {c for c in COLUMNS if not is_blank(row[c])}
        if not given or line in bad:
            continue
        if row["liquid"]:
            for c in sorted(given, key=COLUMNS.index):
                problems.append(Problem(FILE, line, c, "only an illiquid security (liquid = false) has a stale "
                                        "valuation to roll forward; leave it empty"))
            continue
        proxy = row["proxy"]
        if not proxy:
            for c in sorted(given - {"valuation_date"}, key=COLUMNS.index):
                problems.append(Problem(FILE, line, c, "needs a proxy (the security or asset class whose "
                                        "return rolls the valuation forward)"))
            continue
        if "valuation_date" not in given:
            problems.append(Problem(FILE, line, "valuation_date", f"a proxy ({proxy!r}) needs the date of "
                                    "the reported price, from which its return is counted"))
        if proxy in liquid_of:  # a security proxy: its return from proxy_price
            if not liquid_of[proxy]:
                problems.append(Problem(FILE, line, "proxy", f"proxy {proxy!r} is illiquid; a proxy is a "
                                        "liquid (public) security whose price is current"))
            if "proxy_price" not in given:
                problems.append(Problem(FILE, line, "proxy_price", f"a security proxy needs its price on "
                                        f"valuation_date (its return is price[{proxy}] / proxy_price - 1)"))
            if "proxy_return" in given:
                problems.append(Problem(FILE, line, "proxy_return", f"proxy {proxy!r} is a security: its "
                                        "return comes from proxy_price; proxy_return is for an asset-class proxy"))
        elif proxy in classes:  # a class proxy: its return as given
            if proxy not in liquid_classes:
                problems.append(Problem(FILE, line, "proxy", f"asset class {proxy!r} holds no liquid security; "
                                        "a proxy is a public (liquid) security or class"))
            if "proxy_return" not in given:
                problems.append(Problem(FILE, line, "proxy_return", f"an asset-class proxy ({proxy!r}) needs "
                                        "proxy_return, the class's return since valuation_date (0.08 = 8%)"))
            if "proxy_price" in given:
                problems.append(Problem(FILE, line, "proxy_price", f"proxy {proxy!r} is an asset class, which "
                                        "has no price; give its return since valuation_date as proxy_return"))
        else:
            problems.append(Problem(FILE, line, "proxy", f"unknown proxy {proxy!r}: not a security_id or an "
                                    "asset_class of securities.csv"))
    if len(problems) > before or bad:
        return  # the adjustment needs every proxy and price to be sound
    v = roll_forward(sec)
    for j in np.flatnonzero(v.price <= 0):
        problems.append(Problem(FILE, int(sec.index[j]), "proxy_beta", (
            f"the adjusted price is not positive: price x (1 + proxy_beta x proxy return) = {v.reported[j]:g} x "
            f"(1 + {v.beta[j]:g} x {v.proxy_return[j]:.6g}) = {v.price[j]:.6g}")))


def check_dates(sec: pd.DataFrame, as_of: dt.date, problems: list[Problem]) -> None:
    """A valuation dated after the as-of date has not been reported yet."""
    for line, when in zip(sec.index.tolist(), sec["valuation_date"].tolist(), strict=True):
        if when is not None and when > as_of:
            problems.append(Problem(FILE, int(line), "valuation_date",
                                    f"valued {when}, after the as-of date {as_of}"))


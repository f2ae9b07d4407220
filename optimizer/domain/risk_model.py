"""The risk model: S = B F B' + diag(d) over securities, overlay contracts and cash.

Read from ``covariance.csv`` (over asset classes, optionally with currency rows, or over
securities and contracts) or from ``factor_loadings.csv`` + ``factor_covariance.csv`` [+
``specific_variance.csv``]. With a class-level covariance a security loads 1 on its asset class
and 1 on its currency (when the covariance has a row for it); a contract loads ``exposure`` on its
asset class and 1 on its currency, per unit of notional.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import CASH, file_lines


@dataclass(frozen=True)
class RiskModel:
    """Covariance ``S = B F B' + diag(d)`` over securities (and cash).

    kind is "class" (covariance over asset classes), "security" (over securities) or "factor".
    ``loadings`` is indexed by security id (plus ``cash`` when it carries risk) with one column per
    factor; ``factor_cov`` is square over those columns; ``specific`` is indexed like loadings.
    """

    kind: str
    loadings: pd.DataFrame
    factor_cov: pd.DataFrame
    specific: pd.Series


def build_risk_model(sec, fut, covariance, loadings, factor_cov, specific, problems) -> RiskModel:
    """Loadings over securities, contracts (and cash), the factor covariance and specific
    variances, with every problem reported."""
    ids = list(sec["security_id"])
    cids = list(fut["contract_id"])
    classes = sorted(set(sec["asset_class"]) - {None})
    currencies = sorted(set(sec["currency"]) | set(fut["currency"]) - {None, ""})
    if covariance is not None:
        if loadings is not None or factor_cov is not None:
            problems.append(Problem("covariance.csv", None, None,
                                    "give either covariance.csv or factor files, not both"))
        cov = _square(covariance, "covariance.csv", problems)
        if cov is None:
            return _empty_risk()
        names = set(cov.index)
        if names - {CASH} and names - {CASH} <= set(classes) | set(currencies):
            load = _class_loadings(sec, fut, cov, classes, problems)
        else:
            load = _identity_loadings(cov, ids + cids, problems)
        return RiskModel("class" if load.attrs.get("by_class") else "security", load, cov,
                         _specific(specific, load.index, problems))
    if loadings is None or factor_cov is None:
        problems.append(Problem("covariance.csv", None, None, "no risk model: give covariance.csv, "
                                "or factor_loadings.csv and factor_covariance.csv"))
        return _empty_risk()
    fcov = _square(factor_cov, "factor_covariance.csv", problems)
    load = _numeric(loadings, "factor_loadings.csv", problems)
    if fcov is None or load is None:
        return _empty_risk()
    for c in load.columns:
        if c not in fcov.index:
            problems.append(Problem("factor_loadings.csv", 1, str(c), "factor not in factor_covariance.csv"))
    for s in ids + cids:
        if s not in load.index:
            problems.append(Problem("factor_loadings.csv", None, s, f"{s!r} has no row"))
    for s in load.index:
        if s not in ids and s not in cids and s != CASH:
            problems.append(Problem("factor_loadings.csv", load.attrs["lines"].get(s), s,
                                    f"unknown security or contract {s!r}"))
    cols = [c for c in load.columns if c in fcov.index]
    load = load[cols].copy()
    # A currency factor named like a security's or contract's currency loads 1 unless given.
    for table, key in ((sec, "security_id"), (fut, "contract_id")):
        for row_id, cur in zip(table[key], table["currency"], strict=True):
            if cur and cur in cols and row_id in load.index and load.at[row_id, cur] == 0:
                load.at[row_id, cur] = 1.0
    # A contract's class only adds its exposure to that class's band: a class no security has
    # (a typo) would silently leave the contract out of the bands.
    for line, src, c in zip(fut.index, fut["source"], fut["asset_class"], strict=True):
        if c and c not in classes:
            problems.append(Problem(src, int(line), "asset_class", f"asset class {c!r} is not a class of "
                                    f"securities.csv (classes: {', '.join(classes)})"))
    for line, src, cid, rf, dur in zip(fut.index, fut["source"], cids, fut["rate_factor"], fut["futures_duration"],
                                       strict=True):
        if rf and not np.isnan(dur):
            if rf not in cols:
                problems.append(Problem(src, int(line), "rate_factor", f"unknown factor {rf!r}"))
            elif cid in load.index:
                load.at[cid, rf] = dur  # duration per unit notional: BPV(CTD) / CF / (notional * 1e-4)
    return RiskModel("factor", load, fcov.loc[cols, cols], _specific(specific, load.index, problems))


def _class_loadings(sec, fut, cov, classes, problems) -> pd.DataFrame:
    names = set(cov.index)
    for c in classes:
        if c not in names:
            problems.append(Problem("covariance.csv", None, c, f"asset class {c!r} has no row"))
    rows = list(sec["security_id"]) + list(fut["contract_id"]) + ([CASH] if CASH in names else [])
    load = pd.DataFrame(0.0, index=rows, columns=cov.columns)
    for line, s, c, cur in zip(sec.index, sec["security_id"], sec["asset_class"], sec["currency"], strict=True):
        if c in names:
            load.at[s, c] = 1.0
        if cur and cur in names:
            load.at[s, cur] = 1.0
        elif cur:  # a currency without its risk would silently drop the security's FX risk
            problems.append(Problem("securities.csv", int(line), "currency",
                                    f"currency {cur!r} has no row in covariance.csv"))
    for j, row in fut.iterrows():
        c, cur = row["asset_class"], row["currency"]
        if c:
            if c not in names:
                problems.append(Problem(row["source"], j, "asset_class", f"asset class {c!r} is not in covariance.csv"))
            else:
                load.at[row["contract_id"], c] = row["exposure"]
        if cur and cur in names:
            load.at[row["contract_id"], cur] = 1.0
        elif cur:
            problems.append(Problem(row["source"], j, "currency", f"currency {cur!r} has no row in covariance.csv"))
    if CASH in names:
        load.at[CASH, CASH] = 1.0
    load.attrs["by_class"] = True
    return load


def _identity_loadings(cov, ids, problems) -> pd.DataFrame:
    names = set(cov.index)
    for u in sorted(names - set(ids) - {CASH}):
        problems.append(Problem("covariance.csv", None, u,
                                f"{u!r} is neither a security, a contract nor an asset class"))
    for s in ids:
        if s not in names:
            problems.append(Problem("covariance.csv", None, s, f"{s!r} has no row"))
    return pd.DataFrame(np.eye(len(cov)), index=cov.index, columns=cov.columns)


def _specific(specific, index, problems) -> pd.Series:
    spec = pd.Series(0.0, index=index)
    if specific is None:
        return spec
    sv = _numeric(specific, "specific_variance.csv", problems)
    if sv is None:
        return spec
    if sv.shape[1] != 1:  # e.g. semicolons for commas: one column holding everything
        found = ", ".join(map(str, specific.columns)) or "nothing"
        problems.append(Problem("specific_variance.csv", 1, None,
                                f"needs two comma-separated columns, an id and its variance; found {found}"))
        return spec
    for i, (s, v) in zip(file_lines(specific), sv.iloc[:, 0].items(), strict=True):
        if s not in spec.index:
            problems.append(Problem("specific_variance.csv", i, "security_id", f"unknown security or contract {s!r}"))
        elif v < 0:
            problems.append(Problem("specific_variance.csv", i, "variance", f"must be >= 0, got {v:g}"))
        else:
            spec[s] = v
    return spec


def _empty_risk() -> RiskModel:
    return RiskModel("class", pd.DataFrame(), pd.DataFrame(), pd.Series(dtype=float))


def _numeric(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    """A table with ids in the first column and numbers elsewhere."""
    lines = file_lines(df)
    ids = df.iloc[:, 0].astype(str).str.strip()
    body = df.iloc[:, 1:]
    out = pd.DataFrame(index=ids, columns=[str(c).strip() for c in body.columns], dtype=float)
    ok = True
    for i, ln in enumerate(lines):
        for j, c in enumerate(body.columns):
            try:
                x = float(body.iat[i, j])
            except (TypeError, ValueError):
                x = float("nan")
            if not np.isfinite(x):
                problems.append(Problem(file, ln, str(c), f"not a finite number: {body.iat[i, j]!r}"))
                ok = False
            out.iat[i, j] = x
    for ln, s, twice in zip(lines, ids, ids.duplicated(), strict=True):
        if twice:
            problems.append(Problem(file, ln, s, f"duplicate id {s!r}"))
            ok = False
    out.attrs["lines"] = dict(zip(ids, lines, strict=False))  # first line of each id, for later problems
    return out if ok else None


def _square(df: pd.DataFrame, file: str, problems: list[Problem]) -> pd.DataFrame | None:
    m = _numeric(df, file, problems)
    if m is None:
        return None
    if list(m.index) != list(m.columns):
        problems.append(Problem(file, 1, None, "header and first column must list the same ids in the same order"))
        return None
    a = m.to_numpy()
    if not a.size:
        problems.append(Problem(file, None, None, "the matrix is empty (a header line only)"))
        return None
    scale = max(np.abs(a).max(), 1e-300)
    if np.abs(a - a.T).max() > 1e-8 * scale:
        problems.append(Problem(file, None, None, "matrix is not symmetric"))
        return None
    eig = np.linalg.eigvalsh((a + a.T) / 2)
    if eig.min() < -1e-8 * scale:
        problems.append(
            Problem(file, None, None, f"matrix is not positive semidefinite (eigenvalue {eig.min():.3g})")
        )
        return None
    return m

"""Reading a case directory (CSV files + policy.toml) into a Household and a Policy."""

from __future__ import annotations

import csv
import difflib
import io
from pathlib import Path

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.models import (
    assignment,
    household_policy,
    model_problems,
    read_policies,
    split_models,
)
from cvxrebalance.optimizer.domain.policy import Policy
from cvxrebalance.optimizer.domain.tables import decode_utf8

REQUIRED = ("securities.csv", "accounts.csv", "holdings.csv", "targets.csv")
OPTIONAL = ("covariance.csv", "factor_loadings.csv", "factor_covariance.csv",
            "specific_variance.csv", "futures.csv", "swaps.csv", "transactions.csv", "factor_targets.csv",
            "models.csv", "households.csv", "restrictions.csv")
# Market data, cash flows and the signals' user series over time, read by the backtests and the
# tactical signals (scenarios.market.load_market, the backtest command's flows.csv,
# scenarios.tactical's signals.csv), not by the household: known here so that a case carrying
# them is not an "unknown file".
MARKET_DATA = ("prices.csv", "returns.csv", "flows.csv", "signals.csv")


def read_csv(path: Path, problems: list[Problem] | None = None) -> pd.DataFrame | None:
    """Every cell as text, so the validator sees exactly what the file says; the index is each
    row's line in the file (blank lines are skipped but still counted).

    The file must be UTF-8 (a byte-order mark is fine) with as many fields on every line as in
    its header. A problem (file, line) goes to ``problems`` and the bad lines are left out, so
    the other checks still run; without a ``problems`` list they raise ValidationError.
    Returns None when nothing can be read (a directory, an empty file, a wrong encoding).
    """
    found: list[Problem] = []
    df = _read_text_table(Path(path), found)
    if problems is None and found:
        raise ValidationError(found)
    if problems is not None:
        problems.extend(found)
    return df


def _read_text_table(path: Path, problems: list[Problem]) -> pd.DataFrame | None:
    name = path.name
    if path.is_dir():
        problems.append(Problem(name, None, None, "is a directory, not a file"))
        return None
    text = decode_utf8(path.read_bytes(), name, problems)
    if text is None:
        return None
    # Every line whose field count differs from the header's is a problem (pandas raises on the
    # first longer line and pads shorter ones silently).
    if _plainly_well_formed(text):
        return _pandas_table(text)
    reader = csv.reader(io.StringIO(text), skipinitialspace=True)
    header = next(reader, None)
    if header is None:
        problems.append(Problem(name, None, None, "cannot be read as CSV: the file is empty (it needs a header line)"))
        return None
    keep = [header.index(c) for c in dict.fromkeys(header)]  # the first of each column name
    found = len(problems)
    for c in sorted({c for c in header if header.count(c) > 1}):
        problems.append(Problem(name, 1, c, "column appears more than once in the header"))
    rows, lines = [], []
    start = reader.line_num + 1
    for record in reader:
        line, start = start, reader.line_num + 1
        if not any(cell.strip() for cell in record):
            continue  # a blank line
        if len(record) != len(header):
            what = "more" if len(record) > len(header) else "fewer"
            problems.append(Problem(name, line, None, f"{len(record)} fields, {what} than the header's "
                                    f"{len(header)} ({', '.join(header)})"))
            continue
        rows.append([record[j] for j in keep])
        lines.append(line)
    if len(problems) == found:  # quoted but well formed: the same typed frame as any other file
        return _pandas_table(text)
    df = pd.DataFrame(rows, columns=[header[j] for j in keep], index=lines, dtype=object)
    df.attrs["file_lines"] = True
    return df


def _plainly_well_formed(text: str) -> bool:
    """A text without quotes whose every non-blank line has the header's field count and whose
    header repeats no column: pandas reads it as it is. The comma count per line is numpy's, for
    batch files of a million lines; anything else goes through the csv module."""
    if '"' in text or not text.strip():
        return False
    header = text.split("\n", 1)[0].rstrip("\r")
    names = [c.strip() for c in header.split(",")]
    if len(set(names)) != len(names):
        return False
    lines, commas = _comma_counts(text)
    odd = np.flatnonzero(commas != header.count(","))
    return all(not lines[k].strip().strip(",") for k in odd if k > 0)


def _comma_counts(text: str) -> tuple[list[str], np.ndarray]:
    """The lines of a text without quotes and the number of commas on each."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    data = np.frombuffer(text.encode(), dtype=np.uint8)
    ends = np.flatnonzero(data == ord("\n"))
    if len(ends) < len(lines):  # no newline after the last line
        ends = np.append(ends, len(data))
    commas = np.flatnonzero(data == ord(","))
    starts = np.concatenate([[0], ends[:-1] + 1])
    return lines, np.searchsorted(commas, ends) - np.searchsorted(commas, starts)


def _pandas_table(text: str) -> pd.DataFrame:
    """A well-formed CSV text by pandas' reader: every cell as text, indexed by file line."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
                     skip_blank_lines=False)
    blank = df.apply(lambda col: col.str.strip() == "").all(axis=1) if len(df.columns) else df.index == df.index
    df = df[~blank].copy()
    df.index = df.index + 2
    df.attrs["file_lines"] = True
    return df


def load_case(path: str | Path) -> tuple[Household, Policy]:
    """Read and validate a case directory.

    Parameters
    ----------
    path : str or Path
        Directory with securities.csv, accounts.csv, holdings.csv, targets.csv, a risk model
        (covariance.csv, or factor_loadings.csv + factor_covariance.csv [+ specific_variance.csv])
        and an optional policy.toml. See docs/case_format.md.

    Returns
    -------
    (Household, Policy)

    Raises
    ------
    ValidationError
        Every problem in every file, each with file, line and field.

    Examples
    --------
    >>> from cvxrebalance import load_case
    >>> from cvxrebalance.scenarios import case_path
    >>> household, policy = load_case(case_path("seed_portfolio"))
    >>> round(household.value)
    1901000
    """
    root = Path(path)
    if not root.is_dir():
        raise ValidationError([Problem(str(root), None, None, "case directory not found")])
    problems: list[Problem] = []
    known = set(REQUIRED + OPTIONAL + MARKET_DATA)
    for f in sorted(root.glob("*.csv")):
        if f.name not in known:  # a misspelled file must not be silently ignored
            hint = difflib.get_close_matches(f.name, sorted(known), n=1)
            more = f"; did you mean {hint[0]}?" if hint else f"; known files: {', '.join(sorted(known))}"
            problems.append(Problem(f.name, None, None, "unknown file" + more))
    frames: dict[str, pd.DataFrame | None] = {}
    for name in REQUIRED + OPTIONAL:
        f = root / name
        if not f.exists():
            if name in REQUIRED and not (name == "targets.csv" and (root / "models.csv").exists()):
                problems.append(Problem(name, None, None, "file is missing"))
            frames[name] = None
            continue
        try:
            frames[name] = read_csv(f, problems)
        except (pd.errors.ParserError, csv.Error) as exc:
            problems.append(Problem(name, None, None, f"cannot be read as CSV: {exc}"))
            frames[name] = None
    policy: Policy | None = None
    try:
        policy = Policy.from_toml(root / "policy.toml")
    except ValidationError as exc:
        problems.extend(exc.problems)
    targets, model_id = frames["targets.csv"], None
    if frames["models.csv"] is not None and policy is not None:  # the case names its model
        targets, model_id, policy = _model_of(root, frames, policy, problems)
    household = None
    if all(frames[n] is not None for n in REQUIRED if n != "targets.csv") and targets is not None:
        try:
            household = Household.from_frames(
                frames["securities.csv"], frames["accounts.csv"], frames["holdings.csv"],
                targets, covariance=frames["covariance.csv"],
                factor_loadings=frames["factor_loadings.csv"],
                factor_covariance=frames["factor_covariance.csv"],
                specific_variance=frames["specific_variance.csv"], futures=frames["futures.csv"],
                swaps=frames["swaps.csv"], transactions=frames["transactions.csv"],
                name=root.name, factor_targets=frames["factor_targets.csv"],
                restrictions=frames["restrictions.csv"],
            )
        except ValidationError as exc:
            problems.extend(model_problems(exc.problems, model_id) if model_id else exc.problems)
    if problems:
        raise ValidationError(problems)
    assert household is not None and policy is not None
    return household, policy


def _model_of(root: Path, frames: dict, policy: Policy,
              problems: list[Problem]) -> tuple[pd.DataFrame | None, str | None, Policy]:
    """A case that names its model: models.csv, and households.csv's one row (its model, policy
    file of ``policies/`` and overrides, ``optimizer.domain.models``)."""
    if frames["targets.csv"] is not None:
        problems.append(Problem("models.csv", None, None, "give targets.csv or models.csv, not both"))
        return None, None, policy
    hh = frames["households.csv"]
    if hh is None:
        problems.append(Problem("households.csv", None, None, "models.csv needs households.csv: the case's model_id"))
        return None, None, policy
    models = split_models(frames["models.csv"], problems)
    try:
        line, row = assignment(hh.drop(columns=[c for c in ("household_id",) if c in hh.columns]), models)
        return models[row["model_id"]], row["model_id"], household_policy(row, line, policy,
                                                                         read_policies(root / "policies"))
    except ValidationError as exc:
        problems.extend(exc.problems)
        return None, None, policy

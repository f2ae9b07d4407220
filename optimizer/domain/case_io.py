"""Reading a case directory (CSV files + policy.toml) into a Household and a Policy."""

from __future__ import annotations

import difflib
from pathlib import Path

import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem, ValidationError
from cvxrebalance.optimizer.domain.household import Household
from cvxrebalance.optimizer.domain.policy import Policy

REQUIRED = ("securities.csv", "accounts.csv", "holdings.csv", "targets.csv")
OPTIONAL = ("covariance.csv", "factor_loadings.csv", "factor_covariance.csv",
            "specific_variance.csv", "futures.csv", "transactions.csv")


def read_csv(path: Path) -> pd.DataFrame:
    """Every cell as text, so the validator sees exactly what the file says; the index is each
    row's line in the file (blank lines are skipped but still counted)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
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
    known = set(REQUIRED + OPTIONAL)
    for f in sorted(root.glob("*.csv")):
        if f.name not in known:  # a misspelled file must not be silently ignored
            hint = difflib.get_close_matches(f.name, sorted(known), n=1)
            more = f"; did you mean {hint[0]}?" if hint else f"; known files: {', '.join(sorted(known))}"
            problems.append(Problem(f.name, None, None, "unknown file" + more))
    frames: dict[str, pd.DataFrame | None] = {}
    for name in REQUIRED + OPTIONAL:
        f = root / name
        if not f.exists():
            if name in REQUIRED:
                problems.append(Problem(name, None, None, "file is missing"))
            frames[name] = None
            continue
        try:
            frames[name] = read_csv(f)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            problems.append(Problem(name, None, None, f"cannot be read as CSV: {exc}"))
            frames[name] = None
    policy: Policy | None = None
    try:
        policy = Policy.from_toml(root / "policy.toml")
    except ValidationError as exc:
        problems.extend(exc.problems)
    household = None
    if all(frames[n] is not None for n in REQUIRED):
        try:
            household = Household.from_frames(
                frames["securities.csv"], frames["accounts.csv"], frames["holdings.csv"],
                frames["targets.csv"], covariance=frames["covariance.csv"],
                factor_loadings=frames["factor_loadings.csv"],
                factor_covariance=frames["factor_covariance.csv"],
                specific_variance=frames["specific_variance.csv"], futures=frames["futures.csv"],
                transactions=frames["transactions.csv"],
                name=root.name,
            )
        except ValidationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ValidationError(problems)
    assert household is not None and policy is not None
    return household, policy

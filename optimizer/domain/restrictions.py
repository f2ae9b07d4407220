"""restrictions.csv: a client's own rules on what the household may buy and hold.

One row per rule: ``rule`` (``no_buy`` or ``no_hold``) on exactly one of ``security_id``, ``tag``
(a tag of securities.csv's ``tag`` column, several per security separated by ``;``) or
``asset_class``, in the accounts of ``account_id`` or ``account_type`` (neither: every account).
``no_buy`` forbids buying; ``no_hold`` forbids buying and sells what is held down to zero.

A row on an ``asset_class`` may name a ``substitute`` class, which stands in for it in the row's
accounts ("in taxable accounts hold muni_bonds in place of bonds"): the substitute's securities
count toward the class's target and bands wherever they are held, may be bought only in the
accounts of the class's substitution rows, and the class itself follows the row's rule there.

``household_id`` is optional in a case directory (each row's must then be the case's) and keys
the rows in a batch IN_DIR (the batch splits the table by it). The constraint family is
``constraints.restrictions``; docs/case_format.md has the table and examples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cvxrebalance.optimizer.domain.errors import Problem
from cvxrebalance.optimizer.domain.tables import CASH, Column, parse_table, rows

FILE = "restrictions.csv"
RULES = ("no_buy", "no_hold")
ACCOUNT_TYPES = ("taxable", "tax_deferred", "tax_exempt")
TARGETS = ("security_id", "tag", "asset_class")  # what a row restricts: exactly one of them
RESTRICTIONS = {
    "household_id": Column("str"),
    "account_id": Column("str"),
    "account_type": Column("str"),
    "security_id": Column("str"),
    "tag": Column("str"),
    "asset_class": Column("str"),
    "rule": Column("str", required=True),
    "substitute": Column("str"),
}
KEEP = [c for c in RESTRICTIONS if c != "household_id"]


def cite(line: int, table: str | None = None) -> str:
    """Where a restriction row is: ``restrictions.csv line 3``, or for a batch read from a
    database (``attrs["table"]`` of the frame read, indexed by row + 1) ``table restrictions,
    row 2``, as the database's problems name it."""
    return f"table {table}, {place(line, table)}" if table else f"{FILE} {place(line, table)}"


def place(line: int, table: str | None = None) -> str:
    """A row's place in its source: ``line 3`` of a file, ``row 2`` of a database table (read
    indexed by row + 1)."""
    return f"row {line - 1}" if table else f"line {line}"


def empty_restrictions() -> pd.DataFrame:
    """A household without restrictions: the parsed table's columns, no rows."""
    return _EMPTY.copy()


def parse_restrictions(df: pd.DataFrame | None, sec: pd.DataFrame, acc: pd.DataFrame,
                       class_targets: dict[str, tuple[int, float]] | None, name: str,
                       problems: list[Problem]) -> pd.DataFrame:
    """Typed, checked restrictions (empty when the household has none).

    Parameters
    ----------
    df : DataFrame or None
        restrictions.csv as read (text cells, indexed by file line), or None.
    sec, acc : DataFrame
        The parsed securities (with ``tag`` as tuples) and accounts.
    class_targets : dict or None
        targets.csv's classes: class -> (file line, weight + |tilt|); None for a model portfolio.
    name : str
        The household's name: a ``household_id`` cell must equal it.
    problems : list of Problem
        Every problem found is appended (file, line, field).
    """
    if df is None or (not len(df) and not len(df.columns)):  # no table, or an empty frame
        return empty_restrictions()
    r = parse_table(df, FILE, RESTRICTIONS, problems)
    securities = set(sec["security_id"].tolist())
    tags = {t for ts in sec["tag"].tolist() for t in ts or ()}
    classes = set(sec["asset_class"].tolist()) - {None}
    types = dict(zip(acc["account_id"].tolist(), acc["type"].tolist(), strict=True))
    for line, row in rows(r):
        def bad(field: str, message: str, line: int = line) -> None:
            problems.append(Problem(FILE, line, field, message))

        if row.household_id is not None and row.household_id != name:
            bad("household_id", f"the row is for household {row.household_id!r}, not this one ({name!r})")
        if row.account_id is not None and row.account_id not in types:
            bad("account_id", f"unknown account {row.account_id!r}")
        if row.account_type is not None and row.account_type not in ACCOUNT_TYPES:
            bad("account_type", f"unknown account type {row.account_type!r}; use one of {', '.join(ACCOUNT_TYPES)}")
        if row.account_id is not None and row.account_type is not None:
            bad("account_type", "give account_id or account_type, not both")
        if row.rule is not None and row.rule not in RULES:
            bad("rule", f"{row.rule!r} is not one of {', '.join(RULES)}")
        given = [c for c in TARGETS if getattr(row, c) is not None]
        if len(given) != 1:
            bad(given[1] if len(given) > 1 else "security_id",
                "give exactly one of security_id, tag or asset_class"
                + (f" (this row gives {', '.join(given)})" if given else ""))
        if row.security_id is not None and row.security_id not in securities:
            bad("security_id", f"unknown security {row.security_id!r}")
        if row.tag is not None and row.tag not in tags:
            known = f"tags: {', '.join(sorted(tags))}" if tags else "securities.csv tags no security"
            bad("tag", f"unknown tag {row.tag!r}: no security carries it ({known})")
        if row.asset_class is not None and row.asset_class not in classes | set(class_targets or {}):
            bad("asset_class", f"unknown asset class {row.asset_class!r}")
        if row.substitute is not None:
            _check_substitute(row, line, classes, class_targets, bad)
    _repeats(r, problems)
    _check_substitutions(r, problems)
    out = r[KEEP]
    out.attrs["table"] = df.attrs.get("table")  # where the rows came from, for ``cite``
    return out


def _repeats(r: pd.DataFrame, problems: list[Problem]) -> None:
    """A row restricting what an earlier row restricts in the same accounts (a blank cell is a
    value here: two rows on every account repeat each other)."""
    seen: dict[tuple, int] = {}
    for line, row in rows(r):
        key = tuple(getattr(row, c) for c in ("account_id", "account_type", *TARGETS))
        if key in seen:
            field = next((c for c in TARGETS if getattr(row, c) is not None), "rule")
            problems.append(Problem(FILE, line, field, f"repeats the restriction on line {seen[key]} (one row per "
                                    "security, tag or class and accounts; no_hold includes no_buy)"))
        else:
            seen[key] = int(line)


def _check_substitute(row, line: int, classes: set[str], class_targets, bad) -> None:
    """A substitute is a class of securities.csv standing in for a target class of its own row."""
    if row.asset_class is None:
        bad("substitute", "a substitute stands in for an asset_class: give the class it replaces in asset_class")
        return
    if class_targets is None:
        bad("substitute", "a substitute class needs asset_class targets (a model portfolio names its securities)")
        return
    if row.substitute not in classes:
        bad("substitute", f"{row.substitute!r} is the asset class of no security")
    elif row.substitute == row.asset_class:
        bad("substitute", "a class cannot stand in for itself")
    if row.asset_class not in class_targets:
        bad("asset_class", f"{row.asset_class!r} has no row in targets.csv, so there is no target to stand in for")
    own = class_targets.get(row.substitute)
    if own is not None and own[1] != 0:
        bad("substitute", f"{row.substitute!r} has a target of its own (targets.csv line {own[0]}); a substitute "
            f"counts toward {row.asset_class!r}'s target: give it weight 0 or no row")


def _check_substitutions(r: pd.DataFrame, problems: list[Problem]) -> None:
    """One substitute per class, and a substitute stands in for one class and is not replaced."""
    first: dict[str, tuple[int, str]] = {}
    stands_for: dict[str, str] = {}
    for line, row in rows(r):
        if row.substitute is None or row.asset_class is None:
            continue
        seen = first.setdefault(row.asset_class, (line, row.substitute))
        if seen[1] != row.substitute:
            problems.append(Problem(FILE, line, "substitute", f"{row.asset_class!r} already has the substitute "
                                    f"{seen[1]!r} (line {seen[0]}); a class has one substitute"))
        other = stands_for.setdefault(row.substitute, row.asset_class)
        if other != row.asset_class:
            problems.append(Problem(FILE, line, "substitute", f"{row.substitute!r} already stands in for "
                                    f"{other!r}; a substitute stands in for one class"))
    for line, row in rows(r):
        if row.substitute is not None and row.substitute in first:
            problems.append(Problem(FILE, line, "substitute", f"{row.substitute!r} is itself replaced (line "
                                    f"{first[row.substitute][0]}); substitutes do not chain"))


def stand_ins(restrictions: pd.DataFrame) -> dict[str, str]:
    """Substitute class -> the class it stands in for.

    Examples
    --------
    >>> r = pd.DataFrame({"asset_class": ["bonds", None], "substitute": ["muni_bonds", None]})
    >>> stand_ins(r)
    {'muni_bonds': 'bonds'}
    """
    if not len(restrictions):
        return {}
    both = restrictions[restrictions["substitute"].notna() & restrictions["asset_class"].notna()]
    return dict(zip(both["substitute"].tolist(), both["asset_class"].tolist(), strict=True))


def describe(row) -> str:
    """What a restriction row covers, in words, e.g. ``tag 'defense' in every account``."""
    what = next(f"{c} {getattr(row, c)!r}" for c in TARGETS if getattr(row, c) is not None)
    where = (f"in {row.account_id}" if row.account_id is not None else
             f"in {row.account_type} accounts" if row.account_type is not None else "in every account")
    instead = f", {row.substitute} in its place" if row.substitute is not None else ""
    return f"{what} {where}{instead}"


ACCOUNT_TYPE_WORDS = {"taxable": "taxable", "tax_deferred": "tax-deferred", "tax_exempt": "tax-exempt"}


def where_words(row) -> str:
    """The accounts a row covers, in plain words (``in taxable accounts``, ``in any account``)."""
    if row.account_id is not None:
        return f"in account {row.account_id}"
    if row.account_type is not None:
        return f"in {ACCOUNT_TYPE_WORDS.get(row.account_type, row.account_type)} accounts"
    return "in any account"


def plain(row) -> str:
    """What a restriction row asks of the client's accounts, in plain words for a client.

    Examples
    --------
    >>> from types import SimpleNamespace as Row
    >>> blank = dict(account_id=None, account_type=None, security_id=None, tag=None, asset_class=None,
    ...              substitute=None)
    >>> plain(Row(**{**blank, "tag": "defense", "rule": "no_hold"}))
    'no holdings tagged defense in any account'
    >>> plain(Row(**{**blank, "account_type": "taxable", "asset_class": "bonds", "rule": "no_hold",
    ...              "substitute": "muni_bonds"}))
    'no bonds in taxable accounts (muni_bonds held in their place)'
    >>> plain(Row(**{**blank, "security_id": "NOC", "rule": "no_buy"}))
    'no new purchases of NOC in any account'
    """
    what = (row.security_id if row.security_id is not None else
            f"anything tagged {row.tag}" if row.tag is not None else row.asset_class)
    if row.rule == "no_buy":
        text = f"no new purchases of {what}"
    else:
        text = (f"no holdings of {row.security_id}" if row.security_id is not None else
                f"no holdings tagged {row.tag}" if row.tag is not None else f"no {row.asset_class}")
    instead = f" ({row.substitute} held in their place)" if row.substitute is not None else ""
    return f"{text} {where_words(row)}{instead}"


@dataclass(frozen=True)
class Restricted:
    """The household's restrictions over its positions (A accounts, N securities).

    ``position[r]`` (A, N): the positions restriction row r covers; ``rule[r]``, ``line[r]`` and
    ``what[r]`` its rule, file line and what it covers in words (``text(r)``: all three);
    ``words[r]`` the row in plain words for a client (``plain``; ``where[r]``: its accounts), who
    knows it as restriction r + 1 (``number(r)``: the household's own rows in file order, whatever
    their lines in a batch's shared file).
    ``stand_in_ok`` (A, N): False where a substitute class's security may not be bought (outside
    the accounts of its substitution rows), with ``stand_in_text`` (N,) saying why;
    ``stand_in_row`` (A, N): the substitution row under which a position's security stands in for
    another class in that account (-1: none).
    """

    position: np.ndarray
    rule: list[str]
    line: list[int]
    what: list[str]
    words: list[str]
    where: list[str]
    stand_in_ok: np.ndarray
    stand_in_text: list[str]
    stand_in_row: np.ndarray
    table: str | None = None  # the database table the rows came from (None: restrictions.csv)

    def text(self, r: int) -> str:
        """Row r in words, e.g. ``no_hold tag 'defense' in every account (restrictions.csv line 3)``."""
        return f"{self.rule[r]} {self.what[r]} ({self.cite(r)})"

    def cite(self, r: int) -> str:
        """Where row r is (``cite``): its file line, or its database table and row."""
        return cite(self.line[r], self.table)

    def number(self, r: int) -> str:
        """Row r as the client knows it, e.g. ``client restriction 1: no holdings tagged defense in
        any account``."""
        return f"client restriction {r + 1}: {self.words[r]}"

    def label(self, r: int) -> str:
        """Row r's name among an infeasible policy's conflicts."""
        return f"restrictions.{self.rule[r]}[{place(self.line[r], self.table)}: {self.what[r]}]"

    @property
    def buy_forbidden(self) -> np.ndarray:
        """(A, N) positions some row (no_buy or no_hold) forbids buying."""
        return self.position.any(0) if len(self.rule) else np.zeros(self.stand_in_ok.shape, bool)

    @property
    def no_hold(self) -> np.ndarray:
        """(R,) rows whose holdings are sold down to zero."""
        return np.array([r == "no_hold" for r in self.rule], bool)

    def first_sell_down(self) -> np.ndarray:
        """(A, N) the first no_hold row covering each position (-1: none)."""
        out = np.full(self.stand_in_ok.shape, -1)
        for r in reversed(np.flatnonzero(self.no_hold)):
            out[self.position[r]] = r
        return out


def restricted(household, account_ids: list[str], account_types: list[str]) -> Restricted:
    """Each restriction row of ``household`` over its accounts and securities (in their order)."""
    res, sec = household.restrictions, household.securities
    A, N = len(account_ids), len(sec)
    sids = sec["security_id"].tolist()
    classes = sec["asset_class"].to_numpy(object)
    tags = sec["tag"].tolist()
    masks, rules, lines, what, words, where_rows = [], [], [], [], [], []
    scope_of: dict[str, np.ndarray] = {}  # substitute class -> accounts where it stands in
    stand_in_row = np.full((A, N), -1)
    for line, row in rows(res):
        scope = np.ones(A, bool)
        if row.account_id is not None:
            scope = np.array([a == row.account_id for a in account_ids], bool)
        elif row.account_type is not None:
            scope = np.array([t == row.account_type for t in account_types], bool)
        if row.security_id is not None:
            which = np.array([s == row.security_id for s in sids], bool)
        elif row.tag is not None:
            which = np.array([row.tag in (t or ()) for t in tags], bool)
        else:  # the class as securities.csv gives it (a substitute is not its class)
            which = classes == row.asset_class
        masks.append(scope[:, None] & which[None, :])
        rules.append(row.rule)
        lines.append(int(line))
        what.append(describe(row))
        words.append(plain(row))
        where_rows.append(where_words(row))
        if row.substitute is not None:
            scope_of[row.substitute] = scope_of.get(row.substitute, np.zeros(A, bool)) | scope
            stand_in_row[(stand_in_row < 0) & scope[:, None] & (classes == row.substitute)[None, :]] = len(rules) - 1
    ok = np.ones((A, N), bool)
    why = [""] * N
    replaced = stand_ins(res)
    for sub, scope in scope_of.items():
        members = classes == sub
        ok[np.ix_(~scope, members)] = False
        where = ", ".join(a for a, s in zip(account_ids, scope, strict=True) if s) or "no account"
        for i in np.flatnonzero(members):
            why[i] = f"{sids[i]} ({sub}) stands in for {replaced[sub]} only in {where} (restrictions.csv substitute)"
    position = np.array(masks, bool) if masks else np.zeros((0, A, N), bool)
    return Restricted(position, rules, lines, what, words, where_rows, ok, why, stand_in_row, res.attrs.get("table"))


def class_targets(tgt: pd.DataFrame, key: str) -> dict[str, tuple[int, float]]:
    """targets.csv's classes (``key``: the class column) -> (file line, weight + |tilt|)."""
    out = {}
    for line, c, w, t in zip(tgt.index.tolist(), tgt[key].tolist(), tgt["weight"].tolist(),
                             tgt["tilt"].tolist(), strict=True):
        if c is not None and c != CASH:
            size = sum(abs(float(x)) for x in (w, t) if x is not None and not np.isnan(x))
            out[c] = (int(line), size)
    return out



def of(data) -> Restricted:
    """The restrictions of a prepared household (``optimizer.domain.prepare.Prepared``), computed once."""
    if "restricted" not in data.memo:
        data.memo["restricted"] = restricted(data.household, data.account_ids, data.account_types)
    return data.memo["restricted"]


_EMPTY = parse_table(pd.DataFrame({c: [] for c in RESTRICTIONS}), FILE, RESTRICTIONS, [])[KEEP]

"""restrictions.csv in a batch IN_DIR: a per-household table keyed by household_id, so each
household follows its own client's rules and a bad row fails only its household."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cvxrebalance.optimizer.apps.bench import write_batch_input
from cvxrebalance.optimizer.apps.executors import run_batch
from cvxrebalance.scenarios.synthetic import synthetic_universe


def held(in_dir: Path, hid: str) -> pd.Series:
    """Shares each account of ``hid`` holds, by (account, security)."""
    hol = pd.read_csv(in_dir / "holdings.csv")
    mine = hol[hol["household_id"] == hid]
    return mine.groupby(["account_id", "security_id"])["quantity"].sum()


def test_each_household_follows_its_own_restrictions(tmp_path):
    in_dir = tmp_path / "in"
    write_batch_input(in_dir, synthetic_universe(20, 0, seed=3), 4, 2, 30)
    sec = pd.read_csv(in_dir / "securities.csv")
    # The taxable account's largest holding of h00000 is tagged "defense" (with another tag).
    h0 = held(in_dir, "h00000")
    defense = h0.loc["acct0"].idxmax()
    sec["tag"] = ["defense;aerospace" if s == defense else "" for s in sec["security_id"]]
    sec.to_csv(in_dir / "securities.csv", index=False)
    (in_dir / "restrictions.csv").write_text(
        "household_id,account_id,tag,asset_class,rule\n"
        "h00000,,defense,,no_hold\n"             # line 2: Jones sells the defense holding
        "h00001,,,bonds,no_buy\n"                # line 3: no bonds bought (equities drift above target)
        "h00002,,defence,,no_hold\n"             # line 4: a typo: only h00002 fails
        "h00002,acct9,,bonds,no_buy\n")          # line 5: an unknown account, same household
    man = run_batch(in_dir, tmp_path / "out", workers=1, progress=False)
    assert man["counts"]["failed"] == 1 and man["counts"]["succeeded"] == 3
    errors = pd.read_csv(tmp_path / "out" / "errors.csv").set_index("household_id")
    reason = errors.loc["h00002", "reason"]
    assert "restrictions.csv line 4 [tag]: unknown tag 'defence'" in reason
    assert "restrictions.csv line 5 [account_id]: unknown account 'acct9'" in reason
    trades = pd.read_csv(tmp_path / "out" / "trades.csv")
    jones = trades[(trades["household_id"] == "h00000") & (trades["security_id"] == defense)]
    assert set(jones["side"]) == {"sell"}
    assert jones.groupby("account_id")["quantity"].sum().to_dict() == h0.xs(defense, level=1).to_dict()
    assert set(jones["reason"]) == {"restriction"}
    assert jones["reason_detail"].str.contains("no_hold tag 'defense' in every account "
                                               "\\(restrictions.csv line 2\\)").all()
    members = set(sec.loc[sec["asset_class"] == "bonds", "security_id"])
    no_bonds = trades[trades["household_id"] == "h00001"]
    assert not (no_bonds["security_id"].isin(members) & (no_bonds["side"] == "buy")).any()
    others = trades[trades["household_id"] == "h00003"]  # no restriction: buys bonds
    assert (others["security_id"].isin(members) & (others["side"] == "buy")).any()

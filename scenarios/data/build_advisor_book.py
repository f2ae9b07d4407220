"""Build the bundled advisor's book (``scenarios/books/advisor/``): an RIA's 200 clients on four
model portfolios, as a ``cvxrebalance batch`` IN_DIR.

    python3 scenarios/data/build_advisor_book.py

Deterministic (seeded). Prices are illustrative, not market data. The book:
- four models, Conservative 30/70 to Aggressive 90/10 (``models.csv``), US and international
  equity, bonds and 2% cash;
- 200 households (``households.csv``): ``jones`` and ``smith`` (the seed's clients) and
  ``h003`` ... ``h200``, each on a model, a few on ``policies/tax_sensitive.toml`` or with their
  own short-term tax rate;
- one to three accounts each (taxable, IRA, Roth), taxable lots with cost bases and dates, and a
  few pending contributions and withdrawals; holdings drifted from the model by a year of
  market moves, so some households are outside their bands and most are not;
- ``restrictions.csv``: Jones prohibits defense contractors (a ``no_hold`` on the tag), Smith
  holds municipal bonds in place of bonds in her taxable account (a substitute class), and a few
  clients buy no tobacco.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "books" / "advisor"
AS_OF = "2026-11-20"
SECURITIES = [  # id, class, illustrative price, tag
    ("VTI", "us_equity", 310.0, ""), ("LMT", "us_equity", 480.0, "defense"),
    ("NOC", "us_equity", 520.0, "defense"), ("RTX", "us_equity", 125.0, "defense;aerospace"),
    ("MO", "us_equity", 58.0, "tobacco"), ("PM", "us_equity", 150.0, "tobacco"),
    ("AAPL", "us_equity", 230.0, ""), ("MSFT", "us_equity", 420.0, ""),
    ("VXUS", "intl_equity", 66.0, ""), ("VEA", "intl_equity", 52.0, ""),
    ("BND", "bonds", 73.0, ""), ("AGG", "bonds", 99.0, ""),
    ("MUB", "muni_bonds", 107.0, ""), ("VTEB", "muni_bonds", 50.0, ""),
]
MODELS = {  # us_equity, intl_equity, bonds (cash 2%)
    "conservative": (0.20, 0.08, 0.70), "moderate": (0.33, 0.15, 0.50),
    "growth": (0.48, 0.20, 0.30), "aggressive": (0.62, 0.26, 0.10),
}
VOLS = {"us_equity": 0.16, "intl_equity": 0.17, "bonds": 0.05, "muni_bonds": 0.045}


# No ticket under $500, a cash raise included: a one-share ticket costs the desk more than it fixes.
TICKETS = """
[trades]
min_value = 500.0
"""


def main() -> None:
    rng = np.random.default_rng(20261120)
    (OUT / "policies").mkdir(parents=True, exist_ok=True)
    sec = pd.DataFrame(SECURITIES, columns=["security_id", "asset_class", "price", "tag"])
    sec["half_spread"] = np.where(sec["asset_class"].str.contains("bonds"), 0.0002, 0.0001)
    # Each class's funds, in the order the advisor buys them; single stocks are held, not bought
    # (only where no fund may be). Without ranks the risk model cannot tell a stock from the fund
    # of its class, and the last tie-break (security_id) would buy AAPL for the class.
    sec["priority"] = sec["security_id"].map({"VTI": 1, "VXUS": 1, "VEA": 2, "AGG": 1, "BND": 2, "MUB": 1,
                                              "VTEB": 2}).astype("Int64")
    sec.to_csv(OUT / "securities.csv", index=False)
    classes = list(VOLS)
    corr = np.array([[1, 0.8, 0.1, 0.1], [0.8, 1, 0.1, 0.1], [0.1, 0.1, 1, 0.9], [0.1, 0.1, 0.9, 1]])
    vol = np.array([VOLS[c] for c in classes])
    pd.DataFrame(np.outer(vol, vol) * corr, index=classes, columns=classes).reset_index(names="asset_class") \
        .round(8).to_csv(OUT / "covariance.csv", index=False)
    models = [{"model_id": m, "asset_class": c, "weight": w} for m, ws in MODELS.items()
              for c, w in zip(["us_equity", "intl_equity", "bonds", "cash"], [*ws, 0.02], strict=True)]
    pd.DataFrame(models).to_csv(OUT / "models.csv", index=False)
    (OUT / "policy.toml").write_text(f"""# The advisor's house policy: 5/25 bands, trade back to target, a year's taxes counted.
[objective]
risk_weight = 100.0
cost_weight = 1.0
tax_weight = 1.0

[bands]
rule = "5/25"

[trigger]
mode = "threshold"
rebalance_to = "target"

[tax]
short_term_rate = 0.37
long_term_rate = 0.20
as_of = {AS_OF}
{TICKETS}""")
    (OUT / "policies" / "tax_sensitive.toml").write_text(f"""# Clients who asked to keep realized gains down: taxes weigh double, trades back to the band edge.
[objective]
risk_weight = 100.0
cost_weight = 1.0
tax_weight = 2.0

[bands]
rule = "5/25"

[trigger]
mode = "threshold"
rebalance_to = "tolerance"

[tax]
short_term_rate = 0.37
long_term_rate = 0.20
as_of = {AS_OF}
{TICKETS}""")
    ids = ["jones", "smith", *[f"h{k:03d}" for k in range(3, 201)]]
    names = list(MODELS)
    households, accounts, holdings = [], [], []
    price = dict(zip(sec["security_id"], sec["price"], strict=True))
    by_class = {c: sec.loc[(sec["asset_class"] == c) & (sec["tag"] == ""), "security_id"].tolist() for c in classes}
    by_class["us_equity"] += ["LMT", "MO"]  # some clients hold single names the screens cover
    for k, hid in enumerate(ids):
        model = "moderate" if hid in ("jones", "smith") else names[k % 4]
        row = {"household_id": hid, "model_id": model, "policy": "", "short_term_rate": ""}
        if k % 17 == 5:
            row["policy"] = "tax_sensitive"
        if k % 23 == 7:
            row["short_term_rate"] = 0.24
        households.append(row)
        value = float(np.exp(rng.normal(13.0, 0.7)))
        kinds = ["taxable", "tax_deferred", "tax_exempt"][: 1 + k % 3] if hid != "smith" else ["taxable", "tax_deferred"]
        split = rng.dirichlet(np.ones(len(kinds)) * 3)
        target = dict(zip(["us_equity", "intl_equity", "bonds"], MODELS[model], strict=True))
        # A year of moves: equity classes drift by their own returns, so some leave their bands.
        moves = {"us_equity": rng.normal(0.10, 0.12), "intl_equity": rng.normal(0.06, 0.12), "bonds": rng.normal(0.02, 0.03)}
        for kind, share in zip(kinds, split, strict=True):
            aid = {"taxable": "brokerage", "tax_deferred": "ira", "tax_exempt": "roth"}[kind]
            acc_value = value * share
            flow = 0.0
            if kind == "taxable" and k % 19 == 3:
                flow = round(acc_value * 0.05, -2)  # a contribution waiting to be invested
            if kind == "tax_deferred" and k % 29 == 11:
                flow = -round(acc_value * 0.04, -2)  # a required distribution
            # The custodian's account number (illustrative): ids like "ira" repeat across clients.
            number = f"{48_000_000 + 10 * k + kinds.index(kind):08d}"
            accounts.append({"household_id": hid, "account_id": aid, "account_number": number, "type": kind,
                             "cash": round(acc_value * 0.02, 2), "cash_flow": flow, "min_cash": 250.0})
            for cls, w in target.items():
                secs = by_class[cls]
                pick = secs[k % len(secs)] if cls != "us_equity" else secs[k % 3] if k % 7 else "LMT" if k % 2 else "MO"
                if hid == "jones" and cls == "us_equity":
                    pick = "NOC"  # Jones inherited a defense contractor
                if hid == "smith" and kind == "taxable" and cls == "bonds":
                    pick = "BND"  # Smith's taxable bonds are to become munis
                amount = acc_value * 0.98 * w * (1 + moves[cls])
                quantity = int(amount / price[pick])
                if quantity <= 0:
                    continue
                if kind == "taxable":
                    lots = 1 + k % 3
                    for j, q in enumerate(np.array_split(np.arange(quantity), lots)):
                        if len(q):
                            days = int(rng.integers(60, 3650))
                            acquired = (pd.Timestamp(AS_OF) - pd.Timedelta(days=days)).date().isoformat()
                            basis = round(price[pick] * float(rng.uniform(0.45, 1.08)), 2)
                            holdings.append({"household_id": hid, "account_id": aid, "security_id": pick,
                                             "quantity": len(q), "lot_id": f"{hid}-{aid}-{pick}-{j + 1}",
                                             "cost_basis": basis, "acquired": acquired})
                else:
                    holdings.append({"household_id": hid, "account_id": aid, "security_id": pick,
                                     "quantity": quantity, "lot_id": "", "cost_basis": "", "acquired": ""})
    pd.DataFrame(households).to_csv(OUT / "households.csv", index=False)
    pd.DataFrame(accounts).to_csv(OUT / "accounts.csv", index=False)
    pd.DataFrame(holdings).to_csv(OUT / "holdings.csv", index=False)
    restrictions = [
        {"household_id": "jones", "account_type": "", "tag": "defense", "asset_class": "", "rule": "no_hold",
         "substitute": ""},
        {"household_id": "smith", "account_type": "taxable", "tag": "", "asset_class": "bonds", "rule": "no_hold",
         "substitute": "muni_bonds"},
        *({"household_id": f"h{k:03d}", "account_type": "", "tag": "tobacco", "asset_class": "", "rule": "no_buy",
           "substitute": ""} for k in (10, 40, 70, 100)),
    ]
    pd.DataFrame(restrictions).to_csv(OUT / "restrictions.csv", index=False)


if __name__ == "__main__":
    main()

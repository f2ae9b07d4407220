"""Counting campaigns behind the reliability figures (the tests assert the properties; these
count outcomes). Run from the repository root:

    python tests/campaigns.py fuzz 1000          # mutated bundled cases (tests/mutations.py)
    python tests/campaigns.py independent 2000   # random households, re-verified independently
    python tests/campaigns.py independent 1000 --esg   # the same with an ESG minimum and a gain budget
    python tests/campaigns.py overlay 300        # the overlay case, random positions and overlay policy

Each prints one line of counts by outcome. A fuzz outcome is "traceback ..." when the product
raised anything but a named error; an independent outcome is "MISSED" when a result the checker
passed breaks a rule, and "FALSE VERDICT" when an infeasibility is claimed for a feasible policy
without saying what was not proven.
"""

from __future__ import annotations

import collections
import json
import random
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from golden_cases import overlay_variant, random_household  # noqa: E402
from independent_check import independent_violations  # noqa: E402
from mutations import mutate  # noqa: E402

from cvxrebalance import (  # noqa: E402
    CheckError,
    InfeasibilityError,
    SolverError,
    ValidationError,
    case_path,
    check,
    load_case,
    rebalance,
)
from cvxrebalance.optimizer.domain.prepare import prepare  # noqa: E402
from cvxrebalance.optimizer.pipeline.problem import Solver  # noqa: E402

CASES = ["example", "seed_portfolio", "overlay", "tax_aware"]


def fuzz(n: int) -> collections.Counter:
    """Seed k mutates bundled case k % 4 with 1 + k % 3 mutations, then loads and rebalances it."""
    counts: collections.Counter = collections.Counter()
    for seed in range(n):
        rng, case = random.Random(seed), CASES[seed % len(CASES)]
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / case
            shutil.copytree(case_path(case), root)
            for _ in range(1 + seed % 3):
                mutate(root, rng)
            try:
                result = rebalance(*load_case(root))
                json.dumps(result.summary, allow_nan=False, default=str)
                ok = result.summary["checks"]["passed"] and check(result.solution) == []
                counts["result" if ok else "result failing the checker"] += 1
            except (ValidationError, InfeasibilityError, SolverError, CheckError) as exc:
                counts[type(exc).__name__] += 1
            except Exception as exc:  # noqa: BLE001 - what the campaign counts
                counts[f"traceback {type(exc).__name__}"] += 1
    return counts


def independent(n: int, esg: bool, overlay: bool = False) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    for seed in range(n):
        household, policy = overlay_variant(seed) if overlay else random_household(seed)
        if esg:
            policy = policy.replace(esg={"min_score": 4.0}, tax={"gain_budget": 500.0})
        try:
            result = rebalance(household, policy)
        except InfeasibilityError as exc:
            text = str(exc)
            if Solver(prepare(household, policy)).solve() is None:
                counts["infeasible: the program"] += 1
            elif "every choice of sides (a MILP, HiGHS) found no whole-share" in text:
                counts["infeasible: wash-sale sides, proven"] += 1
            elif "decided both ways" in text:
                counts["infeasible: wash-sale sides, not proven"] += 1
            elif "proved that no whole-share trade list" in text:
                counts["infeasible: whole shares, proven"] += 1
            elif "can be met with fractional shares" in text:
                counts["infeasible: whole shares, not proven"] += 1
            else:
                counts["FALSE VERDICT"] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - what the campaign counts
            counts[type(exc).__name__] += 1
            continue
        counts["result"] += 1
        if independent_violations(household, policy, result):
            counts["MISSED"] += 1
    return counts


if __name__ == "__main__":
    kind, size = sys.argv[1], int(sys.argv[2])
    found = fuzz(size) if kind == "fuzz" else independent(size, "--esg" in sys.argv, kind == "overlay")
    print(dict(found))

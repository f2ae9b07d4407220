"""Property-based fuzzing of the case reader and the policy with the mutation families of
``tests/mutations.py``: whatever the damage, the product answers with a result that passes the
independent checker or with a named error (ValidationError naming a file, InfeasibilityError,
SolverError), never a traceback.

``FUZZ_EXAMPLES=1000 python -m pytest tests/optimizer/domain/test_fuzz_reader.py`` runs a
campaign of that size (the default keeps the suite fast); ``FUZZ_REPORT=path`` writes each
mutation and its outcome as JSON lines.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutate

from cvxrebalance import InfeasibilityError, SolverError, ValidationError, check, load_case, rebalance
from cvxrebalance.scenarios import case_path

CASES = ["example", "seed_portfolio", "overlay", "tax_aware"]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))


def outcome(case: str, seed: int, n_mutations: int) -> tuple[str, list[str]]:
    """Mutate a fresh copy of a bundled case and run it; the outcome's name and what was done."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / case
        shutil.copytree(case_path(case), root)
        done = [mutate(root, rng) for _ in range(n_mutations)]
        try:
            household, policy = load_case(root)
        except ValidationError as exc:
            assert exc.problems and all(isinstance(p.file, str) and p.file and p.message for p in exc.problems)
            return "ValidationError", done
        try:
            result = rebalance(household, policy)
        except (InfeasibilityError, SolverError) as exc:
            return type(exc).__name__, done
        assert result.summary["checks"]["passed"] and check(result.solution) == []
        json.dumps(result.summary, allow_nan=False, default=str)  # valid JSON: no NaN or inf
        return "result", done


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=st.sampled_from(CASES), seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3))
def test_any_damage_gives_a_checked_result_or_a_named_error(case, seed, n):
    kind, done = outcome(case, seed, n)
    report = os.environ.get("FUZZ_REPORT")
    if report:
        with open(report, "a") as f:
            f.write(json.dumps({"case": case, "seed": seed, "mutations": done, "outcome": kind}) + "\n")

"""The ``cvxrebalance`` command line: rebalance a case directory and write the result."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

from optimizer.case_io import load_case
from optimizer.errors import CvxRebalanceError
from optimizer.rebalance import rebalance
from scenarios import case_path, describe_case, list_cases

DESCRIPTION = (
    "Rebalance a household of accounts by one convex optimization (tracking error + costs + "
    "taxes, with bands, lots, accounts and cash), checked before it is returned."
)


def _case_dir(arg: str) -> Path:
    """A directory, or the name of a bundled case; a clear error for neither."""
    p = Path(arg)
    if p.is_dir():
        return p
    if arg in list_cases():
        return case_path(arg)
    hint = difflib.get_close_matches(arg, list_cases(), n=1)
    more = f"; did you mean the bundled case {hint[0]!r}?" if hint else (
        f"; bundled cases: {', '.join(list_cases())}")
    raise FileNotFoundError(f"{arg!r} is neither a case directory nor a bundled case{more}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, infeasible policy or I/O error)."""
    from optimizer import __version__

    parser = argparse.ArgumentParser(prog="cvxrebalance", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"cvxrebalance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="rebalance one case directory (or a bundled case by name)")
    run.add_argument("case", help="case directory, or a bundled case name: " + ", ".join(list_cases()))
    run.add_argument("--out", help="write trades.csv, lots.csv, summary.json into this directory")
    run.add_argument("--quiet", action="store_true", help="no terminal summary")
    sub.add_parser("cases", help="list the bundled example cases")
    args = parser.parse_args(argv)

    if args.command == "cases":
        for name in list_cases():
            print(f"{name:16s} {describe_case(name)}")
        return 0
    try:
        household, policy = load_case(_case_dir(args.case))
        result = rebalance(household, policy)
        if not args.quiet:
            print(result.to_text())
        if args.out:
            out = result.write(args.out)
            print(f"Wrote {out / 'trades.csv'}, {out / 'lots.csv'}, {out / 'summary.json'}")
    except CvxRebalanceError as exc:
        print(f"cvxrebalance: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cvxrebalance: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

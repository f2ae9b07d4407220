"""The ``cvxrebalance`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from optimizer.case_io import load_case
from optimizer.errors import CvxRebalanceError
from optimizer.rebalance import rebalance
from scenarios import case_path, list_cases


def _case_dir(arg: str) -> Path:
    """A directory, or the name of a bundled case."""
    p = Path(arg)
    if p.is_dir() or arg not in list_cases():
        return p
    return case_path(arg)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cvxrebalance", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="rebalance one case directory (or a bundled case by name)")
    run.add_argument("case", help="case directory, or a bundled case name: " + ", ".join(list_cases()))
    run.add_argument("--out", help="write trades.csv, lots.csv, summary.json here")
    run.add_argument("--quiet", action="store_true", help="no terminal summary")
    sub.add_parser("cases", help="list the bundled example cases")
    args = parser.parse_args(argv)

    if args.command == "cases":
        for name in list_cases():
            print(f"{name}\t{case_path(name)}")
        return 0
    try:
        household, policy = load_case(_case_dir(args.case))
        result = rebalance(household, policy)
    except CvxRebalanceError as exc:
        print(f"cvxrebalance: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(result.to_text())
    if args.out:
        out = result.write(args.out)
        print(f"\nWrote {out / 'trades.csv'}, {out / 'lots.csv'}, {out / 'summary.json'}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

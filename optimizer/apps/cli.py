"""The ``cvxrebalance`` command line: rebalance a case directory and write the result."""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from pathlib import Path

from cvxrebalance.optimizer.domain.errors import CvxRebalanceError, OutputError, Problem, ValidationError
from cvxrebalance.scenarios import (
    case_path,
    describe_case,
    list_cases,
    trade_file_template,
    trade_file_templates,
)

EXIT_OUTPUT = 3  # the results could not be written (1: some households failed, 2: bad input)

# The heavy modules (pandas, the solvers) are imported inside the commands that use them, so
# `cvxrebalance --help` starts in a fraction of a second.

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


def _in_dir(arg: str) -> str | Path:
    """A batch IN_DIR, or the name of a bundled book (``advisor``) when no such directory exists."""
    from cvxrebalance.scenarios import book_path

    if Path(arg).exists():
        return arg
    try:
        return book_path(arg)
    except KeyError:
        return arg  # the batch names the missing directory


def _executor_options(parser: argparse.ArgumentParser, chunk_help: str) -> None:
    """The options of a run on the batch executors (``batch`` and ``sweep``)."""
    parser.add_argument("--executor", choices=["local", "dask"], default="local")
    parser.add_argument("--scheduler", help="Dask scheduler address (default: start a local cluster)")
    parser.add_argument("--workers", type=int, help="worker processes (default: one per core)")
    parser.add_argument("--chunk-size", type=int, help=chunk_help)
    parser.add_argument("--retry-errors", action="store_true", help="run failed households again")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


EXIT_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input, infeasible policy or I/O error).

    A reader that goes away (``cvxrebalance batch ... | head``) ends the command quietly
    (``EXIT_PIPE``), without a BrokenPipeError traceback; a broken pipe elsewhere (a worker's)
    is raised as it is.
    """
    try:
        code = _main(argv)
        sys.stdout.flush()  # a closed stdout shows here, not as an error at exit
        return code
    except BrokenPipeError:
        closed = [stream for stream in (sys.stdout, sys.stderr) if _closed_pipe(stream)]
        if sys.stdout not in closed:
            raise
        # Python flushes stdout once more at exit: point the closed streams at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        for stream in closed:
            os.dup2(devnull, stream.fileno())
        os.close(devnull)
        return EXIT_PIPE


def _closed_pipe(stream) -> bool:
    """Whether ``stream`` writes to a pipe whose reader has gone (poll reports an error on it)."""
    try:
        import select

        poll = select.poll()
        poll.register(stream.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no file descriptor (captured), or no poll
        return False


def _main(argv: list[str] | None) -> int:
    """The command line's work (``main``)."""
    from importlib.metadata import version

    __version__ = version("cvxrebalance")

    parser = argparse.ArgumentParser(prog="cvxrebalance", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"cvxrebalance {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="rebalance one case directory (or a bundled case by name)")
    run.add_argument("case", help="case directory, or a bundled case name: " + ", ".join(list_cases()))
    run.add_argument("--out", help="write trades.csv, lots.csv, summary.json into this directory")
    run.add_argument("--quiet", action="store_true", help="no terminal summary")
    sub.add_parser("cases", help="list the bundled example cases")
    batch = sub.add_parser("batch", help="rebalance every household of IN_DIR into OUT_DIR (resumable)")
    batch.add_argument("in_dir", help="input directory, bundled book name, or database URL (sqlite:///book.db, "
                       "postgresql://user@host/db)")
    batch.add_argument("out_dir")
    batch.add_argument("--results-to", metavar="DB_URL",
                       help="also write each household's trades, lots, futures and summary to this database, "
                       "one transaction per household (exactly once across reruns), and the desk's orders, "
                       "order lots, block trades and allocations under OUT_DIR's batch_id")
    _executor_options(batch, "households per task (default 50)")
    batch.add_argument("--cross", action="store_true",
                       help="cross opposite sides of a security between different households (off: never "
                       "netted); the firm's decision: client consent and its cross-trade policy")
    batch.add_argument("--only-needed", action="store_true",
                       help="rebalance only the households `scan` says need it (default thresholds)")
    tf = sub.add_parser("trade-file", help="a custodian upload file from a batch's orders.csv, by a trade_file.toml")
    tf.add_argument("out_dir", help="a batch OUT_DIR (its orders.csv)")
    tf.add_argument("--template", required=True,
                    help="a trade_file.toml, or a bundled example: " + ", ".join(trade_file_templates()))
    tf.add_argument("--date", help="the trade date (default: today, or the Monday after on a weekend; "
                                   "exchange holidays are not known: give the date on one)")
    tf.add_argument("--out", help="the file to write (default: OUT_DIR/<template name>.csv)")
    tf.add_argument("--include-internal", action="store_true",
                    help="after `batch --cross`: also a line of venue internal for each order's crossed part "
                    "(default: each order's street part only, as allocations.csv gives it)")
    rp = sub.add_parser("report", help="HTML proposals of a result directory or a batch OUT_DIR (and its dashboard)")
    rp.add_argument("out_dir", help="a `run --out` directory (writes report.html) or a batch OUT_DIR "
                    "(writes households/<id>/report.html and dashboard.html)")
    sc = sub.add_parser("scan", help="which households of a batch IN_DIR need a rebalance, ranked, without solving")
    sc.add_argument("in_dir")
    sc.add_argument("--out", help="write the whole ranking as a CSV file")
    sc.add_argument("--idle-cash", type=float, default=0.05, help="cash above its target that counts (default 0.05)")
    sc.add_argument("--harvest", type=float, default=10_000.0,
                    help="unrealized losses in taxable lots that count, currency (default 10,000)")
    sc.add_argument("--min-breach", type=float, default=0.0, help="smallest band breach that counts (default 0)")
    sc.add_argument("--horizon", help="contracts expiring before this date need rolling "
                    "(default: [overlay] horizon, else 30 days after the as-of date)")
    sc.add_argument("--top", type=int, default=25, help="rows to print (default 25)")
    bt = sub.add_parser("backtest", help="carry a case with market data through its history under one or more policies")
    bt.add_argument("case", help="case directory with prices.csv or returns.csv, or a bundled case name")
    bt.add_argument("--out", required=True, help="write comparison.csv and a directory per policy here")
    bt.add_argument("--policy", action="append", default=[], metavar="NAME=FILE",
                    help="a policy to compare (repeatable); default: the case's policy.toml as 'policy'")
    bt.add_argument("--start", help="first date of the window (default: the data's start)")
    bt.add_argument("--end", help="last date of the window (default: the data's end)")
    bt.add_argument("--no-progress", action="store_true", help="no progress bar")
    sw = sub.add_parser("sweep", help="backtest every household of a batch input under every policy (resumable)")
    sw.add_argument("in_dir", help="a batch input directory with prices.csv or returns.csv (optional flows.csv)")
    sw.add_argument("out_dir")
    sw.add_argument("--policy", action="append", default=[], metavar="NAME=FILE",
                    help="a policy to compare (repeatable); default: IN_DIR/policy.toml as 'policy'")
    sw.add_argument("--start", help="first date of the window (default: the data's start)")
    sw.add_argument("--end", help="last date of the window (default: the data's end)")
    _executor_options(sw, "households per task (default: at most 10)")
    sh = sub.add_parser("shock", help="what-if: apply instantaneous returns to a case and rebalance, beside no shock")
    sh.add_argument("case", help="case directory, or a bundled case name")
    sh.add_argument("--shock", action="append", default=[], metavar="NAME=RETURN",
                    help="an asset class, security or contract and its return, e.g. us_equity=-0.34 (repeatable)")
    sh.add_argument("--historical", help="a named historical shock measured on the bundled data: "
                    "2008, 2020-03 (per class; --shock entries override it)")
    sh.add_argument("--apply-to", action="append", default=[], metavar="NAME=CLASS[,CLASS...]",
                    help="apply a historical shock's NAME (us_equity, bonds) to the household's own classes, "
                    "e.g. us_equity=stocks (repeatable)")
    sh.add_argument("--out", help="write comparison.csv and the shocked rebalance's files here")
    sg = sub.add_parser("signals", help="today's tactical signals of a case: values, tilts and the limits that clipped them")
    sg.add_argument("case", help="case directory with [signals.NAME] in policy.toml and market data, or a bundled case")
    sg.add_argument("--date", help="read the signals on this date (default: the policy's as-of date)")
    bench = sub.add_parser("bench", help="time the library against the bare solver on synthetic households")
    bench.add_argument("--households", type=int, default=50)
    bench.add_argument("--securities", type=int, default=100)
    bench.add_argument("--accounts", type=int, default=3)
    bench.add_argument("--lots", type=int, default=500)
    bench.add_argument("--contracts", type=int, default=0)
    bench.add_argument("--batch", type=int, default=0, metavar="N",
                       help="also write N synthetic households to a batch input and time `batch` on them")
    bench.add_argument("--workers", type=int, help="batch worker processes (default: one per core)")
    bench.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args(argv)
    # The QPs are small: BLAS threads only spin a second core (1.6x CPU for the same wall time
    # at 500 securities), and batch workers already use every core. Pin before numpy loads.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")

    handlers = {"batch": _batch, "scan": _scan, "trade-file": _trade_file, "report": _html_report,
                "backtest": _backtest, "sweep": _sweep, "shock": _shock, "signals": _signals}
    if args.command in handlers:
        return handlers[args.command](args)
    if args.command == "bench":
        from cvxrebalance.optimizer.apps.bench import main as bench_main

        return bench_main(args)

    if args.command == "cases":
        width = max(map(len, list_cases()), default=0) + 1
        for name in list_cases():
            print(f"{name:{width}s} {describe_case(name)}")
        return 0
    from cvxrebalance.optimizer.pipeline.rebalance import rebalance
    from cvxrebalance.scenarios.tactical import load_tactical_case

    try:
        # With [signals.NAME] tables, the signals of the as-of date are read from the case's
        # market data and written into the targets first.
        result = rebalance(*load_tactical_case(_case_dir(args.case)))
        if not args.quiet:
            print(result.to_text())
        if args.out:
            out = result.write(args.out)
            written = [*json.loads((out / "summary.json").read_text())["files"], "summary.json"]
            print(f"Wrote {', '.join(written)} in {out}")
    except FAILURES as exc:
        return _report(exc)
    return 0


def _signals(args) -> int:
    from cvxrebalance.scenarios.tactical import case_tactical

    try:
        case = _case_dir(args.case)
        _, policy, tactical = case_tactical(case)
        if tactical is None:
            raise ValueError(f"{case / 'policy.toml'} has no [signals.NAME] table")
        decision = tactical.at(policy.tax.as_of if args.date is None else args.date)
    except FAILURES as exc:
        return _report(exc)
    print(decision.to_text())
    return 0


FAILURES = (CvxRebalanceError, OSError, ValueError)  # what a command reports instead of a traceback


def _report(exc: Exception) -> int:
    """Print a failure and return its exit code (3: the output, 2: anything else).

    A CvxRebalanceError is printed with its name; a missing input file or a bad argument
    (FileNotFoundError, ValueError) as it is; any other OSError happened writing the results."""
    if isinstance(exc, FileNotFoundError | ValueError) and not isinstance(exc, CvxRebalanceError):
        print(f"cvxrebalance: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, OSError) and not isinstance(exc, OutputError):
        exc = OutputError(f"cannot write the results: {exc}")
    print(f"cvxrebalance: {type(exc).__name__}: {exc}", file=sys.stderr)
    return EXIT_OUTPUT if isinstance(exc, OutputError) else 2


def _backtest(args) -> int:
    from cvxrebalance.optimizer.domain.case_io import load_case, read_csv
    from cvxrebalance.optimizer.domain.policy import Policy
    from cvxrebalance.scenarios.backtest_report import comparison_table
    from cvxrebalance.scenarios.backtests import backtest
    from cvxrebalance.scenarios.market import load_market
    from cvxrebalance.scenarios.tactical import load_signals

    try:
        case = _case_dir(args.case)
        household, policy = load_case(case)
        market = load_market(case)
        if market is None:
            raise FileNotFoundError(f"{case} has no prices.csv or returns.csv: nothing to backtest over")
        policies = {}
        for name, file in _policy_specs(args.policy).items():
            # A path, or (not found there) a policy file shipped in the case directory.
            path = Path(file) if Path(file).is_file() or Path(file).is_absolute() else case / file
            if not path.is_file():
                raise FileNotFoundError(f"--policy {name}={file}: no such policy file {file!r} "
                                        f"(here or in {case})")
            policies[name] = Policy.from_toml(path)
        flows = read_csv(case / "flows.csv") if (case / "flows.csv").exists() else None
        result = backtest(household, policies or {"policy": policy}, market, start=args.start, end=args.end,
                          flows=flows, signals=load_signals(case), progress=not args.no_progress)
        result.write(args.out)
    except FAILURES as exc:
        return _report(exc)
    print(comparison_table(result).to_string())
    print(f"Wrote comparison.csv and one directory per policy in {Path(args.out)}")
    return 0


def _shock(args) -> int:
    from cvxrebalance.optimizer.domain.case_io import load_case
    from cvxrebalance.optimizer.domain.output import frame_csv, write_files
    from cvxrebalance.scenarios.shocks import historical, shock

    try:
        household, policy = load_case(_case_dir(args.case))
        shocks = historical(args.historical) if args.historical else {}
        for spec in args.apply_to:  # the measured series under the household's own class names
            name, sep, targets = spec.partition("=")
            if not sep or name not in shocks or not targets.strip(","):
                raise ValueError(f"--apply-to {spec!r}: expected NAME=CLASS[,CLASS...] with NAME one of "
                                 f"{', '.join(shocks) or 'the --historical shock names'}")
            r = shocks.pop(name)
            shocks.update({c.strip(): r for c in targets.split(",") if c.strip()})
        for spec in args.shock:
            name, sep, value = spec.partition("=")
            try:
                if not sep or not name:
                    raise ValueError
                shocks[name] = float(value)
            except ValueError:
                raise ValueError(f"--shock {spec!r}: expected NAME=RETURN, e.g. us_equity=-0.34") from None
        if not shocks:
            raise ValueError("give at least one --shock NAME=RETURN or --historical NAME")
        result = shock(household, shocks, policy)
        table = result.comparison
        if args.out:
            out = result.shocked.write(args.out)
            write_files(out, {"comparison.csv": frame_csv(table.rename_axis("figure").reset_index())})
    except FAILURES as exc:
        return _report(exc)
    print("Shock: " + ", ".join(f"{k} {v:+.2%}" for k, v in shocks.items()))
    # Weights and tracking errors in percent, counts whole, money in currency with cents.
    shown = table.astype(object)
    for row, values in table.iterrows():
        if row.startswith(("before_", "after_", "tracking_error")):
            fmt = "{:.2%}".format if not row.startswith("tracking") else "{:.3%}".format
        elif row == "trades":
            fmt = "{:,.0f}".format
        else:
            fmt = "{:,.2f}".format
        shown.loc[row] = [fmt(v + 0.0) for v in values]
    print(shown.to_string())
    print("Trades after the shock:")
    print(result.shocked.to_text())
    if args.out:
        print(f"Wrote comparison.csv and the shocked rebalance's files in {Path(args.out)}")
    return 0


def _date_option(text: str, option: str):
    """A command-line date (YYYY-MM-DD), or a ValidationError naming the option."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError([Problem(option, None, option, f"not a date (YYYY-MM-DD): {text!r}: {exc}")]) from exc


def _trade_file(args) -> int:
    import datetime as dt

    from cvxrebalance.optimizer.apps.trade_file import (
        cross_note,
        failed_households,
        next_trading_day,
        read_allocations,
        read_orders,
        render,
        upload_lines,
        upload_path,
    )
    from cvxrebalance.optimizer.apps.trade_template import read_template
    from cvxrebalance.optimizer.domain.output import write_files

    try:
        bundled = None if Path(args.template).exists() else trade_file_template(args.template)
        if bundled is None and not Path(args.template).exists():
            raise FileNotFoundError(f"--template {args.template!r}: no such template file, and no bundled example "
                                    f"of that name; bundled: {', '.join(trade_file_templates())}")
        template = read_template(bundled or args.template)
        orders_path = Path(args.out_dir) / "orders.csv"
        if not orders_path.is_file():
            raise FileNotFoundError(f"{orders_path}: no orders.csv (run `cvxrebalance batch` into it first)")
        date = _date_option(args.date, "--date") if args.date else next_trading_day(dt.date.today())
        if date.weekday() >= 5:
            print(f"warning: the trade date {date} is a {date:%A}", file=sys.stderr)
        elif not args.date and date != dt.date.today():
            print(f"note: today is a weekend day: the trade date is {date:%A} {date}", file=sys.stderr)
        out = upload_path(args.out_dir, args.template, args.out)
        failed = failed_households(args.out_dir)
        if failed:
            shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
            print(f"warning: {len(failed)} household{'s' if len(failed) > 1 else ''} failed in the batch "
                  f"(errors.csv: {shown}): their orders are not in this file", file=sys.stderr)
        orders = read_orders(orders_path)
        internal = read_allocations(args.out_dir)
        lots = None
        if template["file"]["lines"] == "lots":  # the specific lots each sell relieves
            lots_path = Path(args.out_dir) / "order_lots.csv"
            if not lots_path.is_file():
                raise FileNotFoundError(f'{lots_path}: no order_lots.csv, which the template\'s lines = "lots" needs')
            lots = read_orders(lots_path)
        lines = upload_lines(orders, template, internal, args.include_internal, lots)
        write_files(out.parent, {out.name: render(lines, template, date)})
    except FAILURES as exc:
        return _report(exc)
    # Counted, not the file's lines: a quoted cell may hold a line break.
    shown = f"{len(orders)} orders" if len(lines) == len(orders) else f"{len(lines)} lines for {len(orders)} orders"
    print(f"Wrote {out} ({shown})")
    if internal is not None:
        print(cross_note(orders, internal, args.include_internal))
    return 0


def _html_report(args) -> int:
    from cvxrebalance.optimizer.apps.report_html import report

    try:
        written = report(args.out_dir)
    except ImportError as exc:  # the report extra is not installed: say how, no traceback
        print(f"cvxrebalance: {exc}", file=sys.stderr)
        return 2
    except FAILURES as exc:
        return _report(exc)
    print(f"Wrote {len(written)} report{'s' if len(written) != 1 else ''}: {written[-1]}")
    return 0


def _scan(args) -> int:
    import pandas as pd

    from cvxrebalance.optimizer.apps.scan import scan
    from cvxrebalance.optimizer.domain.output import frame_csv, write_files

    try:
        horizon = _date_option(args.horizon, "--horizon") if args.horizon else None
        table = scan(_in_dir(args.in_dir), idle_cash=args.idle_cash, harvest=args.harvest, min_breach=args.min_breach,
                     horizon=horizon)
        if args.out:  # one file, written whole then renamed; every cell spreadsheet-safe
            out = Path(args.out)
            write_files(out.parent if str(out.parent) else Path("."), {out.name: frame_csv(table)})
    except FAILURES as exc:
        return _report(exc)
    needed = table[table["needs_rebalance"]]
    print(f"{len(needed)} of {len(table)} households need a rebalance"
          + (": " + ", ".join(f"{n} {r}" for r, n in needed["reason"].value_counts().items()) if len(needed) else ""))
    waiting = table[~table["needs_rebalance"] & (table["reasons"] != "")]
    if len(waiting):
        print(f"{len(waiting)} more with opportunities their policy's trigger does not act on today: "
              + ", ".join(f"{n} {r}" for r, n in waiting["reasons"].str.split("; ").explode().value_counts().items()))
    shown = needed.head(args.top).copy()
    if len(needed) > len(shown) > 0:  # --top 0: the counts alone
        print(f"(the {len(shown)} most urgent; {len(needed) - len(shown)} more with --top or --out)")
    if len(shown):
        for c in ("breach", "transition", "idle_cash"):  # blank: none, or unknown (a household flagged input)
            shown[c] = shown[c].map(lambda x: f"{x:.2%}" if x and pd.notna(x) else "")
        for c in ("value", "restricted", "cash_short", "withdrawal", "contribution", "harvestable"):
            shown[c] = shown[c].map(lambda x: f"{x:,.2f}" if 0 < abs(x) < 1 else f"{x:,.0f}" if x and pd.notna(x) else "")
        shown["expiring"] = shown["expiring"].map(lambda x: f"{x:.0f}" if x and pd.notna(x) else "")
        print(shown.drop(columns=["needs_rebalance"]).to_string(index=False))
    if args.out:
        print(f"Wrote {args.out}")
    return 0


def _batch(args) -> int:
    from cvxrebalance.optimizer.apps.executors import run_batch

    try:
        man = run_batch(_in_dir(args.in_dir), args.out_dir, executor=args.executor, scheduler=args.scheduler,
                        workers=args.workers, chunk_size=args.chunk_size,
                        retry_errors=args.retry_errors, progress=not args.no_progress,
                        only_needed=args.only_needed, cross=args.cross, results_to=args.results_to)
    except CvxRebalanceError as exc:
        return _report(exc)
    c, t = man["counts"], man["timings"]
    rate = t["households_per_second"]
    rows = [("households", c["households"]), *([("not needed (scan)", c["not_needed"])] if args.only_needed else []),
            ("run now", c["run"]), ("succeeded", c["succeeded"]),
            ("failed", c["failed"]), ("skipped (finished before)", c["skipped_finished"]),
            ("in the errors table", c["failed_total"]),
            ("trades", c["trades"]), ("read", f"{t['read_seconds']:.2f} s"),
            ("rebalance", f"{t['run_seconds']:.2f} s" + (f" ({rate:.1f} households/s)" if rate else "")),
            ("combine", f"{t['combine_seconds']:.2f} s"), ("wall", f"{t['wall_seconds']:.2f} s")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    names = ("trades.csv, lots.csv, futures.csv, errors.csv, orders.csv, order_lots.csv, block_trades.csv, "
             "allocations.csv, manifest.json")
    print(f"Wrote {names} in {Path(args.out_dir)}")
    if args.results_to:
        from cvxrebalance.optimizer.apps.database import DESK_TABLES, shown

        print(f"Wrote {', '.join(DESK_TABLES.values())} (batch_id {man['batch_id']}) in {shown(args.results_to)}")
    return 1 if c["failed_total"] else 0


def _policy_specs(specs: list[str]) -> dict[str, str]:
    """``--policy NAME=FILE`` options as name -> file; every malformed or repeated one named."""
    from cvxrebalance.optimizer.domain.errors import Problem, ValidationError

    out: dict[str, str] = {}
    problems = []
    for spec in specs:
        name, sep, file = spec.partition("=")
        if not sep or not name.strip() or not file:
            problems.append(Problem("--policy", None, spec, "expected NAME=FILE"))
        elif name in out:
            problems.append(Problem("--policy", None, name, "the same policy name is given twice"))
        else:
            out[name] = file
    if problems:
        raise ValidationError(problems)
    return out


def _policy_medians(path: Path) -> str:
    """The medians across households of policies.csv, with readable units, for the terminal."""
    import pandas as pd

    from cvxrebalance.optimizer.domain.output import from_spreadsheet_safe

    table = pd.read_csv(path, dtype={"policy": str}, keep_default_na=False, na_values=[""])
    table.index = table["policy"].map(from_spreadsheet_safe).rename("median of")
    out = pd.DataFrame({"households": table["households"]})
    for c in ("final_value", "after_tax_value", "costs", "taxes_paid"):
        out[c] = table[f"{c}_median"].map("{:,.0f}".format)
    for c in ("ann_return", "ann_vol", "max_drawdown", "turnover"):
        out[c] = table[f"{c}_median"].map("{:.2%}".format)
    out["events"] = table["events_median"].map("{:g}".format)
    return out.to_string()


def _sweep(args) -> int:
    from cvxrebalance.optimizer.apps.sweep import run_sweep

    try:
        policies = _policy_specs(args.policy) if args.policy else None
        man = run_sweep(_in_dir(args.in_dir), args.out_dir, policies, start=args.start, end=args.end,
                        executor=args.executor, scheduler=args.scheduler, workers=args.workers,
                        chunk_size=args.chunk_size, retry_errors=args.retry_errors,
                        progress=not args.no_progress)
    except CvxRebalanceError as exc:
        return _report(exc)
    c, t, w = man["counts"], man["timings"], man["window"]
    rate = t["households_per_second"]
    rows = [("households", c["households"]), ("policies", c["policies"]),
            ("window", f"{w['start']} to {w['end']} ({w['periods']} {w['frequency']} periods)"),
            ("run now", c["run"]), ("succeeded", c["succeeded"]), ("failed", c["failed"]),
            ("skipped (finished before)", c["skipped_finished"]), ("in the errors table", c["failed_total"]),
            ("read", f"{t['read_seconds']:.2f} s"),
            ("backtest", f"{t['run_seconds']:.2f} s" + (f" ({rate:.2f} households/s)" if rate else "")),
            ("combine", f"{t['combine_seconds']:.2f} s"), ("wall", f"{t['wall_seconds']:.2f} s")]
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))
    print(_policy_medians(Path(args.out_dir) / "policies.csv"))
    print(f"Wrote comparison.csv, policies.csv, errors.csv, manifest.json in {Path(args.out_dir)}")
    return 1 if c["failed_total"] else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

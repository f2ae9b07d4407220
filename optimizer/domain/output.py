"""Writing result tables: one CSV writer for every file the product writes, with text cells
made safe to open in a spreadsheet, and files that follow the umask."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

# A text cell starting with one of these is a formula to a spreadsheet (OWASP, "CSV injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """A text cell a spreadsheet will show as text: one starting like a formula gets a leading
    single quote (OWASP's rule); other values are unchanged.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("VTI"), spreadsheet_safe(-5.0)
    ("'=HYPERLINK(1)", 'VTI', -5.0)
    """
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def from_spreadsheet_safe(value: Any) -> Any:
    """The text ``spreadsheet_safe`` protected, as it was."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def csv_text(columns: dict[str, Any]) -> str:
    """Columns (arrays or lists of equal length) as CSV text, the one way the product writes CSV:
    as ``DataFrame.to_csv(index=False)`` would (floats by their shortest repr, NaN and None
    empty), with every text cell ``spreadsheet_safe``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([spreadsheet_safe(str(c)) for c in columns])
    cells = [[None if isinstance(v, float) and v != v else spreadsheet_safe(v) for v in _values(c)]
             for c in columns.values()]
    writer.writerows(zip(*cells, strict=True))
    return buf.getvalue()


def frame_csv(df: pd.DataFrame) -> str:
    """A DataFrame (its index left out) as ``csv_text`` writes it, by pandas' writer: text
    columns are made ``spreadsheet_safe`` a column at a time (large combined tables)."""
    out = df.copy()
    out.columns = [spreadsheet_safe(str(c)) for c in df.columns]
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            text = out[c].astype(object)
            risky = text.str.startswith(FORMULA_START).fillna(False).to_numpy(bool)
            if risky.any():
                out[c] = text.where(~risky, "'" + text.astype(str))
    return out.to_csv(index=False, lineterminator="\n")


def _values(column: Any) -> list:
    """Python values of a column (numpy scalars as Python numbers, pandas' NA as None)."""
    if isinstance(column, pd.Series):
        column = column.astype(object).where(column.notna(), None).to_numpy()
    return column.tolist() if hasattr(column, "tolist") else list(column)


def file_mode() -> int:
    """The permissions a new file gets under the process's umask (0666 & ~umask), for files
    written through a temporary name (``tempfile.mkstemp`` creates them 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_files(out_dir: Path, contents: dict[str, str]) -> None:
    """Write ``contents`` (file name -> text) into ``out_dir``, all of them or none: each file is
    first written in full under a temporary name (``.NAME.*.tmp``) and only then are they renamed
    over their final names, in the order given (so the last one, a summary that vouches for the
    others, appears last). A crash leaves at most ``.tmp`` files, which are removed on the way out
    when the process survives the error.

    Raises
    ------
    OSError
        ``out_dir`` cannot be written.
    """
    staged: dict[str, str] = {}
    try:
        for name, text in contents.items():
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=out_dir)
            except OSError as exc:  # name the file asked for, not the temporary one
                raise OSError(exc.errno, f"cannot write {Path(out_dir) / name}: {exc.strerror}") from exc
            staged[name] = tmp
            try:
                f = os.fdopen(fd, "w")
            except BaseException:
                os.close(fd)
                raise
            with f:
                f.write(text)
            os.chmod(tmp, file_mode())  # mkstemp makes 0600; a result file follows the umask
        for name, tmp in staged.items():
            os.replace(tmp, Path(out_dir) / name)
    finally:
        for tmp in staged.values():
            if os.path.exists(tmp):
                os.unlink(tmp)

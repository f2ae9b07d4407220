"""Mutation families of a case directory: the kinds of damage an outsider's campaign found (a
cell replaced by a nasty value, a line with a field too many or too few, a stray byte in another
encoding, a renamed header, a duplicated or dropped line, a policy key set to a bad TOML value).

``mutate(case_dir, rng)`` applies one mutation in place and says what it did. The fuzz test
(``tests/optimizer/domain/test_fuzz_reader.py``) drives it with hypothesis.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

CELLS = ["", " ", "nan", "NaN", "inf", "-inf", "1e300", "-1e300", "1e-300", "-1", "0", "-0", "abc",
         "=1+1", "@SUM(A1)", "+1", "2026-W47-5", "20261120", "2026-02-30", "１２", "1_000", "0x10",
         "true", "None", "NA", "../../x", "a,b", '"', "\t", "12x", "9" * 400, "-10000", "1e15", "1e16"]
TOML_VALUES = ["nan", "inf", "-inf", "-30", "0", "1e300", "-1e300", '"x"', "true", "[]", "{}",
               "2026-11-20", '"2026-W47-5"', "1.5", "-0.5", "100000", "[1, 2]"]
POLICY_KEYS = {
    "objective": ["risk_weight", "cost_weight", "tax_weight", "location_weight", "alpha_weight"],
    "bands": ["rule", "absolute", "relative", "inner", "on"],
    "trigger": ["mode", "rebalance_to"],
    "tax": ["short_term_rate", "long_term_rate", "as_of", "harvest", "loss_value", "gain_budget",
            "allow_short_term_gains", "wash_window_days"],
    "tactical": ["max_tilt"],
    "esg": ["excluded", "min_score"],
    "limits": ["turnover"],
    "solver": ["name"],
}


def _read(path: Path) -> str:
    """A file's text, whatever an earlier mutation did to its bytes (kept byte for byte)."""
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def _write(path: Path, text: str) -> None:
    path.write_bytes(text.encode("utf-8", errors="surrogateescape"))


def mutate(case: Path, rng: random.Random) -> str:
    """Damage one thing in the case directory ``case``; returns a description."""
    files = sorted(p for p in case.glob("*.csv"))
    family = rng.choice(["cell", "cell", "cell", "extra_field", "short_line", "stray_byte",
                         "header", "duplicate_line", "drop_line", "policy", "policy", "bom_utf16"])
    if family == "policy":
        section = rng.choice(sorted(POLICY_KEYS))
        key, value = rng.choice(POLICY_KEYS[section]), rng.choice(TOML_VALUES)
        path = case / "policy.toml"
        text = _read(path) if path.exists() else ""
        text = re.sub(rf"(?m)^{key}\s*=.*$\n?", "", text)  # the key once only
        if f"[{section}]" in text:
            text = text.replace(f"[{section}]", f"[{section}]\n{key} = {value}", 1)
        else:
            text += f"\n[{section}]\n{key} = {value}\n"
        _write(path, text)
        return f"policy {section}.{key} = {value}"
    path = rng.choice(files)
    lines = _read(path).splitlines()
    if family == "bom_utf16":
        path.write_bytes(_read(path).encode("utf-16", errors="surrogatepass"))
        return f"{path.name} as UTF-16"
    if family == "stray_byte":
        data = bytearray(path.read_bytes())
        data.insert(rng.randrange(len(data) + 1), rng.choice([0xE9, 0xFF, 0x80, 0x00]))
        path.write_bytes(bytes(data))
        return f"{path.name}: a stray byte"
    if family == "header":
        cols = lines[0].split(",")
        j = rng.randrange(len(cols))
        cols[j] = rng.choice(["", cols[j].upper(), cols[j] + "s", "extra", cols[(j + 1) % len(cols)]])
        lines[0] = ",".join(cols)
        _write(path, "\n".join(lines) + "\n")
        return f"{path.name}: header {lines[0]!r}"
    if len(lines) < 2:
        return "nothing"
    k = rng.randrange(1, len(lines))
    if family == "cell":
        cells = lines[k].split(",")
        j = rng.randrange(len(cells))
        value = rng.choice(CELLS)
        cells[j] = f'"{value}"' if ("," in value or '"' in value) and value != '"' else value
        lines[k] = ",".join(cells)
        what = f"line {k + 1} field {j + 1} = {value!r}"
    elif family == "extra_field":
        lines[k] += ",EXTRA"
        what = f"line {k + 1} one field too many"
    elif family == "short_line":
        lines[k] = lines[k].rsplit(",", 1)[0]
        what = f"line {k + 1} one field too few"
    elif family == "duplicate_line":
        lines.insert(k, lines[k])
        what = f"line {k + 1} twice"
    else:
        del lines[k]
        what = f"line {k + 1} dropped"
    _write(path, "\n".join(lines) + "\n")
    return f"{path.name}: {what}"

"""A real headless browser for the HTML report tests: Debian's chromium (``.ci/run`` installs it).

``dump_dom`` returns the DOM after the page loaded and rendered; ``screenshot`` a PNG of it.
Tests skip, saying why, only when no chromium is installed.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and Path(p).exists()), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no headless browser: /usr/bin/chromium is not installed "
                                   "(.ci/run installs Debian's chromium with apt-get; none could be installed here)")
# Offline and quiet: no network of its own, no first-run work, no sandbox (CI containers run as root).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars"]


def _chromium(*args: str) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=120, check=True)


def dump_dom(page: Path) -> str:
    """The page's DOM as the browser built it."""
    return _chromium("--dump-dom", page.resolve().as_uri()).stdout


def screenshot(page: Path, png: Path, size: str = "1200,2400") -> Path:
    """A PNG screenshot of the rendered page."""
    _chromium(f"--screenshot={png}", f"--window-size={size}", page.resolve().as_uri())
    return png


class Elements(HTMLParser):
    """Counts of tags, the ids seen, and the body rows of each table with an id."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.ids: set[str] = set()
        self.attrs: list[tuple[str, str]] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        self.attrs += [(k, v or "") for k, v in attrs]
        ident = dict(attrs).get("id")
        if ident:
            self.ids.add(ident)
        if tag == "table":
            self._table = ident
            self.rows.setdefault(ident or "", [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self.rows[self._table or ""].append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[self._table or ""][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def png_is_a_page(png: Path) -> None:
    """The screenshot is not trivial: over 20 KB and not one flat color (pixel variance)."""
    import matplotlib.image as mpimg

    assert png.stat().st_size > 20_000, png.stat().st_size
    pixels = mpimg.imread(png)
    assert pixels.ndim == 3 and pixels.shape[0] > 500
    assert float(pixels[..., :3].std()) > 0.05
    # more than a few colors: the charts' bars and the tables' text
    assert len({tuple(p) for p in (pixels[::7, ::7, :3] * 255).astype(int).reshape(-1, 3).tolist()}) > 20


def painted(png: Path, color: str, tolerance: int = 8) -> tuple[int, int | None]:
    """How many pixels of the screenshot have ``color`` ("#rrggbb", each channel within
    ``tolerance`` of 255), and the first row one is on (None if none): what the browser painted
    of a chart drawn in that color."""
    import matplotlib.image as mpimg
    import numpy as np

    pixels = np.round(mpimg.imread(png)[..., :3] * 255).astype(int)
    rgb = np.array([int(color[k:k + 2], 16) for k in (1, 3, 5)])
    hit = np.abs(pixels - rgb).max(axis=2) <= tolerance
    rows = np.nonzero(hit.any(axis=1))[0]
    return int(hit.sum()), int(rows[0]) if len(rows) else None

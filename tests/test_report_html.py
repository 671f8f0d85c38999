"""``xstilts report`` on a tiny real experiment, its HTML opened in headless Chromium."""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_export import tiny_experiment
from xstilts.cli import app

pytestmark = pytest.mark.slow

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--enable-logging=stderr", "--v=0", "--window-size=1280,2400",
]  # fmt: skip


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        if os.environ.get("CI", "").lower() == "true":
            raise RuntimeError("chromium not installed (CI=true: .ci/run installs it)")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return exe


def _browse(exe: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip


def test_report_files_and_html_in_headless_chromium(data_root: Path, tmp_path: Path) -> None:
    """One tiny real experiment (a chain, its parts, the baseline), reported and rendered."""
    out = tmp_path / "exp"
    options = ["none", "sst2", "qqp", ["sst2", "qqp"]]
    tiny_experiment(data_root, out, ["pawsx", "tatoeba"], options)
    result = CliRunner().invoke(app, ["report", str(out), "--n-boot", "200"])
    assert result.exit_code == 0, result.output
    assert "does sst2→qqp beat sst2?" in result.output
    # No qqp→sst2 and no mixture in this experiment: said, not silently skipped.
    assert "does sst2→qqp beat qqp→sst2 / mix(sst2+qqp)? not run" in result.output
    _check_files(out / "report")
    _check_in_chromium(out / "report", tmp_path)


def _check_files(report_dir: Path) -> None:
    for slug in ("main", "chains", "vs-no-intermediate-task", "lang-pawsx", "lang-tatoeba"):
        assert (report_dir / "tables" / f"{slug}.csv").is_file()
        assert "\\begin{tabular}" in (report_dir / "tables" / f"{slug}.tex").read_text()
    with open(report_dir / "tables" / "main.csv", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["condition", "pawsx", "tatoeba", "avg"]
    assert [r[0] for r in rows[1:]] == ["none", "sst2", "qqp", "sst2→qqp"]
    chains = (report_dir / "tables" / "chains.csv").read_text(encoding="utf-8")
    assert "sst2→qqp vs sst2" in chains and "sst2→qqp vs qqp" in chains
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "## Answer at a glance" in md and "Holm" in md
    for name in ("heatmap", "languages", "curves"):
        assert (report_dir / "plots" / f"{name}.png").stat().st_size > 1000
        assert (report_dir / "plots" / f"{name}.svg").read_text().lstrip().startswith("<?xml")


def _check_in_chromium(report_dir: Path, tmp_path: Path) -> None:
    """A screenshot at 1280 px; the DOM and the layout measured in a 480 px wide window.

    For the measurement a copy of the page gets one script (the report itself has none).
    """
    exe = _chromium()
    page = report_dir / "report.html"
    text = page.read_text(encoding="utf-8")
    # Self-contained: no external resource (offline), images inlined.
    assert not re.search(r'(src|href)="https?://', text)
    shot = tmp_path / "shot.png"
    taken = _browse(exe, page, f"--screenshot={shot}")
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    probe = tmp_path / "probe.html"
    script = (
        "<script>document.title = [document.documentElement.scrollWidth, window.innerWidth,"
        " Math.max(...[...document.querySelectorAll('div.wide')].map("
        "d => d.scrollWidth - d.clientWidth))].join(' ');</script>"
    )
    probe.write_text(text.replace("</body>", script + "</body>"), encoding="utf-8")
    dumped = _browse(exe, probe, "--dump-dom", "--window-size=480,900")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = dumped.stdout
    assert dom.count('<table class="results"') >= 5
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', dom)) == 3
    assert "does sst2→qqp beat sst2?" in dom and "Stage DAG" in dom
    assert '<td class="na">not run</td>' in dom  # the glance row of sst2→qqp vs qqp→sst2
    wrapped = dom.count('<div class="wide"><table class="results"')
    assert wrapped == dom.count('<table class="results"')
    measured = re.search(r"<title>([0-9 ]+)</title>", dom)
    assert measured is not None, dom[:500]
    page_width, window, overflow = map(int, measured.group(1).split())
    assert page_width <= window  # nothing sticks out of the page sideways...
    assert overflow > 0  # ...although a table is wider than the window: it scrolls inside
    console = [ln for ln in (taken.stderr + dumped.stderr).splitlines() if ":CONSOLE" in ln]
    assert console == []  # no errors, and the probe script logs nothing

"""A small, committable copy of a finished experiment from which ``xstilts report`` regenerates.

``xstilts report DIR`` reads ``DIR/results.sqlite`` (scores, stage metrics, evaluation keys) and
``DIR/stages/<stage>/examples/<task>-<key>.json`` (per-example predictions and correctness, for
the paired tests, the MDE and the agreement tables). :func:`snapshot` copies exactly those, no
weights, plus ``metrics.csv`` (every metric row) for readers without SQLite::

    python -m xstilts.reporting.snapshot runs/xstilts_cpu docs/study/xstilts_cpu
    xstilts report docs/study/xstilts_cpu        # -> docs/study/xstilts_cpu/report/
"""

from __future__ import annotations

import csv
import shutil
import sqlite3
import sys
from pathlib import Path

from xstilts.errors import DataError


def snapshot(output_dir: Path, dest: Path) -> list[Path]:
    """Copy the store and the per-example files of ``output_dir`` into ``dest``.

    The store is copied with SQLite's online backup (consistent even while another process
    holds it open); per-example files only of the evaluations the store records as latest.

    Returns:
        Every file written.

    Raises:
        DataError: ``output_dir`` has no ``results.sqlite``.
    """
    src_db = Path(output_dir) / "results.sqlite"
    if not src_db.is_file():
        raise DataError("no results store to snapshot (run the experiment first)", file=src_db)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    db = dest / "results.sqlite"
    tmp = db.with_suffix(".sqlite.tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(src_db) as src, sqlite3.connect(tmp) as out:
        src.backup(out)
    tmp.replace(db)  # never a half-copied store under the real name
    written = [db]
    with sqlite3.connect(db) as conn:
        evals = conn.execute("SELECT stage_id, task, eval_key FROM evaluations").fetchall()
        cur = conn.execute("SELECT * FROM metrics ORDER BY stage_id, task, language, metric")
        header = [d[0] for d in cur.description]
        rows = cur.fetchall()
    stages_src = Path(output_dir) / "stages"
    for stage_id, task, key in evals:
        name = f"{task}-{key}.json"
        src_file = stages_src / stage_id / "examples" / name
        if src_file.is_file():
            target = dest / "stages" / stage_id / "examples" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_file, target)
            written.append(target)
    metrics_csv = dest / "metrics.csv"
    with metrics_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    written.append(metrics_csv)
    return written


if __name__ == "__main__":  # pragma: no cover - the study script's entry point
    if len(sys.argv) != 3:
        sys.exit("usage: python -m xstilts.reporting.snapshot OUTPUT_DIR DEST_DIR")
    files = snapshot(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"snapshot: {len(files)} files in {sys.argv[2]}")

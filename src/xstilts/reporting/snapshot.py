"""A small, committable copy of a finished experiment from which ``xstilts report`` regenerates.

``xstilts report DIR`` reads ``DIR/results.sqlite`` (scores, stage metrics, evaluation keys) and
``DIR/stages/<stage>/examples/<task>-<key>.json[.gz]`` (per-example predictions and correctness, for
the paired tests, the MDE and the agreement tables). :func:`snapshot` copies exactly those, no
weights, plus ``metrics.csv`` (every metric row) for readers without SQLite::

    python -m xstilts.reporting.snapshot runs/xstilts_cpu docs/study/xstilts_cpu \
        [--merge] [--finished-only]
    xstilts report docs/study/xstilts_cpu        # -> docs/study/xstilts_cpu/report/

``--merge`` adds the run's rows to a snapshot already there instead of replacing it: a study
that spans sessions commits its finished seeds, and a later session runs only the seeds still
missing (:mod:`xstilts.pipelines.committed_seeds`) and merges them in. On a conflict the new run
wins; a (stage, task) it evaluated replaces every earlier metric row of that pair.
``--finished-only`` leaves out every seed a stopped run did not finish.
"""

from __future__ import annotations

import csv
import gzip
import json
import sqlite3
import sys
from pathlib import Path

from xstilts.errors import DataError

_MERGE_SQL = """
DELETE FROM metrics WHERE EXISTS (SELECT 1 FROM new.evaluations e
    WHERE e.stage_id = metrics.stage_id AND e.task = metrics.task);
INSERT OR REPLACE INTO experiments SELECT * FROM new.experiments;
INSERT OR REPLACE INTO stages SELECT * FROM new.stages;
INSERT OR REPLACE INTO metrics SELECT * FROM new.metrics;
INSERT OR REPLACE INTO evaluations SELECT * FROM new.evaluations;
DELETE FROM runs WHERE EXISTS (SELECT 1 FROM new.runs r WHERE r.experiment = runs.experiment
    AND r.option = runs.option AND r.target = runs.target AND r.seed = runs.seed);
INSERT INTO runs SELECT experiment, position + 1 + (SELECT COALESCE(MAX(position), -1)
    FROM main.runs m WHERE m.experiment = r.experiment), chain, seed, option, target,
    target_stage_id FROM new.runs r;
"""


def _merge_stores(old: Path, new: Path, out: Path) -> None:
    """Write ``old``'s rows updated with ``new``'s (new wins) to ``out`` (module doc)."""
    with sqlite3.connect(old) as src, sqlite3.connect(out) as conn:
        src.backup(conn)
    conn = sqlite3.connect(out)
    try:
        conn.execute("ATTACH DATABASE ? AS new", (str(new),))
        conn.executescript(f"BEGIN;{_MERGE_SQL}COMMIT;")
        conn.execute("DETACH DATABASE new")
        # The new run's spec lists only the seeds it ran (seeds=[...]): list every seed held.
        for name, spec in conn.execute("SELECT name, spec FROM experiments").fetchall():
            held = [s for (s,) in conn.execute(
                "SELECT seed FROM runs WHERE experiment = ? GROUP BY seed ORDER BY MIN(position)",
                (name,))]  # fmt: skip
            data = json.loads(spec)
            if isinstance(data, dict) and held:
                data["seeds"] = held
                conn.execute("UPDATE experiments SET spec = ? WHERE name = ?",
                             (json.dumps(data), name))  # fmt: skip
        conn.commit()
    finally:
        conn.close()


def unfinished_seeds(conn: sqlite3.Connection) -> list[int]:
    """Seeds with a run whose target stage is not complete or not evaluated on its target."""
    rows = conn.execute(
        "SELECT r.seed FROM runs r LEFT JOIN stages s ON s.stage_id = r.target_stage_id "
        "LEFT JOIN evaluations e ON e.stage_id = r.target_stage_id AND e.task = r.target "
        "WHERE s.status IS NOT 'complete' OR e.stage_id IS NULL GROUP BY r.seed ORDER BY r.seed"
    )
    return [seed for (seed,) in rows]


def _drop_seeds(db: Path, seeds: list[int]) -> None:
    """Remove every row of ``seeds`` (runs, and the stages trained for them) from ``db``."""
    marks = ",".join("?" * len(seeds))
    with sqlite3.connect(db) as conn:
        conn.execute(f"DELETE FROM runs WHERE seed IN ({marks})", seeds)
        ids = f"SELECT stage_id FROM stages WHERE seed IN ({marks})"
        for table in ("metrics", "evaluations"):
            conn.execute(f"DELETE FROM {table} WHERE stage_id IN ({ids})", seeds)
        conn.execute(f"DELETE FROM stages WHERE seed IN ({marks})", seeds)


def snapshot(
    output_dir: Path, dest: Path, *, merge: bool = False, finished_only: bool = False
) -> list[Path]:
    """Copy the store and the per-example files of ``output_dir`` into ``dest``.

    The store is copied with SQLite's online backup (consistent even while another process
    holds it open); per-example files only of the evaluations the store records as latest.
    With ``merge`` and a store already in ``dest``, the two are merged (module doc) and the
    per-example files already there are kept. With ``finished_only``, seeds that have a run
    not yet complete and evaluated (a stopped run) are left out entirely, so a snapshot never
    mixes a seed's finished conditions with its missing ones; a later session runs them again.

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
    if finished_only:
        with sqlite3.connect(tmp) as conn:
            unfinished = unfinished_seeds(conn)
        if unfinished:
            _drop_seeds(tmp, unfinished)
    if merge and db.is_file():
        merged = db.with_suffix(".sqlite.merged")
        merged.unlink(missing_ok=True)
        _merge_stores(db, tmp, merged)
        tmp.unlink()
        tmp = merged
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
            # gzip (mtime 0: the same bytes on every run): PAN-X's token-level files are ~0.8 MB
            # each as JSON and a tenth of that compressed; the report reads either form.
            target = dest / "stages" / stage_id / "examples" / f"{name}.gz"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(gzip.compress(src_file.read_bytes(), mtime=0))
            target.with_suffix("").unlink(missing_ok=True)  # an older uncompressed copy
            written.append(target)
    metrics_csv = dest / "metrics.csv"
    with metrics_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    written.append(metrics_csv)
    return written


if __name__ == "__main__":  # pragma: no cover - the study script's entry point
    flags = {"--merge", "--finished-only"}
    args = [a for a in sys.argv[1:] if a not in flags]
    if len(args) != 2:
        sys.exit("usage: python -m xstilts.reporting.snapshot OUTPUT_DIR DEST_DIR [--merge]"
                 " [--finished-only]")  # fmt: skip
    given = set(sys.argv[1:])
    files = snapshot(Path(args[0]), Path(args[1]), merge="--merge" in given,
                     finished_only="--finished-only" in given)  # fmt: skip
    print(f"snapshot: {len(files)} files in {sys.argv[2]}")

"""``xstilts data fetch`` / ``data check`` against a loopback HTTP server serving ../shared/data.

The server (127.0.0.1, a daemon thread, shut down by the fixture and by a timer) serves files
under their official URL paths (``--mirror`` maps ``https://host/p`` to ``MIRROR/host/p``),
honours ``Range`` and can drop a connection half-way through a file. Published checksums are
replaced by those of the served slices (the real ones are for the full files).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from xstilts.cli import app
from xstilts.datafetch import sources
from xstilts.datafetch.install import INSTALLERS
from xstilts.tasks import get_task
from xstilts.tasks.data import load_examples

SERVER_LIFETIME_S = 120.0
XQUAD = "/github.com/deepmind/xquad/raw/master/xquad.{}.json"
LASER = "/github.com/facebookresearch/LASER/raw/master/data/tatoeba/v1/tatoeba.deu-eng.{}"
SST2 = "/dl.fbaipublicfiles.com/glue/data/SST-2.zip"
PAWSX = "/storage.googleapis.com/paws/pawsx/x-final.tar.gz"


class Mirror:
    """Routes (URL path -> bytes), faults to inject, and a log of requests."""

    def __init__(self) -> None:
        self.routes: dict[str, bytes] = {}
        self.drop_once: set[str] = set()
        self.log: list[tuple[str, str | None]] = []
        self.url = ""

    def checksums(self) -> dict[str, tuple[int, str]]:
        """Published-checksum table for the served bytes (official URL -> size, sha256)."""
        return {
            "https:/" + path: (len(data), hashlib.sha256(data).hexdigest())
            for path, data in self.routes.items()
        }


def _handler(mirror: Mirror) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # a stuck client cannot hold the server

        def log_message(self, *args: Any) -> None:  # keep pytest output clean
            pass

        def do_GET(self) -> None:
            rng = self.headers.get("Range")
            mirror.log.append((self.path, rng))
            data = mirror.routes.get(self.path)
            if data is None:
                self.send_error(404)
                return
            start = int(rng.removeprefix("bytes=").rstrip("-")) if rng else 0
            if rng:
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(data) - start))
            self.end_headers()
            if not rng and self.path in mirror.drop_once:  # the connection dies half-way
                mirror.drop_once.discard(self.path)
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return
            self.wfile.write(data[start:])

    return Handler


@pytest.fixture
def mirror() -> Iterator[Mirror]:
    state = Mirror()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    stopper = threading.Timer(SERVER_LIFETIME_S, server.shutdown)  # stops by itself
    thread.start()
    stopper.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        stopper.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _raw_pawsx(processed: Path) -> bytes:
    """XTREME's processed PAWS-X rows back in the official raw format (header, id column)."""
    rows = list(csv.reader(processed.read_text(encoding="utf-8").split("\n")[:-1],
                           delimiter="\t"))  # fmt: skip
    lines = ["id\tsentence1\tsentence2\tlabel"]
    lines += [f"{i}\t{a}\t{b}\t{y}" for i, (a, b, y) in enumerate(rows, start=1)]
    return ("\n".join(lines) + "\n").encode()


def _serve_slices(mirror: Mirror, data_root: Path) -> None:
    x = data_root / "xtreme"
    for lang in ("en", "de"):
        mirror.routes[XQUAD.format(lang)] = (x / f"xquad/xquad.{lang}.json").read_bytes()
    mirror.routes[LASER.format("deu")] = (x / "tatoeba/de-en.de").read_bytes()
    mirror.routes[LASER.format("eng")] = (x / "tatoeba/de-en.en").read_bytes()
    sst2 = data_root / "english/sst2"
    mirror.routes[SST2] = _zip({f"SST-2/{s}.tsv": (sst2 / f"{s}.tsv").read_bytes()
                                for s in ("train", "dev")})  # fmt: skip
    mirror.routes[PAWSX] = _tar(
        {f"x-final/{lang}/dev_2k.tsv": _raw_pawsx(x / f"pawsx/dev-{lang}.tsv")
         for lang in ("en", "de", "fr")}
    )  # fmt: skip


def _read(root: Path, task: str, split: str, lang: str) -> list[Any]:
    """The examples xstilts reads, without ``origin`` (it names the file and line)."""
    return [dataclasses.replace(e, origin="") for e in load_examples(get_task(task), root, split,
                                                                     lang)]  # fmt: skip


def _fetch(mirror: Mirror, out: Path, *args: str) -> Any:
    cmd = ["data", "fetch", *args, "--to", str(out), "--mirror", mirror.url, "--no-progress"]
    return CliRunner().invoke(app, cmd)


def test_fetch_builds_a_readable_data_dir_resuming_dropped_downloads(
    mirror: Mirror, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_slices(mirror, data_root)
    table = mirror.checksums()
    del table["https:/" + LASER.format("eng")]  # no published checksum: "unverified"
    monkeypatch.setattr(sources, "published_checksums", lambda: table)
    out = tmp_path / "data"
    mirror.drop_once.add(XQUAD.format("en"))
    # An earlier run was killed after 1000 bytes of the German Tatoeba file.
    part = out / ".downloads" / (LASER.format("deu").lstrip("/") + ".part")
    part.parent.mkdir(parents=True)
    part.write_bytes(mirror.routes[LASER.format("deu")][:1000])

    result = _fetch(mirror, out, "xquad", "tatoeba", "sst2", "pawsx", "--languages", "en,de")
    # xquad brings SQuAD (its training set), which this mirror lacks: one error names it, the
    # other data sets are installed all the same.
    assert result.exit_code == 2, result.output
    error = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "squad: HTTP 404" in error[0], result.output
    assert "licence CC BY-SA 4.0" in result.output and "unverified" in result.output
    # The dropped connection resumed where it stopped; the leftover .part resumed at 1000.
    xq = mirror.routes[XQUAD.format("en")]
    assert (XQUAD.format("en"), f"bytes={len(xq) // 2}-") in mirror.log
    assert (LASER.format("deu"), "bytes=1000-") in mirror.log
    for rel in ("xtreme/xquad/xquad.en.json", "xtreme/xquad/xquad.de.json",
                "xtreme/tatoeba/de-en.de", "xtreme/tatoeba/de-en.en"):  # fmt: skip
        assert (out / rel).read_bytes() == (data_root / rel).read_bytes(), rel
    assert not (out / "xtreme/pawsx/dev-fr.tsv").exists()  # --languages en,de
    assert not list(out.rglob("*.part"))

    # What xstilts reads from the fetched folder equals what it reads from the shared data.
    for task, split, lang in (("xquad", "test", "de"), ("pawsx", "dev", "de"),
                              ("sst2", "train", "en"), ("tatoeba", "test", "de")):  # fmt: skip
        assert _read(out, task, split, lang) == _read(data_root, task, split, lang), task
    listing = CliRunner().invoke(app, ["tasks", "--data-dir", str(out)])
    assert listing.exit_code == 0 and "unreadable" not in listing.output

    manifest = json.loads((out / ".xstilts-fetch.json").read_text())
    assert set(manifest["sources"]) == {"xquad", "tatoeba", "sst2", "pawsx"}
    assert [d["verified"] for d in manifest["sources"]["tatoeba"]["downloads"]] == [True, False]
    # A second run checks the installed files and downloads nothing.
    before = len(mirror.log)
    args = ("xquad", "tatoeba", "sst2", "pawsx", "--languages", "en,de", "--no-deps")
    again = _fetch(mirror, out, *args)
    assert again.exit_code == 0, again.output
    assert again.output.count("already installed") == 4 and mirror.log[before:] == []


def test_checksum_mismatch_is_one_clear_error_and_leaves_nothing(
    mirror: Mirror, data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _serve_slices(mirror, data_root)
    table = mirror.checksums()
    url = "https:/" + XQUAD.format("de")
    table[url] = (table[url][0], "0" * 64)
    monkeypatch.setattr(sources, "published_checksums", lambda: table)
    out = tmp_path / "data"
    result = _fetch(mirror, out, "tatoeba", "--languages", "de")
    assert result.exit_code == 0, result.output
    bad = _fetch(mirror, out, "xquad", "--languages", "de", "--no-deps")
    assert bad.exit_code == 2
    error = [line for line in bad.output.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "checksum mismatch" in error[0] and "0" * 64 in error[0]
    assert hashlib.sha256(mirror.routes[XQUAD.format("de")]).hexdigest() in error[0]
    assert not (out / "xtreme/xquad").exists()
    assert not [p for p in (out / ".downloads").rglob("*") if p.is_file() and "xquad" in p.name]
    assert set(json.loads((out / ".xstilts-fetch.json").read_text())["sources"]) == {"tatoeba"}


def test_manual_and_unknown_sources(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["data", "fetch", "ccg", "panx", "--to", str(tmp_path),
                                      "--no-progress"])  # fmt: skip
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "catalog.ldc.upenn.edu/LDC2005T13" in text and "AmazonPhotos.zip" in text
    assert "2 to obtain by hand" in text
    bad = CliRunner().invoke(app, ["data", "fetch", "xnil", "--to", str(tmp_path)])
    assert bad.exit_code == 2 and "xnli" in bad.output  # did you mean


def test_installers_convert_official_formats(data_root: Path, tmp_path: Path) -> None:
    """XNLI's multilingual TSV, TyDiQA's multilingual JSON and BUCC's tar.bz2, built from the
    shared slices in the official layouts, install to files that read back identically."""
    x = data_root / "xtreme"
    header = "language\tgold_label\tsentence1_binary_parse\tsentence1\tsentence2\tpairID"
    lines = [header]
    for lang in ("en", "de"):
        for i, (a, b, y) in enumerate(csv.reader((x / f"xnli/dev-{lang}.tsv").read_text(
                encoding="utf-8").split("\n")[:-1], delimiter="\t")):  # fmt: skip
            lines.append(f"{lang}\t{y}\t( x )\t{a}\t{b}\t{i}")
    xnli = tmp_path / "XNLI-1.0.zip"
    xnli.write_bytes(_zip({"XNLI-1.0/xnli.dev.tsv": ("\n".join(lines) + "\n").encode()}))
    tydi_dev = tmp_path / "tydiqa-goldp-v1.1-dev.json"
    dev = x / "tydiqa/tydiqa-goldp-v1.1-dev"
    articles = []
    for lang in ("en", "ko"):
        articles += json.loads((dev / f"tydiqa.goldp.{lang}.dev.json").read_text())["data"]
    tydi_dev.write_text(json.dumps({"data": articles, "version": "1.1"}))
    bucc = tmp_path / "bucc2018-zh-en.sample-gold.tar.bz2"
    bucc.write_bytes(_tar({f"bucc2018/zh-en/zh-en.sample.{s}": (x / f"bucc2018/zh-en.dev.{s}")
                           .read_bytes() for s in ("zh", "en", "gold")}, "w:bz2"))  # fmt: skip
    root = tmp_path / "root"
    by_name = sources.BY_NAME
    INSTALLERS["xnli"](by_name["xnli"], {"u": xnli}, root, {"de"})
    INSTALLERS["tydiqa"](by_name["tydiqa"], {"https://x/tydiqa-goldp-v1.1-dev.json": tydi_dev},
                         root, {"en", "ko"})  # fmt: skip
    INSTALLERS["extract"](by_name["bucc"], {"u": bucc}, root, {"zh"})
    assert not (root / "xtreme/xnli/dev-en.tsv").exists()  # only the languages asked for
    for task, split, lang in (("xnli", "dev", "de"), ("tydiqa", "dev", "ko"),
                              ("tydiqa", "dev", "en"), ("bucc", "dev", "zh")):  # fmt: skip
        assert _read(root, task, split, lang) == _read(data_root, task, split, lang), task


def test_data_check_reports_present_stand_in_and_missing(data_root: Path, tmp_path: Path) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(
        "name: c\ndata_dir: .\nencoder: {tiny: {hidden_size: 32}, tokenizer: {train_on: [sst2]}}\n"
        "intermediate: [none, squad]\ntargets: [pawsx, bucc]\n"
        "evaluation: {languages: {bucc: [zh, de]}}\n"
    )
    shared = CliRunner().invoke(app, ["data", "check", str(data_root), "--experiment", str(exp)],
                                env={"COLUMNS": "250"})  # fmt: skip
    assert shared.exit_code == 1  # bucc de is asked for and absent
    rows = {tuple(c.strip() for c in line.split("│")[1:4]) for line in shared.output.splitlines()
            if line.count("│") > 6}  # fmt: skip
    assert ("squad", "train", "stand-in") in rows and ("pawsx", "dev", "present") in rows
    assert ("bucc", "dev", "partial") in rows
    empty = tmp_path / "empty"
    empty.mkdir()
    none = CliRunner().invoke(app, ["data", "check", str(empty), "--task", "xnli"],
                              env={"COLUMNS": "250"})  # fmt: skip
    assert none.exit_code == 0 and "xstilts data fetch xnli" in none.output
    assert "missing" in none.output

"""``xstilts data check``: what is present, what is a stand-in, what is missing.

Without an experiment every task and split is listed; with one, only what the experiment reads
(the needs :mod:`xstilts.pipelines.datacheck` enforces before training, all listed at once
instead of stopping at the first): train and model-selection splits of every trained task, the
evaluation split of every target (every language asked for, else at least one), and the text
the tokenizer or MLM objective is built from.

A split is *present* when its catalog files exist, a *stand-in* when only a documented fallback
exists (e.g. SQuAD read from TyDiQA-GoldP English; the file read is named), and *missing*
otherwise (with the fetch command or the manual source). The fetch manifest says where present
files came from: fetched and checked against a published sha256, fetched unverified, or not
fetched by xstilts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.datafetch.fetch import read_manifest
from xstilts.datafetch.sources import sources_for_task
from xstilts.tasks.formats import format_of
from xstilts.tasks.registry import get_task, list_tasks
from xstilts.tasks.spec import TaskSpec


@dataclass(frozen=True)
class Need:
    """One split of one task that an experiment (or the catalog) reads."""

    task: str
    split: str
    languages: tuple[str, ...]  # () = every declared language, at least one present
    why: str


@dataclass(frozen=True)
class SplitStatus:
    """The state of one need on disk."""

    need: Need
    status: str  # present | stand-in | partial | missing
    present: tuple[str, ...]
    missing: tuple[str, ...]
    origin: str
    detail: str

    @property
    def ok(self) -> bool:
        """Whether the need is satisfied (stand-ins included: they are read, with a warning)."""
        return self.status in ("present", "stand-in")


def _trained(spec: TaskSpec, why: str) -> list[Need]:
    splits = dict.fromkeys(s for s in ("train", spec.dev_split) if s in spec.splits)
    return [Need(spec.name, s, (spec.train_language,), why) for s in splits]


def experiment_needs(exp: Any) -> list[Need]:
    """The splits an experiment reads (``exp``: an ExperimentSpec), deduplicated."""
    needs: list[Need] = []
    for option in exp.options:
        for task in option.tasks:
            needs += _trained(get_task(task), f"intermediate {option.label}")
    for target in exp.targets:
        spec = get_task(target)
        if format_of(spec).trainable:
            needs += _trained(spec, f"target {target} (training)")
        wanted = tuple(exp.evaluation["languages"].get(target) or ())
        needs.append(Need(target, spec.eval_split, wanted, f"target {target} (evaluation)"))
    texts = list(exp.encoder.get("tokenizer", {}).get("train_on", []) if "tiny" in exp.encoder
                 else []) + list(exp.mlm.get("texts_from", []))  # fmt: skip
    for name in texts:
        spec = get_task(name)
        split = "train" if "train" in spec.splits else spec.eval_split
        needs.append(Need(name, split, (), "tokenizer/MLM text"))
    return list(dict.fromkeys(needs))


def catalog_needs(tasks: Iterable[str] | None = None) -> list[Need]:
    """Every split of every (or of the given) task."""
    out = []
    for name in tasks or list_tasks():
        spec = get_task(name)
        out += [Need(name, split, (), "catalog") for split in spec.splits]
    return out


def _origin(files: list[Path], data_dir: Path, manifest: dict[str, Any]) -> str:
    """Where the files came from, according to the fetch manifest."""
    by_file: dict[str, dict[str, Any]] = {}
    for entry in manifest.get("sources", {}).values():
        for rel in entry.get("files", {}):
            by_file[rel] = entry
    entries = [by_file.get(str(p.relative_to(data_dir))) if p.is_relative_to(data_dir) else None
               for p in files]  # fmt: skip
    if not entries or any(e is None for e in entries):
        return "not fetched by xstilts"
    verified = all(d["verified"] for e in entries if e for d in e.get("downloads", []))
    return "fetched, sha256 verified" if verified else "fetched, some files unverified"


def check_need(need: Need, data_dir: Path, manifest: dict[str, Any]) -> SplitStatus:
    """Where ``need`` stands under ``data_dir``."""
    spec = get_task(need.task)
    declared = spec.languages(need.split)
    langs = need.languages or declared
    found = {lang: spec.find_files(data_dir, need.split, lang) for lang in langs}
    present = tuple(lang for lang in langs if found[lang])
    missing = tuple(lang for lang in langs if not found[lang])
    files = [p for pairs in found.values() for _, p in pairs]
    stand_in = sorted({str(p.relative_to(data_dir)) for pairs in found.values()
                       for src, p in pairs if src.fallback})  # fmt: skip
    if not present:
        fetchers = [s for s in sources_for_task(need.task)]
        manual = [s.manual for s in fetchers if s.manual]
        detail = manual[0] if manual else (
            f"xstilts data fetch {need.task} --to {data_dir}" if fetchers else
            "; ".join(dict.fromkeys(s.download_hint for s in spec.splits[need.split])))  # fmt: skip
        return SplitStatus(need, "missing", (), missing, "", detail)
    if missing and need.languages:  # asked-for languages must all be there
        status = "partial"
    elif stand_in:
        status = "stand-in"
    else:
        status = "present"
    detail = f"reads stand-in {', '.join(stand_in)}" if stand_in else ""
    if missing and not need.languages:
        detail = (detail + "; " if detail else "") + f"absent: {', '.join(missing)}"
    elif missing:
        detail = f"missing languages: {', '.join(missing)}"
    origin = _origin(files, Path(data_dir), manifest)
    return SplitStatus(need, status, present, missing, origin, detail)


def check_dir(data_dir: Path, needs: Iterable[Need]) -> list[SplitStatus]:
    """Every need's status under ``data_dir``."""
    manifest = read_manifest(Path(data_dir))
    return [check_need(n, Path(data_dir), manifest) for n in needs]

"""Where each data set comes from: official URLs, how to install them, licence notes.

URLs are the ones XTREME's ``scripts/download_data.sh`` uses for the targets (google-research/
xtreme; facts only, none of its code) and the datasets' own published files for the English
tasks. Sources that cannot be downloaded (PAN-X's XTREME split lives on an Amazon Cloud Drive
share; CCGbank is LDC-licensed) carry a ``manual`` note saying where to obtain them.

Each source lists the data-dir prefixes it writes (``provides``): a task needs every source
providing one of its catalog paths, so ``xstilts data fetch xnli`` also fetches MultiNLI (XNLI's
training data) without a second table to keep in sync.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

from xstilts.errors import ConfigError
from xstilts.tasks.catalog import languages as langs
from xstilts.tasks.registry import did_you_mean, get_task, list_tasks


@dataclass(frozen=True)
class Remote:
    """One file to download.

    Attributes:
        url: Official URL.
        dest: For files installed as they are: the path under the data dir ("" = an archive
            or a file that an installer converts).
        lang: The language of a per-language file (``--languages`` filters on it).
    """

    url: str
    dest: str = ""
    lang: str | None = None

    @property
    def sha256(self) -> str | None:
        """The published checksum, or None when none is known ("unverified")."""
        return published_checksums().get(self.url, (None, None))[1]

    @property
    def size(self) -> int | None:
        """The published size in bytes, when known."""
        return published_checksums().get(self.url, (None, None))[0]


@dataclass(frozen=True)
class Source:
    """A data set as published, and how it becomes the layout xstilts reads.

    Attributes:
        name: Source name (a task name where there is one).
        provides: Data-dir path prefixes this source writes.
        remotes: Files to download.
        install: Installer (:mod:`xstilts.datafetch.install`): ``copy``, ``extract``, or a
            converter name.
        extract: For ``extract``: ``(regex on archive member names, destination template)``;
            the template gets the regex groups (``{0}``...) and named groups; a ``lang`` group
            is filtered by the source's languages.
        languages: The languages to install (archives holding more are filtered).
        licence: Licence note printed before downloading.
        cite: What to cite.
        manual: Non-empty when the data cannot be downloaded: how to obtain it.
        note: Anything else a user must know (printed).
    """

    name: str
    provides: tuple[str, ...]
    licence: str
    cite: str
    remotes: tuple[Remote, ...] = ()
    install: str = "copy"
    extract: tuple[tuple[str, str], ...] = ()
    languages: tuple[str, ...] = ()
    manual: str = ""
    note: str = field(default="")

    @property
    def all_languages(self) -> tuple[str, ...]:
        """The declared languages, else those of the per-language remotes (() = no languages)."""
        return self.languages or tuple(dict.fromkeys(r.lang for r in self.remotes if r.lang))


@functools.cache
def published_checksums() -> dict[str, tuple[int, str]]:
    """URL -> (bytes, sha256) from the packaged ``checksums.txt`` (see its header)."""
    text = resources.files("xstilts.datafetch").joinpath("checksums.txt").read_text("utf-8")
    out: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            url, size, digest = line.split()
            out[url] = (int(size), digest)
    return out


_GH = "https://github.com"
_LASER = f"{_GH}/facebookresearch/LASER/raw/master/data/tatoeba/v1"
# XTREME language code -> the ISO 639-3 code of LASER's Tatoeba file names.
TATOEBA_ISO3 = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa",
    "et": "est", "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin",
    "hu": "hun", "id": "ind", "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz",
    "ko": "kor", "ml": "mal", "mr": "mar", "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh",
    "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl", "tr": "tur", "ur": "urd", "vi": "vie",
    "zh": "cmn",
}  # fmt: skip
NON_COMMERCIAL = "NON-COMMERCIAL: research, tests and demos only"


def _tatoeba() -> tuple[Remote, ...]:
    out = []
    for lang in langs.TATOEBA:
        iso = TATOEBA_ISO3[lang]
        # Both sides in LASER's original (aligned) order: line i translates line i, which is
        # what xstilts scores against (XTREME's own copy sorts the English side).
        out.append(Remote(f"{_LASER}/tatoeba.{iso}-eng.{iso}", f"xtreme/tatoeba/{lang}-en.{lang}",
                          lang))  # fmt: skip
        out.append(Remote(f"{_LASER}/tatoeba.{iso}-eng.eng", f"xtreme/tatoeba/{lang}-en.en", lang))
    return tuple(out)


def _bucc() -> tuple[Remote, ...]:
    base = "https://comparable.limsi.fr/bucc2018"
    return tuple(
        Remote(f"{base}/bucc2018-{lang}-en.{kind}-gold.tar.bz2", lang=lang)
        for lang in langs.BUCC
        for kind in ("sample", "training")
    )


SOURCES: tuple[Source, ...] = (
    Source(
        "xnli",
        ("xtreme/xnli/",),
        "CC BY-NC 4.0 (" + NON_COMMERCIAL + ")",
        "Conneau et al., 2018",
        (Remote("https://dl.fbaipublicfiles.com/XNLI/XNLI-1.0.zip"),),
        install="xnli",
        languages=langs.XNLI,
        note="XNLI's labelled dev/test sets; its training data is MultiNLI (source mnli)",
    ),
    Source(
        "pawsx",
        ("xtreme/pawsx/",),
        "free for any purpose; acknowledgement of Google LLC appreciated",
        "Yang et al., 2019",
        (Remote("https://storage.googleapis.com/paws/pawsx/x-final.tar.gz"),),
        install="pawsx",
        languages=langs.PAWSX,
    ),
    Source(
        "udpos",
        ("xtreme/udpos/",),
        "per treebank (see each UD_*/LICENSE.txt; several are CC BY-NC-SA)",
        "Universal Dependencies 2.5 (Zeman et al., 2019)",
        (
            Remote(
                "https://lindat.mff.cuni.cz/repository/xmlui/bitstream/handle/11234/1-3105/"
                "ud-treebanks-v2.5.tgz"
            ),
        ),
        install="extract",
        languages=langs.UDPOS,
        extract=(
            (
                r"(?:^|/)(UD_[A-Za-z_-]+)/((?P<lang>[a-z]+)_[a-z0-9]+-ud-(?:train|dev|test)"
                r"\.conllu)$",
                "xtreme/udpos/{0}/{1}",
            ),
        ),
        note="CoNLL-U as released (UD 2.5, the version XTREME reports); xstilts reads FORM/UPOS",
    ),
    Source(
        "panx",
        ("xtreme/panx/",),
        "no explicit licence (Wikipedia-derived, CC BY-SA text); research use",
        "Pan et al., 2017; Rahimi et al., 2019",
        languages=langs.PANX,
        manual="XTREME's PAN-X split is only on an Amazon Cloud Drive share: download "
        "AmazonPhotos.zip from https://www.amazon.com/clouddrive/share/"
        "d3KGCRCIYwhKJF0H3eWA26hjg2ZCRhjpEQtDL70FSBN by hand, run google-research/xtreme "
        "scripts/download_data.sh (its panx step) and copy download/panx/ to <dir>/xtreme/panx/",
    ),
    Source(
        "xquad",
        ("xtreme/xquad/",),
        "CC BY-SA 4.0",
        "Artetxe et al., 2020",
        tuple(
            Remote(
                f"{_GH}/deepmind/xquad/raw/master/xquad.{lang}.json",
                f"xtreme/xquad/xquad.{lang}.json",
                lang,
            )
            for lang in langs.XQUAD
        ),
        note="the official release, with answers (XTREME's processed copy blanks them)",
    ),
    Source(
        "mlqa",
        ("xtreme/mlqa/",),
        "CC BY-SA 3.0",
        "Lewis et al., 2020",
        (Remote("https://dl.fbaipublicfiles.com/MLQA/MLQA_V1.zip"),),
        install="extract",
        languages=langs.MLQA,
        extract=(
            (
                r"^MLQA_V1/(dev|test)/((dev|test)-context-(?P<lang>[a-z]+)-question-"
                r"(?P=lang)\.json)$",
                "xtreme/mlqa/MLQA_V1/{0}/{1}",
            ),
        ),
    ),
    Source(
        "tydiqa",
        ("xtreme/tydiqa/",),
        "Apache 2.0",
        "Clark et al., 2020",
        (
            Remote("https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-train.json"),
            Remote("https://storage.googleapis.com/tydiqa/v1.1/tydiqa-goldp-v1.1-dev.json"),
        ),
        install="tydiqa",
        languages=langs.TYDIQA,
        note="split per language with full TyDi ids; dev keeps its answers (XTREME strips them)",
    ),
    Source(
        "bucc",
        ("xtreme/bucc2018/",),
        "BUCC 2018 shared-task data; research use",
        "Zweigenbaum et al., 2017/2018",
        _bucc(),
        install="extract",
        languages=langs.BUCC,
        extract=(
            (r"(?:^|/)(?P<lang>[a-z]+)-en\.sample\.([a-z]+)$", "xtreme/bucc2018/{lang}-en.dev.{1}"),
            (
                r"(?:^|/)(?P<lang>[a-z]+)-en\.training\.([a-z]+)$",
                "xtreme/bucc2018/{lang}-en.test.{1}",
            ),
        ),
        note="sample = dev, training = test (XTREME's naming)",
    ),
    Source(
        "tatoeba",
        ("xtreme/tatoeba/",),
        "CC BY 2.0 FR (tatoeba.org)",
        "Artetxe & Schwenk, 2019",
        _tatoeba(),
    ),
    Source(
        "squad",
        ("english/squad/",),
        "CC BY-SA 4.0",
        "Rajpurkar et al., 2016",
        tuple(
            Remote(f"https://rajpurkar.github.io/SQuAD-explorer/dataset/{f}", f"english/squad/{f}")
            for f in ("train-v1.1.json", "dev-v1.1.json")
        ),
    ),
    Source(
        "mnli",
        ("english/mnli/",),
        "OANC-based, mostly free; some fiction CC BY-SA 3.0 (see the MultiNLI page)",
        "Williams et al., 2018",
        (Remote("https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip"),),
        install="extract",
        extract=(
            (
                r"^multinli_1\.0/(multinli_1\.0_(?:train|dev_matched|dev_mismatched)\.jsonl)$",
                "english/mnli/{0}",
            ),
        ),
    ),
    Source(
        "snli",
        ("english/snli/",),
        "CC BY-SA 4.0",
        "Bowman et al., 2015",
        (Remote("https://nlp.stanford.edu/projects/snli/snli_1.0.zip"),),
        install="extract",
        extract=((r"^snli_1\.0/(snli_1\.0_(?:train|dev|test)\.jsonl)$", "english/snli/{0}"),),
    ),
    Source(
        "anli",
        ("english/anli/",),
        "CC BY-NC 4.0 (" + NON_COMMERCIAL + ")",
        "Nie et al., 2020",
        (Remote("https://dl.fbaipublicfiles.com/anli/anli_v1.0.zip"),),
        install="extract",
        extract=((r"^anli_v1\.0/(R[123])/(train|dev|test)\.jsonl$", "english/anli/{0}/{1}.jsonl"),),
    ),
    Source(
        "qqp",
        ("english/qqp/",),
        "Quora terms (" + NON_COMMERCIAL + ")",
        "Iyer et al., 2017; Wang et al., 2019 (GLUE)",
        (Remote("https://dl.fbaipublicfiles.com/glue/data/QQP-clean.zip"),),
        install="extract",
        extract=((r"^QQP/(train|dev)\.tsv$", "english/qqp/{0}.tsv"),),
    ),
    Source(
        "sst2",
        ("english/sst2/",),
        "no explicit licence; research use via GLUE",
        "Socher et al., 2013; Wang et al., 2019 (GLUE)",
        (Remote("https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"),),
        install="extract",
        extract=((r"^SST-2/(train|dev)\.tsv$", "english/sst2/{0}.tsv"),),
    ),
    Source(
        "hellaswag",
        ("english/hellaswag/",),
        "MIT",
        "Zellers et al., 2019",
        tuple(
            Remote(f"{_GH}/rowanz/hellaswag/raw/master/data/{f}", f"english/hellaswag/{f}")
            for f in ("hellaswag_train.jsonl", "hellaswag_val.jsonl")
        ),
    ),
    Source(
        "commonsenseqa",
        ("english/commonsenseqa/",),
        "MIT",
        "Talmor et al., 2019",
        tuple(
            Remote(f"https://s3.amazonaws.com/commensenseqa/{f}", f"english/commonsenseqa/{f}")
            for f in ("train_rand_split.jsonl", "dev_rand_split.jsonl")
        ),
    ),
    Source(
        "cosmosqa",
        ("english/cosmosqa/",),
        "CC BY 4.0",
        "Huang et al., 2019",
        tuple(
            Remote(f"{_GH}/wilburOne/cosmosqa/raw/master/data/{f}", f"english/cosmosqa/{f}")
            for f in ("train.csv", "valid.csv")
        ),
    ),
    Source(
        "ccg",
        ("english/ccgbank/",),
        "LDC User Agreement (LDC2005T13), not redistributable",
        "Hockenmaier & Steedman, 2007",
        manual="CCGbank is licensed by the LDC: obtain LDC2005T13 from "
        "https://catalog.ldc.upenn.edu/LDC2005T13 and copy its data/AUTO/ folders to "
        "<dir>/english/ccgbank/data/AUTO/",
    ),
)
BY_NAME = {s.name: s for s in SOURCES}


def sources_for_task(task: str) -> list[Source]:
    """The sources providing a file of any split of ``task`` (catalog paths, tier 0 only).

    Stand-in tiers are left out: ``squad`` needs SQuAD, not the TyDiQA file it falls back to.
    """
    patterns = [src.pattern for split in get_task(task).splits.values() for src in split
                if src.fallback == 0 and src.pattern]  # fmt: skip
    return [s for s in SOURCES if any(p.startswith(s.provides) for p in patterns)]


def resolve(names: list[str] | tuple[str, ...], *, deps: bool = True) -> list[Source]:
    """Task or source names -> the sources to fetch (deduplicated, table order).

    Args:
        names: Task names (a task brings every source its catalog paths read, e.g. ``xnli``
            brings MultiNLI) or source names.
        deps: False: a name that is a source fetches only that source.

    Raises:
        ConfigError: an unknown name (with a did-you-mean hint).
    """
    wanted: set[str] = set()
    tasks = set(list_tasks())
    for i, name in enumerate(names):
        if name in BY_NAME and (not deps or name not in tasks):
            wanted.add(name)
        elif name in tasks:
            wanted.update(s.name for s in sources_for_task(name))
        else:
            raise ConfigError(
                f"unknown task or data set {name!r}",
                key=f"TASKS.{i}",
                hint=did_you_mean(name, sorted(tasks | set(BY_NAME))),
            )
    return [s for s in SOURCES if s.name in wanted]

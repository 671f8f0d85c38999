"""A small SYNTHETIC data set for the README demo, in the official file formats and XTREME layout.

The demo (``configs/demo.yaml``) reads the shared real data when it exists. Where it does not,
``xstilts demo-data --out DIR`` writes this stand-in: the same paths and formats the catalog
reads (MultiNLI jsonl, XTREME's XNLI/PAWS-X/PAN-X TSVs, SQuAD-v1.1 JSON for TyDiQA-GoldP and
MLQA, LASER-order Tatoeba, BUCC id/gold files), generated from the hand-written templates of
:mod:`xstilts.demo.lexicon`. No real corpus text is involved, so the files can be shipped
freely. Every file is seeded by ``(seed, task, language)``: the same seed gives the same bytes.

Facts are ``(person, relation, object)`` triples rendered through per-language templates, which
makes the tasks learnable-ish: NLI labels follow paraphrase / negation / other-relation patterns,
PAN-X tags the name slots, QA answers are the object slot at its exact character offset, and
Tatoeba/BUCC pairs are the same fact rendered in two languages.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xstilts.demo import lexicon as lex
from xstilts.errors import DataError

TASK_LANGUAGES: dict[str, tuple[str, ...]] = {
    "pawsx": ("en", "de", "fr", "es", "zh"),
    "xnli": ("en", "de", "fr", "es", "ru", "zh", "sw"),
    "panx": ("en", "de", "fr", "es", "ru", "zh", "fi", "sw"),
    "tydiqa": ("en", "ru", "fi", "sw"),
    "mlqa": ("en", "de", "es", "zh"),
    "tatoeba": ("de", "fr", "es", "ru", "zh", "fi", "sw"),
    "bucc": ("de", "fr", "ru", "zh"),
}
"""Evaluation languages written per target (a subset of the catalog's XTREME lists)."""

TRAIN_SIZE = 400  # examples per train file (the demo's max_train_examples)
DEV_SIZE = 100  # English dev files used for model selection
EVAL_SIZE = 50  # examples per evaluation language
BUCC_GOLD, BUCC_SRC_ONLY, BUCC_EN_ONLY = 40, 20, 40
_TYDI_NAMES = {"en": "english", "ru": "russian", "fi": "finnish", "sw": "swahili"}
_NO_SPACE_BEFORE = frozenset({".", ",", "?", "!", "。", "？", "，"})
_NO_SPACE_AFTER = frozenset({"¿"})
_NLI_LABELS = ("entailment", "neutral", "contradiction")

Fact = tuple[tuple[int, int], str, int]
"""``((first-name index, last-name index), relation, object index)``."""
Pair = tuple[Fact, int, Fact, int, str]
"""``(fact a, template form of a, fact b, form of b, raw label)`` of a sentence-pair example."""
_FORMS = (lex.FACT, lex.PARAPHRASE, lex.NEGATION)  # statement forms (not the question)


@dataclass(frozen=True)
class Rendered:
    """One rendered sentence: its text, tokens with PAN-X tags, and the object's char span."""

    text: str
    tokens: tuple[str, ...]
    tags: tuple[str, ...]
    object_span: tuple[int, int]  # [start, end) of the {O} slot in ``text``


def _person_tokens(person: tuple[int, int], lang: str) -> list[str]:
    first, last = lex.FIRST_NAMES[person[0]][lang], lex.LAST_NAMES[person[1]][lang]
    joiner = lex.NAME_JOINER.get(lang)
    return [first, joiner, last] if joiner else [first, last]


def _object_tokens(relation: str, obj: int, lang: str) -> list[str]:
    pool = lex.OBJECTS[lex.RELATIONS[relation][0]]
    return pool[obj][lang].split(" ")


def _entity_tags(tokens: list[str], kind: str | None) -> list[str]:
    if kind is None:
        return ["O"] * len(tokens)
    return [f"B-{kind}"] + [f"I-{kind}"] * (len(tokens) - 1)


def render(fact: Fact, form: int, lang: str) -> Rendered:
    """``fact`` in ``lang`` through template ``form`` (``lexicon.FACT`` ... ``QUESTION``).

    Tokens are joined with single spaces (none before punctuation, none at all for Chinese), and
    the character offsets of the object slot are tracked while joining, so QA answers are exact.
    """
    person, relation, obj = fact
    template = lex.TEMPLATES[relation][lang][form].split(" ")
    tokens: list[str] = []
    tags: list[str] = []
    slot_of: list[str] = []  # which slot each token came from ("" = template word)
    for word in template:
        if word == "{P}":
            part = _person_tokens(person, lang)
            tokens += part
            tags += _entity_tags(part, "PER")
            slot_of += ["P"] * len(part)
        elif word == "{O}":
            part = _object_tokens(relation, obj, lang)
            tokens += part
            tags += _entity_tags(part, lex.RELATIONS[relation][1])
            slot_of += ["O"] * len(part)
        else:
            tokens.append(word)
            tags.append("O")
            slot_of.append("")
    text, starts = "", []
    for i, token in enumerate(tokens):
        spaced = (
            i > 0
            and lang not in lex.UNSPACED
            and token not in _NO_SPACE_BEFORE
            and tokens[i - 1] not in _NO_SPACE_AFTER
        )
        text += " " if spaced else ""
        starts.append(len(text))
        text += token
    in_obj = [i for i, s in enumerate(slot_of) if s == "O"]
    span = (starts[in_obj[0]], starts[in_obj[-1]] + len(tokens[in_obj[-1]])) if in_obj else (0, 0)
    return Rendered(text, tuple(tokens), tuple(tags), span)


def _rng(seed: int, *parts: str) -> random.Random:
    # A string seed is hashed (sha512) by `random`, so it is stable across runs and platforms.
    return random.Random("/".join([str(seed), *parts]))


def random_fact(rng: random.Random, relation: str | None = None) -> Fact:
    """A random ``(person, relation, object)`` triple."""
    rel = relation or rng.choice(sorted(lex.RELATIONS))
    pool = lex.OBJECTS[lex.RELATIONS[rel][0]]
    person = (rng.randrange(len(lex.FIRST_NAMES)), rng.randrange(len(lex.LAST_NAMES)))
    return person, rel, rng.randrange(len(pool))


def _other_object(rng: random.Random, fact: Fact) -> Fact:
    pool = lex.OBJECTS[lex.RELATIONS[fact[1]][0]]
    return fact[0], fact[1], (fact[2] + rng.randrange(1, len(pool))) % len(pool)


def nli_pair(rng: random.Random) -> Pair:
    """``(premise fact, form, hypothesis fact, form, label)``.

    entailment = the same fact paraphrased; contradiction = its negation; neutral = another
    relation of the same person (the premise says nothing about it).
    """
    fact = random_fact(rng)
    label = rng.choice(_NLI_LABELS)
    first = rng.choice((lex.FACT, lex.PARAPHRASE))
    if label == "entailment":
        return fact, first, fact, lex.PARAPHRASE + lex.FACT - first, label
    if label == "contradiction":
        if rng.random() < 0.5:
            return fact, first, fact, lex.NEGATION, label
        return fact, lex.NEGATION, fact, first, label
    other = random_fact(rng, rng.choice([r for r in sorted(lex.RELATIONS) if r != fact[1]]))
    return fact, first, (fact[0], other[1], other[2]), rng.choice((lex.FACT, lex.PARAPHRASE)), label


def paws_pair(rng: random.Random) -> Pair:
    """A PAWS-like pair: ``1`` = the fact paraphrased, ``0`` = one entity swapped (high overlap)."""
    fact = random_fact(rng)
    if rng.random() < 0.5:
        other, label = fact, "1"
    elif rng.random() < 0.5:
        other, label = _other_object(rng, fact), "0"
    else:
        first = (fact[0][0] + rng.randrange(1, len(lex.FIRST_NAMES))) % len(lex.FIRST_NAMES)
        other, label = ((first, fact[0][1]), fact[1], fact[2]), "0"
    forms = [lex.FACT, lex.PARAPHRASE]
    rng.shuffle(forms)
    return fact, forms[0], other, forms[1], label


def _pair_rows(
    make: Callable[[random.Random], Pair], rng: random.Random, n: int, lang: str
) -> Iterator[tuple[str, str, str]]:
    """``(text_a, text_b, label)`` rows of ``n`` pairs from ``make`` rendered in ``lang``."""
    for _ in range(n):
        a, fa, b, fb, label = make(rng)
        yield render(a, fa, lang).text, render(b, fb, lang).text, label


def _tsv(rows: Iterable[Iterable[str]]) -> str:
    return "".join("\t".join(row) + "\n" for row in rows)


def mnli_jsonl(seed: int, split: str, n: int) -> str:
    """MultiNLI 1.0 jsonl (``gold_label``, ``sentence1``, ``sentence2`` and the id fields)."""
    rng = _rng(seed, "mnli", split)
    lines = []
    for i, (premise, hypothesis, label) in enumerate(_pair_rows(nli_pair, rng, n, "en")):
        record = {
            "annotator_labels": [label], "genre": "fiction", "gold_label": label,
            "pairID": f"{i}{label[0]}", "promptID": str(i),
            "sentence1": premise, "sentence2": hypothesis,
        }  # fmt: skip
        lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    return "".join(lines)


def panx_tsv(seed: int, split: str, lang: str, n: int) -> str:
    """XTREME PAN-X: ``token<TAB>tag`` lines, a blank line between sentences (none at the end)."""
    rng = _rng(seed, "panx", split, lang)
    sentences = []
    for _ in range(n):
        parts = [render(random_fact(rng), rng.choice(_FORMS), lang)]
        if rng.random() < 0.3:  # some two-sentence examples, for varied lengths
            parts.append(render(random_fact(rng), rng.choice(_FORMS), lang))
        rows = [(t, g) for part in parts for t, g in zip(part.tokens, part.tags, strict=True)]
        sentences.append(_tsv(rows))
    return "\n".join(sentences)


def _qa_paragraph(rng: random.Random, lang: str, qa_id: Callable[[], str]) -> dict[str, Any]:
    """A context of 3-4 facts about two people and two questions answered by object spans."""
    people = [random_fact(rng)[0]]
    while len(people) < 2:  # two distinct people: every (person, relation) is asked once
        person = random_fact(rng)[0]
        if person != people[0]:
            people.append(person)
    keys = [(p, r) for p in people for r in sorted(lex.RELATIONS)]
    rng.shuffle(keys)
    facts = [(p, rel, random_fact(rng, rel)[2]) for p, rel in keys[: rng.randint(3, 4)]]
    sep = "" if lang in lex.UNSPACED else " "
    context, spans = "", []
    for fact in facts:
        sentence = render(fact, rng.choice((lex.FACT, lex.PARAPHRASE)), lang)
        offset = len(context) + (len(sep) if context else 0)
        context += (sep if context else "") + sentence.text
        spans.append((offset + sentence.object_span[0], offset + sentence.object_span[1]))
    qas = []
    for i in rng.sample(range(len(facts)), 2):
        start, end = spans[i]
        qas.append(
            {
                "answers": [{"answer_start": start, "text": context[start:end]}],
                "question": render(facts[i], lex.QUESTION, lang).text,
                "id": qa_id(),
            }
        )
    return {"context": context, "qas": qas}


def squad_json(seed: int, name: str, lang: str, n_qas: int, id_style: str) -> str:
    """SQuAD-v1.1 JSON with ``n_qas`` questions (two per paragraph, five paragraphs per article).

    ``tydi-dev`` files are unlabelled, as XTREME distributes TyDiQA-GoldP dev.

    ``id_style``: ``"tydi-train"`` (XTREME's bare numeric train ids), ``"tydi-dev"``
    (``{language}--{number}-{i}``, as the reader's language check expects) or ``"mlqa"`` (hex).
    """
    rng = _rng(seed, name, lang)
    counter = iter(range(10**9))

    def qa_id() -> str:
        i = next(counter)
        if id_style == "tydi-train":
            return str(i)
        if id_style == "tydi-dev":
            return f"{_TYDI_NAMES[lang]}--{1000 + i // 2}-{i % 2}"
        return hashlib.sha1(f"{name}-{lang}-{i}".encode()).hexdigest()

    paragraphs = [_qa_paragraph(rng, lang, qa_id) for _ in range(n_qas // 2)]
    if id_style == "tydi-dev":
        # XTREME's download strips TyDiQA-GoldP dev answers (it is XTREME's test set); the
        # placeholder below is what its files hold, so the demo meets the real situation.
        for qa in (qa for p in paragraphs for qa in p["qas"]):
            qa["answers"] = [{"answer_start": 0, "text": ""}]
    articles = [
        {"title": f"Synthetic article {k // 5 + 1}", "paragraphs": paragraphs[k : k + 5]}
        for k in range(0, len(paragraphs), 5)
    ]
    return json.dumps({"data": articles, "version": "1.1"})


def _parallel(
    rng: random.Random, lang: str, n: int, seen: set[tuple[Fact, int]]
) -> list[tuple[str, str]]:
    """``n`` distinct (fact, form) pairs (not in ``seen``) rendered in ``lang`` and English."""
    out: list[tuple[str, str]] = []
    while len(out) < n:
        key = (random_fact(rng), rng.choice(_FORMS))
        if key in seen:
            continue
        seen.add(key)
        out.append((render(*key, lang).text, render(*key, "en").text))
    return out


def tatoeba_files(seed: int, lang: str, n: int) -> tuple[str, str]:
    """``({xx}-en.{xx}, {xx}-en.en)`` aligned line by line (LASER's order, never sorted)."""
    pairs = _parallel(_rng(seed, "tatoeba", lang), lang, n, set())
    if [en for _, en in pairs] == sorted(en for _, en in pairs):
        pairs.reverse()  # the reader refuses a sorted English side
    return "".join(x + "\n" for x, _ in pairs), "".join(e + "\n" for _, e in pairs)


def bucc_files(seed: int, lang: str) -> tuple[str, str, str]:
    """``({xx}-en.dev.{xx}, .en, .gold)``: gold translation pairs among unpaired distractors."""
    rng = _rng(seed, "bucc", lang)
    seen: set[tuple[Fact, int]] = set()
    gold = _parallel(rng, lang, BUCC_GOLD, seen)
    src: list[tuple[str, int | None]] = [(x, i) for i, (x, _) in enumerate(gold)]
    src += [(x, None) for x, _ in _parallel(rng, lang, BUCC_SRC_ONLY, seen)]
    tgt: list[tuple[str, int | None]] = [(e, i) for i, (_, e) in enumerate(gold)]
    tgt += [(e, None) for _, e in _parallel(rng, lang, BUCC_EN_ONLY, seen)]
    rng.shuffle(src)
    rng.shuffle(tgt)
    src_id = {pair: f"{lang}-{k + 1:09d}" for k, (_, pair) in enumerate(src) if pair is not None}
    tgt_id = {pair: f"en-{k + 1:09d}" for k, (_, pair) in enumerate(tgt) if pair is not None}
    return (
        _tsv((f"{lang}-{k + 1:09d}", text) for k, (text, _) in enumerate(src)),
        _tsv((f"en-{k + 1:09d}", text) for k, (text, _) in enumerate(tgt)),
        _tsv(sorted((src_id[i], tgt_id[i]) for i in range(BUCC_GOLD))),
    )


def demo_files(seed: int = 0) -> dict[str, str]:
    """Relative path -> file text for every file of the demo data set (deterministic)."""
    files: dict[str, str] = {
        "english/mnli/multinli_1.0_train.jsonl": mnli_jsonl(seed, "train", TRAIN_SIZE),
        "english/mnli/multinli_1.0_dev_matched.jsonl": mnli_jsonl(seed, "dev", DEV_SIZE),
        "xtreme/pawsx/train-en.tsv": _tsv(
            _pair_rows(paws_pair, _rng(seed, "pawsx", "train"), TRAIN_SIZE, "en")
        ),
        "xtreme/panx/train-en.tsv": panx_tsv(seed, "train", "en", TRAIN_SIZE),
        "xtreme/tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json": squad_json(
            seed, "tydiqa-train", "en", TRAIN_SIZE, "tydi-train"
        ),
    }
    # XNLI and PAWS-X dev sets are translations of one another: one rng seed for all languages.
    for lang in TASK_LANGUAGES["xnli"]:
        rows = _pair_rows(nli_pair, _rng(seed, "xnli", "dev"), EVAL_SIZE, lang)
        files[f"xtreme/xnli/dev-{lang}.tsv"] = _tsv(rows)
    for lang in TASK_LANGUAGES["pawsx"]:
        rows = _pair_rows(paws_pair, _rng(seed, "pawsx", "dev"), EVAL_SIZE, lang)
        files[f"xtreme/pawsx/dev-{lang}.tsv"] = _tsv(rows)
    for lang in TASK_LANGUAGES["panx"]:
        files[f"xtreme/panx/dev-{lang}.tsv"] = panx_tsv(seed, "dev", lang, EVAL_SIZE)
    for lang in TASK_LANGUAGES["tydiqa"]:
        path = f"xtreme/tydiqa/tydiqa-goldp-v1.1-dev/tydiqa.goldp.{lang}.dev.json"
        files[path] = squad_json(seed, "tydiqa-dev", lang, EVAL_SIZE, "tydi-dev")
    for lang in TASK_LANGUAGES["mlqa"]:
        path = f"xtreme/mlqa/MLQA_V1/dev/dev-context-{lang}-question-{lang}.json"
        size = DEV_SIZE if lang == "en" else EVAL_SIZE  # MLQA-en dev also selects SQuAD models
        files[path] = squad_json(seed, "mlqa-dev", lang, size, "mlqa")
    for lang in TASK_LANGUAGES["tatoeba"]:
        src, en = tatoeba_files(seed, lang, EVAL_SIZE)
        files[f"xtreme/tatoeba/{lang}-en.{lang}"] = src
        files[f"xtreme/tatoeba/{lang}-en.en"] = en
    for lang in TASK_LANGUAGES["bucc"]:
        src, en, gold = bucc_files(seed, lang)
        for suffix, text in ((lang, src), ("en", en), ("gold", gold)):
            files[f"xtreme/bucc2018/{lang}-en.dev.{suffix}"] = text
    return files


README = """\
# Synthetic xstilts demo data (NOT real data)

Written by `xstilts demo-data` (seed {seed}) from hand-written templates in
`xstilts.demo.lexicon`, in the official file formats and XTREME download layout. Numbers on it
only show that the pipeline runs; they say nothing about cross-lingual transfer.
"""


def write_demo_data(out: Path, seed: int = 0) -> list[Path]:
    """Write the synthetic demo data set under ``out`` (created; existing files overwritten).

    Args:
        out: Data root to write (it gets ``english/`` and ``xtreme/`` like the shared data).
        seed: Generation seed; the same seed always gives byte-identical files.

    Returns:
        The written data files (absolute paths, sorted), not counting ``README.md``.

    Raises:
        DataError: If ``out`` exists and is not a directory.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a directory", file=out, hint="pass a directory")
    written = []
    for rel, text in sorted(demo_files(seed).items()):
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))  # bytes: no platform newline translation
        written.append(path)
    (out / "README.md").write_bytes(README.format(seed=seed).encode("utf-8"))
    return written

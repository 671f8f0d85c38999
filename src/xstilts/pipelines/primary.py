"""``report.primary``: the comparisons an experiment declares as *its question*.

A study asks one thing (issue 16: does MNLI→QA beat MNLI, and does it beat QA, on XNLI?), but
its report tests dozens of cells: every condition against ``none``, every chain against its
singles, its reverse and the mixture, per target and on average. Holm over such a table is
right for exploring, and it makes the smallest detectable effect of the question itself large
(α/40 instead of α/2). Declaring the question in the experiment file, before results, gives it
a Holm family of its own; the report tests and sizes it first (``Δ primary``) and labels every
other table exploratory. This is the pre-registration a careful reader expects.

YAML::

    report:
      primary:
        - {a: mnli→squad, b: mnli, target: xnli}     # "->" works for "→"; target: a task or avg
        - {a: mnli→squad, b: squad, target: xnli}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.experiment_spec import ARROW, Primary, check_keys
from xstilts.tasks.registry import did_you_mean

REPORT_KEYS = ("primary",)
PRIMARY_KEYS = ("a", "b", "target")
AVG = "avg"  # the report's column of the mean over targets (reporting.deltas uses this one)


def parse_report(raw: Any, labels: Sequence[str], targets: Sequence[str]) -> tuple[Primary, ...]:
    """Validate the ``report`` section against the experiment's conditions and targets.

    Args:
        raw: The ``report`` mapping (``None``: no section).
        labels: Condition labels (``none``, ``mnli``, ``mnli→squad``, ``mix(mnli+squad)``).
        targets: Target task names; ``avg`` (their mean) is allowed with two or more.

    Returns:
        The declared comparisons, in file order.

    Raises:
        ConfigError: naming the ``report.primary.<i>.<key>`` at fault and what is wrong.
    """
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping (report: {primary: [...]})", key="report")
    check_keys(raw, REPORT_KEYS, "report")
    entries = raw.get("primary") or []
    if not isinstance(entries, list):
        raise ConfigError("must be a list of {a, b, target}", key="report.primary")
    columns = [*targets, AVG] if len(targets) > 1 else list(targets)
    out: list[Primary] = []
    for i, entry in enumerate(entries):
        where = f"report.primary.{i}"
        if not isinstance(entry, Mapping):
            raise ConfigError("must be a mapping {a, b, target}", key=where)
        check_keys(entry, PRIMARY_KEYS, where)
        missing = [k for k in PRIMARY_KEYS if k not in entry]
        if missing:
            raise ConfigError(f"missing {', '.join(missing)}", key=where,
                              hint="e.g. {a: mnli→squad, b: mnli, target: xnli}")  # fmt: skip
        a, b = (_label(entry[k], labels, f"{where}.{k}") for k in ("a", "b"))
        if a == b:
            raise ConfigError(f"compares {a} with itself", key=f"{where}.b")
        target = entry["target"]
        if target not in columns:
            hint = did_you_mean(str(target), columns)
            raise ConfigError(f"target {target!r} is not a column of this report",
                              key=f"{where}.target", hint=hint)  # fmt: skip
        item = Primary(a, b, str(target))
        if item in out:
            raise ConfigError(f"{item.name} on {target} is declared twice", key=where)
        out.append(item)
    return tuple(out)


def _label(value: Any, labels: Sequence[str], key: str) -> str:
    """A condition label as the report prints it (``->`` accepted for ``→``)."""
    if not isinstance(value, str) or not value:
        raise ConfigError("must be a condition label, e.g. mnli→squad", key=key)
    label = value.replace("->", ARROW).replace(" ", "")
    if label not in labels:
        raise ConfigError(f"{value!r} is not a condition of this experiment", key=key,
                          hint=did_you_mean(label, list(labels)))  # fmt: skip
    return label

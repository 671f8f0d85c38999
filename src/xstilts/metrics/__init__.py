"""Metrics equal to the official XTREME/SQuAD/MLQA/seqeval scorers, all in percent."""

from xstilts.metrics.classification import accuracy
from xstilts.metrics.mlqa import mlqa_scores
from xstilts.metrics.retrieval import (
    bucc_f1,
    margin_scores,
    mine_bucc_pairs,
    tatoeba_accuracy,
)
from xstilts.metrics.seqeval import entity_scores, get_entities
from xstilts.metrics.squad import exact_match, f1, normalize_answer, squad_scores
from xstilts.metrics.xtreme_score import XTREME_TASKS, task_score, xtreme_score

__all__ = [
    "XTREME_TASKS",
    "accuracy",
    "bucc_f1",
    "entity_scores",
    "exact_match",
    "f1",
    "get_entities",
    "margin_scores",
    "mine_bucc_pairs",
    "mlqa_scores",
    "normalize_answer",
    "squad_scores",
    "task_score",
    "tatoeba_accuracy",
    "xtreme_score",
]

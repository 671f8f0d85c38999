"""Which ready stage a parallel executor starts next.

Starting every ready stage in plan order runs the grid breadth-first: every seed's intermediate
stages before any seed's targets. Two things go wrong with that. A long grid stopped part-way
(a session ends) leaves many half-used intermediates and few finished seeds; and the last stage
to become ready is often a long one (a chain's target), which then runs alone while the other
workers idle. So a free worker takes, among the ready stages:

1. the earliest seed (in the experiment's ``seeds`` order): whole seeds finish first, so a
   stopped study has complete paired seeds to report;
2. within a seed, the stage with the longest remaining path below it (its own training plus the
   longest chain of descendants, in examples-passes): the critical path first, the classic
   list-scheduling rule that keeps workers busy to the end;
3. ties in plan order.

The pool executor applies the rule each time a worker frees up. Ray takes every stage at once
(each task waits on its parent's result), so the Ray executor submits them in
:func:`submission_order`: Ray starts ready tasks roughly in submission order, which gives it the
same preference without a scheduler of our own.
"""

from __future__ import annotations

from collections.abc import Sequence

from xstilts.pipelines.plan import Plan, PlannedStage

# Evaluation-only stages (the base encoder's retrieval) cost something too: count them as this
# many examples-passes so that, other things equal, a stage with more below it goes first.
_EVAL_ONLY_PASSES = 1


def critical_path(stages: Sequence[PlannedStage]) -> dict[str, int]:
    """Examples-passes from each stage to the end of its longest chain of descendants.

    Args:
        stages: A plan's stages, parents before children.

    Returns:
        ``stage_id -> own passes + the largest such figure among its children`` (a stage
        already in the cache counts as an evaluation-only one).
    """
    below: dict[str, int] = {}
    for planned in reversed(stages):  # children before parents
        sid = planned.stage_id
        own = _EVAL_ONLY_PASSES if planned.cached else max(planned.passes, _EVAL_ONLY_PASSES)
        below[sid] = below.get(sid, 0) + own
        parent = planned.spec.parent
        if parent is not None:
            below[parent] = max(below.get(parent, 0), below[sid])
    return below


def priority_keys(plan: Plan) -> dict[str, tuple[int, int, int]]:
    """Sort keys for ready stages (smallest first); see the module doc for the rule.

    Args:
        plan: The plan being run.

    Returns:
        ``stage_id -> (seed rank, -critical path, plan position)``.
    """
    seeds = list(plan.experiment.seeds)
    path = critical_path(plan.stages)
    keys: dict[str, tuple[int, int, int]] = {}
    for position, planned in enumerate(plan.stages):
        seed = planned.spec.seed
        # The base stage (seed 0, not one of the grid's seeds) is everyone's parent: first.
        rank = seeds.index(seed) if seed in seeds else -1
        keys[planned.stage_id] = (rank, -path[planned.stage_id], position)
    return keys


def submission_order(plan: Plan) -> list[PlannedStage]:
    """Every stage of ``plan`` in priority order (:func:`priority_keys`), parents first.

    A parent's critical path is its child's plus its own (≥ 1) passes, and it has the child's
    seed rank (or the base's -1), so sorting by the keys never puts a child before its parent.
    """
    keys = priority_keys(plan)
    return sorted(plan.stages, key=lambda planned: keys[planned.stage_id])

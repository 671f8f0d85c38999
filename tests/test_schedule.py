"""The parallel executor hands a free worker the earliest seed's longest-path ready stage."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_ray_executor import _experiment
from xstilts.pipelines.executor_pool import run_experiment_parallel
from xstilts.pipelines.experiment import experiment_from_dict
from xstilts.pipelines.plan import build_plan
from xstilts.pipelines.schedule import critical_path, priority_keys, submission_order


def _two_seeds(data_root: Path, out: Path):  # type: ignore[no-untyped-def]
    raw = dict(_experiment(data_root, out).source)
    return experiment_from_dict({**raw, "seeds": [1, 2]})


def test_keys_put_seeds_in_order_and_the_longest_path_first(
    data_root: Path, tmp_path: Path
) -> None:
    plan = build_plan(_two_seeds(data_root, tmp_path / "k"))
    by_label = {(s.spec.label, s.spec.seed): s for s in plan.stages}
    # max_steps 2 x batch 8: every trained stage is 16 examples-passes.
    assert {s.passes for s in plan.stages if s.spec.kind == "train"} == {16}
    path = critical_path(plan.stages)
    sst2 = by_label[("sst2", 1)].stage_id
    assert path[sst2] == 16 * 3  # sst2, then sst2 -> qqp, then its pawsx target
    assert path[plan.stages[0].stage_id] == 1 + 16 * 3  # the base: evaluation only, then that
    keys = priority_keys(plan)
    order = sorted(plan.stages, key=lambda s: keys[s.stage_id])
    assert order[0].spec.kind == "base"
    seeds = [s.spec.seed for s in order[1:]]
    assert seeds == sorted(seeds) and set(seeds) == {1, 2}  # seed 1 whole, then seed 2
    assert order[1].stage_id == sst2  # the head of the longest chain, not plan order's first
    # Ray gets every stage at once, in this order: parents always before their children.
    submitted = submission_order(plan)
    assert [s.stage_id for s in submitted] == [s.stage_id for s in order]
    seen: set[str] = set()
    for planned in submitted:
        assert planned.spec.parent is None or planned.spec.parent in seen
        seen.add(planned.stage_id)


@pytest.mark.slow
def test_one_worker_finishes_a_seed_before_starting_the_next(
    data_root: Path, tmp_path: Path
) -> None:
    exp = _two_seeds(data_root, tmp_path / "run")
    plan = build_plan(exp)
    summary = run_experiment_parallel(exp, plan, workers=1, progress=False)
    seed_of = {s.stage_id: s.spec.seed for s in plan.stages}
    ran = [seed_of[i] for i in summary.trained if seed_of[i] != 0]
    assert len(ran) == 10
    # Plan order handed out at once would run seed 2's intermediate stages before seed 1's
    # targets (breadth-first); a stopped run would then hold no complete seed.
    assert ran == [1] * 5 + [2] * 5

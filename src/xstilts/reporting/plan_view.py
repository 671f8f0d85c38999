"""Rendering of a plan: the stage DAG as a tree (base -> intermediate -> target) and totals."""

from __future__ import annotations

from rich.markup import escape
from rich.tree import Tree

from xstilts.pipelines.plan import Plan, PlannedStage


def _node_label(planned: PlannedStage) -> str:
    spec = planned.spec
    status = "[green]cached[/]" if planned.cached else "[yellow]will run[/]"
    parts = [f"[bold]{spec.label}[/]", f"[dim]{planned.stage_id}[/]", status]
    if spec.kind == "train":
        parts.insert(1, f"{spec.role}, seed {spec.seed}, {planned.passes:,} example-passes")
    if spec.evaluate:
        parts.append("eval: " + ", ".join(spec.evaluate))
    return "  ".join(parts)


def plan_tree(plan: Plan) -> Tree:
    """The DAG as a rich tree; children under their parent stage."""
    n_cached = sum(s.cached for s in plan.stages)
    root = Tree(
        f"[bold]{plan.experiment.name}[/]: {len(plan.stages)} stages "
        f"({n_cached} cached, {len(plan.stages) - n_cached} to run), {len(plan.chains)} chains"
    )
    nodes: dict[str, Tree] = {}
    for planned in plan.stages:  # parents come first (topological order)
        parent = nodes.get(planned.spec.parent or "", root)
        nodes[planned.stage_id] = parent.add(_node_label(planned))
    return root


def plan_summary(plan: Plan) -> list[str]:
    """Lines with the totals, what sharing prefixes saves, and settings left unused."""
    n_cached = sum(s.cached for s in plan.stages)
    train_stages = [s for s in plan.stages if s.spec.kind == "train"]
    alone, shared, by_hand = plan.passes_alone, plan.passes_shared, plan.passes_by_hand
    return [
        f"distinct stages: {len(plan.stages)} (1 base, {len(train_stages)} trained); "
        f"cached: {n_cached}; to run: {len(plan.stages) - n_cached}",
        f"chains: {len(plan.chains)} ({len(plan.experiment.options)} options x "
        f"{len(plan.experiment.targets)} targets x {len(plan.experiment.seeds)} seeds)",
        f"examples-passes: {alone:,} running each chain alone vs {shared:,} with shared "
        f"prefixes (saves {alone - shared:,}, {plan.savings:.0%}); still to run: "
        f"{plan.passes_to_run:,}",
        f"vs {by_hand:,} training each option's intermediates once by hand: sharing saves "
        f"{by_hand - shared:,} ({plan.savings_vs_by_hand:.0%})",
        *(f"[yellow]warning:[/] {escape(w)}" for w in plan.warnings),
    ]

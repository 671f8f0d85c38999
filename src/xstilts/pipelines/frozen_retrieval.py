"""Plan-time check: a retrieval layer that no intermediate stage trains.

Retrieval targets (BUCC, Tatoeba) pool one encoder layer straight off each intermediate encoder.
Layer ``k`` is the output of the embeddings and layers ``0 .. k-1``; when every intermediate
stage freezes all of those (``train.freeze``), the pooled states are the base encoder's in every
condition and the comparison measures nothing. Measured in the main job: with layers 0-5 frozen,
XTREME's middle layer (6 of 12) gave bit-identical Tatoeba and BUCC scores for all conditions.
"""

from __future__ import annotations

from collections.abc import Iterable

from xstilts.pipelines.encoder_checks import encoder_layers
from xstilts.pipelines.experiment_spec import ExperimentSpec
from xstilts.pipelines.stage_spec import StageSpec
from xstilts.settings import TrainSettings, default, freeze_units


def frozen_retrieval_warning(
    exp: ExperimentSpec, retrieval: tuple[str, ...], specs: Iterable[StageSpec]
) -> str | None:
    """A warning when every intermediate stage freezes what the retrieval layer reads.

    Args:
        exp: The experiment (its ``evaluation.retrieval.layer`` and encoder).
        retrieval: Its retrieval targets (evaluated off every encoder, never trained).
        specs: Every stage of the plan.

    Returns:
        The warning text, or ``None`` when retrieval can differ between conditions (or there is
        no retrieval target, no intermediate stage, or the layer count is unknown).
    """
    intermediates = [s for s in specs if s.role == "intermediate"]
    if not retrieval or not intermediates:
        return None
    layer = exp.evaluation["retrieval"]["layer"]
    if layer is None:
        layers = encoder_layers(exp.encoder)
        if layers is None:
            return None
        layer = layers // 2  # the model's middle layer (xstilts.models.model)
    read = {"embeddings", *(f"layer.{i}" for i in range(int(layer)))}
    unset = default(TrainSettings, "freeze")  # sparse: absent from a spec that did not set it
    if not all(read <= set(freeze_units(s.train.get("freeze", unset))) for s in intermediates):
        return None
    return (
        f"evaluation.retrieval.layer: {', '.join(retrieval)} pool layer {layer}, the output of "
        "parts every "
        "intermediate stage freezes (train.freeze), so their scores cannot differ between "
        "intermediate conditions; pool a trained layer (e.g. the last) or freeze less"
    )

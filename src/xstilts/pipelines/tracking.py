"""Training logs where people look: TensorBoard for every stage, W&B or MLflow on request.

**Where.** A stage's TensorBoard event files are part of the stage:
``<stages>/<id>/tb/<label>-seed<seed>/``. They describe the training that produced the weights, so
they are cached, reused by later experiments and deleted with them. While the stage trains
they live in ``<stages>/.partial-<id>/tb/`` (beside its checkpoints, so a pre-empted stage
keeps its history and the resumed process continues it, purging the steps it redoes); once the
stage's files are written they move into them, before the stage is published, so a published
stage always has its logs. ``tensorboard --logdir <output_dir>/stages`` shows every stage,
the ones still training included.

**What.** At every logged step (``train.log_every``, each dev evaluation, the last step):
``train/loss`` (mean over the micro-batches since the last dev evaluation), ``train/lr``,
``throughput/examples_per_second``, and ``dev/metric`` at each dev evaluation. At the end:
``dev/<task>`` per task of a mixture (from the stage's dev curve), ``dev/best_metric``,
``throughput/tokens_per_second`` (real tokens over the stage's training seconds: the training
loop's per-step callback does not see token counts) and ``throughput/padding_efficiency``.

**Other trackers.** ``XSTILTS_LOG`` (``xstilts run --log wandb --log mlflow`` sets it, and
torchrun's and a local Ray's workers inherit it) adds one W&B or MLflow run per trained stage
with the same scalars, grouped by experiment name. Asking for one that is not installed is a
:class:`~xstilts.errors.ConfigError` before anything trains (:func:`check_backends`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from xstilts.errors import ConfigError
from xstilts.pipelines.locking import partial_dir
from xstilts.pipelines.stage_spec import StageSpec

ENV = "XSTILTS_LOG"
BACKENDS = ("tensorboard", "wandb", "mlflow")
_PIP = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard"}

StepHook = Callable[[Any], None]


def check_backends(names: Iterable[str]) -> list[str]:
    """Validate ``--log`` values: known and importable.

    Returns:
        The extra backends (``wandb``/``mlflow``) in the given order, without duplicates.

    Raises:
        ConfigError: an unknown name, or a tracker that is not installed.
    """
    out: list[str] = []
    for name in names:
        name = name.strip().lower()
        if not name:
            continue
        if name not in BACKENDS:
            raise ConfigError(f"unknown logger {name!r}", key="--log", hint=" or ".join(BACKENDS))
        if importlib.util.find_spec(name) is None:
            raise ConfigError(
                f"--log {name}: the {name} package is not installed",
                key="--log",
                hint=f"pip install {_PIP[name]}",
            )
        if name != "tensorboard" and name not in out:
            out.append(name)
    return out


def requested_backends() -> list[str]:
    """The extra backends named by ``$XSTILTS_LOG`` (validated)."""
    return check_backends(os.environ.get(ENV, "").split(","))


def lr_schedule(spec: StageSpec, total_steps: int) -> Callable[[int], float]:
    """``step -> lr`` of the update made at ``step`` (1-based), from the training's own schedule.

    The loop calls ``scheduler.step()`` after each update, so update ``s`` used factor ``s - 1``.
    """
    import torch

    from xstilts.training.loop import TrainConfig
    from xstilts.training.optim import linear_schedule

    cfg = TrainConfig.from_stage(spec.train, spec.mixture, spec.seed)
    # The real schedule object on a throw-away optimizer: the logged lr cannot drift from it.
    dummy = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=cfg.lr)
    schedule = linear_schedule(dummy, round(cfg.warmup_ratio * total_steps), total_steps)
    factor = schedule.lr_lambdas[0]
    return lambda step: cfg.lr * factor(step - 1)


def run_name(spec: StageSpec) -> str:
    """``mnli-seed1``: the TensorBoard run folder inside ``<stage>/tb/`` (file-system safe)."""
    return re.sub(r"[^\w.+()-]+", "_", f"{spec.label}-seed{spec.seed}")


class _Wandb:
    """One W&B run per stage."""

    def __init__(self, spec: StageSpec, experiment: str, config: dict[str, Any]) -> None:
        import wandb

        self.run = wandb.init(
            project=os.environ.get("WANDB_PROJECT", "xstilts"), group=experiment,
            name=f"{spec.label} seed {spec.seed} [{spec.stage_id[:8]}]", config=config,
            job_type=spec.kind,
        )  # fmt: skip

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.run.log(dict(scalars), step=step)

    def close(self) -> None:
        self.run.finish()


class _Mlflow:
    """One MLflow run per stage, in an MLflow experiment named after the xstilts experiment."""

    def __init__(self, spec: StageSpec, experiment: str, config: dict[str, Any]) -> None:
        import mlflow

        self.mlflow = mlflow
        mlflow.set_experiment(experiment)
        # A run the user opened around xstilts (a notebook) becomes the parent, not an error.
        mlflow.start_run(run_name=f"{spec.label} seed {spec.seed} [{spec.stage_id[:8]}]",
                         nested=mlflow.active_run() is not None)  # fmt: skip
        mlflow.set_tags({"xstilts.stage_id": spec.stage_id, "xstilts.label": spec.label,
                         "xstilts.seed": str(spec.seed)})  # fmt: skip
        mlflow.log_dict(config, "stage_spec.json")

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        self.mlflow.log_metrics(dict(scalars), step=step)

    def close(self) -> None:
        self.mlflow.end_run()


class StageLogs:
    """Logs of one stage being trained (a context manager closing every writer).

    Args:
        spec: The stage.
        stage_dir: Its final directory (``<stages>/<id>``).
        experiment: Experiment name (W&B group, MLflow experiment).
        chains: Labels of the chains through the stage (written as text for the reader).
        backends: Extra trackers (default: ``$XSTILTS_LOG``).
    """

    def __init__(
        self,
        spec: StageSpec,
        stage_dir: Path,
        experiment: str,
        chains: Iterable[str] = (),
        backends: Iterable[str] | None = None,
    ) -> None:
        self.spec, self.experiment, self.chains = spec, experiment, list(chains)
        self.work_tb = partial_dir(Path(stage_dir)) / "tb"
        # run_stage assembles the stage in .partial-<id>/final before publishing it.
        self.final_tb = partial_dir(Path(stage_dir)) / "final" / "tb"
        self.backends = list(requested_backends() if backends is None else backends)
        self.writer: Any = None
        self.sinks: list[Any] = []
        self._lr: Callable[[int], float] | None = None
        self._last_step = 0

    # ---------------------------------------------------------------- hooks for run_stage

    def on_step(self, inner: StepHook | None = None) -> StepHook:
        """The ``progress`` callback: log the step, then call ``inner`` (e.g. a progress bar)."""

        def hook(info: Any) -> None:
            self.log_step(info)
            if inner is not None:
                inner(info)

        return hook

    def on_saved(self, inner: StepHook | None = None) -> StepHook:
        """The ``on_saved`` callback: final scalars, files moved into the stage, then ``inner``."""

        def hook(metrics: dict[str, Any]) -> None:
            self.finish(metrics)
            if inner is not None:
                inner(metrics)

        return hook

    # ---------------------------------------------------------------- logging

    def _open(self, first_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        resumed = self.work_tb.is_dir() and any(self.work_tb.rglob("events.out.tfevents.*"))
        # A resumed stage redoes the steps after its last checkpoint: purge_step hides the
        # killed process's events from that step on, so each step appears once.
        purge = first_step if resumed else None
        self.writer = SummaryWriter(str(self.work_tb / run_name(self.spec)), purge_step=purge)
        if not resumed:
            self.writer.add_text("stage", self._describe(), 0)
        config = {"stage_id": self.spec.stage_id, "chains": self.chains, **self.spec.to_dict()}
        for name in self.backends:
            self.sinks.append((_Wandb if name == "wandb" else _Mlflow)(self.spec, self.experiment,
                                                                       config))  # fmt: skip

    def _describe(self) -> str:
        lines = [f"stage {self.spec.label} (seed {self.spec.seed}), id {self.spec.stage_id}",
                 f"parent: {self.spec.parent or '—'}"]  # fmt: skip
        lines += [f"chain: {c}" for c in self.chains]
        return "  \n".join(lines)  # two spaces: a Markdown line break in TensorBoard's text tab

    def _emit(self, scalars: Mapping[str, float | None], step: int) -> None:
        values = {k: float(v) for k, v in scalars.items() if v is not None}
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)
        # Flushed at every logged step: a killed or still-running stage shows what it did.
        self.writer.flush()
        for sink in self.sinks:
            sink.log(values, step)

    def log_step(self, info: Any) -> None:
        """One progress snapshot (:class:`xstilts.training.loop.Progress`)."""
        if self.writer is None:
            self._open(info.step)
        if self._lr is None:
            self._lr = lr_schedule(self.spec, info.total_steps)
        self._last_step = info.step
        self._emit(
            {
                "train/loss": info.loss,
                "train/lr": self._lr(info.step),
                "throughput/examples_per_second": info.examples_per_second,
                "dev/metric": info.dev_metric,
            },
            info.step,
        )

    def finish(self, metrics: Mapping[str, Any]) -> None:
        """End-of-stage scalars, close the writers, move the event files into the stage."""
        curve = list(metrics.get("dev_curve") or [])
        if self.writer is None and curve and not self.final_tb.is_dir():
            # Killed after the stage's files were written: only the end is left to log.
            self._open(None)
        if self.writer is not None:
            last = int(metrics.get("steps") or self._last_step)
            tasks = {t for point in curve for t in point.get("per_task") or {}}
            if len(tasks) > 1:
                for point in curve:
                    for task, value in (point.get("per_task") or {}).items():
                        self.writer.add_scalar(f"dev/{task}", float(value), int(point["step"]))
            self._emit(
                {
                    "dev/best_metric": metrics.get("best_dev_metric"),
                    "throughput/tokens_per_second": metrics.get("tokens_per_second"),
                    "throughput/padding_efficiency": metrics.get("padding_efficiency"),
                },
                last,
            )
        self.close()
        if not self.work_tb.is_dir() or not self.final_tb.parent.is_dir():
            return  # nothing logged, or no stage being assembled to move the logs into
        if self.final_tb.exists():  # moved by an earlier process: these are leftovers
            shutil.rmtree(self.work_tb, ignore_errors=True)
        else:
            os.replace(self.work_tb, self.final_tb)  # one rename: all the logs or none

    def close(self) -> None:
        """Close the TensorBoard writer and end the W&B/MLflow runs (idempotent)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        for sink in self.sinks:
            sink.close()
        self.sinks = []

    def __enter__(self) -> StageLogs:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

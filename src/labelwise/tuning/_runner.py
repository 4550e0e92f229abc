"""One trial, whatever the backend: params -> trial config and contract -> fit -> value.

The expensive parts are built once per worker process and shared by every trial: the token
ids (at the longest ``max_length`` any trial can use; shorter trials cut them) and the
pretrained weights (kept in memory; each trial re-initialises from them, never from disk).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelwise.outputs.model_dir import publish, save_model_dir
from labelwise.outputs.names import BEST_DIR, BEST_LOCK, BEST_MARKER
from labelwise.errors import LabelwiseError
from labelwise.plan.preflight import Plan
from labelwise.plan.space import apply_params, max_length_over, space_to_json
from labelwise.scoring.diagnosis import Diagnosis
from labelwise.training.train import (Prepared, final_metrics, fit, load_base_state, prepare,
                                set_threads)

__all__ = ["TrialRunner", "TrialOutcome", "save_if_best", "failure_reason", "BEST_MARKER",
           "study_key", "key_difference", "eval_reporter"]

logger = logging.getLogger("labelwise")


@dataclasses.dataclass
class TrialOutcome:
    """A finished trial: its value, validation metrics and what ``best/`` would need."""

    value: float
    metrics: dict[str, Any]
    thresholds: Any
    model: Any
    plan: Plan
    seconds: float
    step_seconds: float
    steps: int
    log_history: list[dict[str, Any]]
    diagnosis: Diagnosis | None = None  # the findings after training


def study_key(plan: Plan, space: dict[str, Any]) -> dict[str, Any]:
    """What a search is bound to: labels, data, space and objective. Every backend stores
    it with the search and refuses to resume or join with another."""
    return {"schema_fingerprint": plan.schema.fingerprint,
            "data_fingerprints": {s: plan.data.fingerprint(s) for s in ("train", "valid")},
            "space": space_to_json(space),
            "objective": list(plan.objective)}


def key_difference(saved: dict[str, Any], key: dict[str, Any]) -> tuple[list[str], str]:
    """The keys that differ, and ``key: old -> new`` for each (cut to fit one line)."""
    changed = [k for k in key if saved.get(k) != key[k]]
    detail = "; ".join(f"{k}: {json.dumps(saved.get(k))[:120]} -> {json.dumps(key[k])[:120]}"
                       for k in changed)
    return changed, detail


def eval_reporter(metric: str, on_eval: Callable[[float, Any, Any], None]) -> Any:
    """A TrainerCallback that times the optimizer steps (``.step_seconds``, ``.started``)
    and hands the objective of each evaluation to ``on_eval(value, state, reporter)``,
    where a backend feeds its pruner or scheduler. ``.evaluations`` counts them: the
    report key that means the same point of training whatever the batch size."""
    from transformers import TrainerCallback

    class EvalReporter(TrainerCallback):
        def __init__(self) -> None:
            self.started = time.perf_counter()
            self.step_seconds = 0.0
            self.evaluations = 0
            self._step = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._step = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.step_seconds += time.perf_counter() - self._step

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                        **kw: Any) -> None:
            value = (metrics or {}).get(f"eval_{metric}")
            if value is not None:
                self.evaluations += 1
                on_eval(float(value), state, self)

    return EvalReporter()


def failure_reason(exc: BaseException) -> str:
    """One line for ``trials.csv``: the error class and its message."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if _is_gpu_oom(exc):
        return ("out of GPU memory: lower train.batch_size or set "
                f"train.gradient_checkpointing ({type(exc).__name__}: {text})")[:300]
    if isinstance(exc, MemoryError) or "out of memory" in text.lower():
        return f"out of memory: {type(exc).__name__}: {text}"[:300]
    return f"{type(exc).__name__}: {text}"[:300]


def _is_gpu_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError) or "CUDA out of memory" in str(exc)


class TrialRunner:
    """Runs trials of one plan in this process (see the module docstring)."""

    def __init__(self, plan: Plan, space: dict[str, Any], *, threads: int | None = None) -> None:
        self.plan = plan
        self.space = space
        self.threads = threads or set_threads(plan.config)
        if threads:
            import torch

            torch.set_num_threads(threads)
        started = time.perf_counter()
        self.prepared: Prepared = prepare(plan, max_length=max_length_over(plan.config, space))
        self.prepared.base_state = load_base_state(plan)
        self.setup_seconds = time.perf_counter() - started

    def trial_plan(self, params: dict[str, Any]) -> Plan:
        """The plan of a trial: its config, with the contract and every decision derived
        from it (schema unchanged)."""
        return self.plan.for_trial(apply_params(self.plan.config, params))

    def run(self, params: dict[str, Any], *, callbacks: tuple[Any, ...] = ()) -> TrialOutcome:
        """Train and evaluate one trial; exceptions propagate to the backend."""
        from labelwise.training.trainer import DivergedError

        plan = self.trial_plan(params)
        if plan.schema.fingerprint != self.plan.schema.fingerprint:  # pragma: no cover
            raise LabelwiseError("a trial changed the label schema", code="LW350")
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="labelwise-trial-") as work:
            result = fit(self.prepared, plan=plan, work=Path(work), callbacks=callbacks,
                         save=False)
        outputs: dict[str, Any] = {}
        metrics, thresholds = final_metrics(self.prepared, result.model, plan=plan,
                                            splits=["valid"], valid_eval=result.final_eval,
                                            keep=outputs)
        metric, _ = plan.objective
        value = metrics["valid"].get(metric)
        if metric == "loss":
            value = _last_eval_loss(result.log_history)
        if value is None or not math.isfinite(float(value)):
            raise DivergedError(f"objective {metric} is {value}", fix="lower the learning "
                                "rate range", code="LW502")
        from labelwise.training.after import diagnose_run

        diagnosis = diagnose_run(self.prepared, result.model, plan=plan, valid=outputs["valid"],
                                 thresholds=thresholds, log_history=result.log_history)
        return TrialOutcome(float(value), metrics["valid"], thresholds, result.model, plan,
                            time.perf_counter() - started, result.step_seconds, result.steps,
                            result.log_history, diagnosis)

    def release(self) -> None:
        """The finished trial's memory back: Python's, then the CUDA cache."""
        from labelwise.training.device import release_device_memory

        gc.collect()
        release_device_memory()


def _last_eval_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [h["eval_loss"] for h in history if "eval_loss" in h]
    return float(losses[-1]) if losses else None


def save_if_best(outcome: TrialOutcome, *, number: int, direction: str, output_dir: Path,
                 tokenizer: Any, extra: dict[str, Any], force: bool = False) -> bool:
    """Publish ``OUTPUT/best/`` when this trial beats the saved best, under a file lock
    (``OUTPUT/.best.lock``) that every process of the search shares."""
    from filelock import FileLock

    marker = output_dir / BEST_MARKER
    with FileLock(str(output_dir / BEST_LOCK)):
        if marker.exists() and not force:
            saved = json.loads(marker.read_text())
            better = (outcome.value > saved["value"] if direction == "maximize"
                      else outcome.value < saved["value"])
            if not better:
                return False
        staging = output_dir / f".best.staging-{os.getpid()}"
        save_model_dir(staging, plan=outcome.plan, model=outcome.model, tokenizer=tokenizer,
                       metrics={"valid": outcome.metrics}, thresholds=outcome.thresholds,
                       stats={"trial": number, "seconds": round(outcome.seconds, 3),
                              "step_seconds": round(outcome.step_seconds, 3),
                              "steps": outcome.steps},
                       log_history=outcome.log_history, extra={"trial": number, **extra},
                       after_training=(outcome.diagnosis.to_dict()
                                       if outcome.diagnosis is not None else None))
        publish(staging, output_dir / BEST_DIR, overwrite=True)
        marker.write_text(json.dumps({"trial": number, "value": outcome.value}))
    logger.info("trial %d is the best so far: saved to %s", number, output_dir / BEST_DIR)
    return True


def rerun_as_best(plan: Plan, space: dict[str, Any], *, number: int, params: dict[str, Any],
                  output_dir: Path, study_name: str) -> float:
    """Train the params of trial ``number`` here and publish them as ``best/``.

    For the study's best trial when another machine ran it (``--join``): that machine's
    model is on its own disk. Same data, params and seed; returns the value reached here.
    """
    runner = TrialRunner(plan, space)
    outcome = runner.run(params)
    save_if_best(outcome, number=number, direction=plan.objective[1], output_dir=output_dir,
                 tokenizer=runner.prepared.tokenizer,
                 extra={"params": params, "study": study_name, "rerun_here": True},
                 force=True)
    return outcome.value

"""How fast a trial trains and evaluates, measured on its first optimizer steps.

The search's budget rule (:mod:`labelwise.plan.budget`) needs the seconds of one epoch and
of one evaluation before the first trial. :func:`measure_speed` trains the search's model
on its own data through the same path as a trial (:func:`labelwise.training.train.fit`:
the same batches, head, loss and optimizer) for a few steps, and evaluates a slice of the
validation split. Step times are not all alike (length-bucketed batches differ in width),
so the figures are ratios: seconds per padded token of the timed batches, times the padded
tokens of a whole epoch (every batch of the epoch's sampler) and of the validation split.
The first step is not timed (lazy initialisation).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.plan.preflight import Plan
from labelwise.plan.space import apply_params
from labelwise.training.train import Prepared

__all__ = ["Speed", "measure_speed"]


@dataclass(frozen=True)
class Speed:
    """One epoch and one evaluation, in seconds, at this process's threads."""

    epoch_seconds: float
    eval_seconds: float
    steps: int  # optimizer steps timed
    seconds: float  # what measuring took, model copy and tokens included


def _padded(lengths: np.ndarray, batches: list[list[int]]) -> np.ndarray:
    return np.array([len(b) * int(lengths[b].max()) for b in batches], dtype=np.float64)


def measure_speed(prepared: Prepared, plan: Plan, *, steps: int = 8,
                  eval_rows: int = 256) -> Speed:
    """Seconds of one training epoch and of one evaluation for trials of ``plan`` (its
    batch size, ``max_length`` and model), from ``steps`` timed optimizer steps and
    ``eval_rows`` validation rows."""
    from transformers import TrainerCallback

    from labelwise.training.batching import LengthBucketBatchSampler, SortedBatchSampler
    from labelwise.training.forward import eval_batch_size, predict_logits
    from labelwise.training.train import fit

    started = time.perf_counter()
    cfg = plan.config
    t = cfg.train
    length = cfg.model.max_length
    train_lengths = prepared.encoded_at("train", length).lengths
    batches = LengthBucketBatchSampler(train_lengths, t.batch_size, seed=t.seed,
                                       bucket=t.length_bucketing).batches(0)
    epoch_tokens = _padded(train_lengths, batches)
    n = min(steps + 1, len(batches))
    durations: list[float] = []

    class _Timer(TrainerCallback):
        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.begin = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            durations.append(time.perf_counter() - self.begin)
            control.should_evaluate = False  # a speed probe, not a trial
            control.should_log = False

    probe = plan.for_trial(apply_params(cfg, {"train.max_steps": n,
                                              "train.early_stopping_patience": None}))
    with tempfile.TemporaryDirectory(prefix="labelwise-speed-") as work:
        result = fit(prepared, plan=probe, work=Path(work), callbacks=[_Timer()], save=False)
    # one optimizer step per batch (gradient accumulation: several batches a step)
    per_step = max(1, t.gradient_accumulation_steps)
    timed = durations[1:] if len(durations) > 1 else durations
    first = (len(durations) - len(timed)) * per_step
    tokens = epoch_tokens[first:first + len(timed) * per_step].sum()
    per_token = sum(timed) / max(tokens, 1.0)
    epoch_seconds = per_token * float(epoch_tokens.sum())

    valid = prepared.encoded_at("valid", length)
    eval_seconds = 0.0
    if len(valid):
        batch = eval_batch_size(t, next(result.model.parameters()).device)
        rng = np.random.default_rng(t.seed)
        rows = np.sort(rng.choice(len(valid), size=min(eval_rows, len(valid)), replace=False))
        sample = valid.take(rows)
        begin = time.perf_counter()
        predict_logits(result.model, sample, pad_id=prepared.pad_id, batch_size=batch)
        sample_seconds = time.perf_counter() - begin
        sample_tokens = _padded(sample.lengths,
                                list(SortedBatchSampler(sample.lengths, batch))).sum()
        all_tokens = _padded(valid.lengths, list(SortedBatchSampler(valid.lengths, batch))).sum()
        eval_seconds = sample_seconds / max(sample_tokens, 1.0) * all_tokens
    return Speed(epoch_seconds, eval_seconds, len(timed), time.perf_counter() - started)

"""From logits and targets to metrics, with the decision rule and thresholds of the contract.

Binary and multilabel thresholds are tuned on the validation split (maximum F1 per label,
or maximum accuracy when the plan says so, see :mod:`labelwise.scoring.thresholds`) and then
applied unchanged to every other split. The metrics reported on validation during
training use thresholds tuned on that same split (what the saved model will do); test
metrics use the validation thresholds, so they stay honest.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.labels.schema import LabelSchema
from labelwise.plan.contract import HeadContract
from labelwise.scoring.decisions import scores_from_logits
from labelwise.scoring.metrics import compute_metrics, primary_metrics
from labelwise.scoring.thresholds import Thresholds, tune_thresholds

__all__ = ["y_for_metrics", "evaluate_logits"]


def y_for_metrics(targets: np.ndarray, contract: HeadContract) -> np.ndarray:
    """Contract targets as the metrics read them (``[n, 1]`` one-logit targets -> ids)."""
    if contract.target_shape == "[B, 1]":
        return targets.reshape(-1).round().astype(np.int64)
    return targets


def evaluate_logits(
    logits: np.ndarray,
    targets: np.ndarray,
    *,
    contract: HeadContract,
    schema: LabelSchema,
    thresholds: Thresholds | None = None,
    tune: bool = False,
    full: bool = True,
    threshold_metric: str = "f1",
) -> tuple[dict[str, Any], Thresholds | None]:
    """Metrics of one split, and the thresholds used (tuned here for ``threshold_metric``
    when ``tune``)."""
    scores = scores_from_logits(logits, contract)
    y = y_for_metrics(targets, contract)
    names = list(schema.label_names)
    task = schema.task.value
    if contract.uses_thresholds and (tune or thresholds is None):
        if tune:
            thresholds = tune_thresholds(task=task, y_true=y, scores=scores, class_names=names,
                                         metric=threshold_metric)
    values: Any = None
    if contract.uses_thresholds and thresholds is not None:
        values = thresholds.values[0] if task == "binary" else list(thresholds.values)
    metrics = compute_metrics(task=task, y_true=y, scores=scores, class_names=names,
                              thresholds=values)
    return (metrics if full else primary_metrics(metrics)), thresholds

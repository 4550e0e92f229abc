"""The one decision rule: logits to scores, and scores (+ thresholds) to decisions.

Every place that turns a model's outputs into labels goes through these two functions:
evaluation during training, the final metrics, threshold tuning, the report and
``predict``. Two implementations of the rule would drift (float32 against float64, ``>``
against ``>=``); one cannot.

* :func:`scores_from_logits`: float32, as the model computes. The positive-class
  probability ``[n]`` for a binary head (sigmoid of a one-logit head, softmax column 1 of a
  two-logit head), class probabilities ``[n, k]`` for multiclass, label probabilities
  ``[n, k]`` for multilabel, raw outputs ``[n, t]`` for regression.
* :func:`decide`: class ids ``[n]`` (``score >= threshold`` for binary, argmax for
  multiclass), 0/1 rows ``[n, k]`` (``score >= threshold`` per label) for multilabel, the
  scores themselves for regression.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from labelwise.plan.contract import DecisionRule, HeadContract
from labelwise.scoring.thresholds import apply_thresholds

__all__ = ["scores_from_logits", "decide"]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of a non-positive number only: no overflow for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def scores_from_logits(logits: Any, contract: HeadContract) -> np.ndarray:
    """The scores the decision rule reads, as float32 numpy (see the module docstring)."""
    x = np.asarray(logits, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    if contract.activation == "identity":
        return x
    if contract.activation == "sigmoid":
        probs = _sigmoid(x)
        return probs[:, 0] if contract.num_labels == 1 else probs
    probs = _softmax(x)
    return probs[:, 1] if contract.decision_rule == DecisionRule.THRESHOLD else probs


def decide(scores: np.ndarray, *, rule: DecisionRule | str,
           thresholds: float | Sequence[float] | None = None) -> np.ndarray:
    """Decisions from scores under ``rule``: class ids ``[n]``, 0/1 rows ``[n, k]``
    (``int64``) or, for ``identity``, the scores unchanged.

    ``thresholds``: one float (binary, or every label) or one per label; required by the
    threshold rules.
    """
    rule = DecisionRule(rule)
    if rule is DecisionRule.IDENTITY:
        return scores
    if rule is DecisionRule.ARGMAX:
        return np.asarray(scores).argmax(axis=1).astype(np.int64)
    if thresholds is None:
        raise ValueError(f"the {rule.value!r} decision rule needs thresholds")
    s = np.asarray(scores)
    if rule is DecisionRule.THRESHOLD and s.ndim == 2:
        s = s[:, -1]  # [n, 2] probabilities or [n, 1] one-logit scores: the positive column
    return apply_thresholds(s, thresholds)

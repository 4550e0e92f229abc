"""Evaluation metrics per task, as JSON-ready dicts.

Every number comes from :mod:`sklearn.metrics` or :mod:`scipy.stats`; this module only
checks the inputs, applies the decision rule of the task (threshold, argmax, per-label
thresholds, identity) and shapes the result. The metric keys match
:data:`labelwise.plan.contract.METRICS` (``loss`` is added by the trainer, not here).

Conventions, the same for every task:

* All floats are plain Python floats rounded to 6 digits; integers (supports, confusion
  matrix cells) are plain ints. The result passes through ``json.dumps`` unchanged.
* No ``NaN`` is ever returned: undefined values are ``None`` (binary ``roc_auc`` /
  ``pr_auc`` with one class in ``y_true``) or ``0.0`` (correlations with a constant input),
  as documented per task in :func:`compute_metrics`.
* ``zero_division=0``: a precision, recall or F1 whose denominator is zero is 0.
* Shape or value mismatches raise :class:`ValueError` with a one-line message.

scikit-learn and scipy are imported inside the functions, so importing this module loads
numpy only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from labelwise.scoring._checks import (DEFAULT_THRESHOLD, TASKS, as_array, check_names, check_rows,
                                      coerce_binary, coerce_multiclass, coerce_multilabel,
                                      rounded, task_name, threshold_vector)
from labelwise.plan.contract import DecisionRule
from labelwise.scoring.decisions import decide

__all__ = ["compute_metrics", "primary_metrics", "TASKS", "DEFAULT_THRESHOLD"]

# Scalars in a metrics dict that are settings, not metrics.
_NOT_METRICS = frozenset({"threshold"})


def compute_metrics(
    *,
    task: str,
    y_true: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    thresholds: float | Sequence[float] | Any | None = None,
) -> dict[str, Any]:
    """Compute the metrics of one task on one split.

    * ``binary``: ``y_true`` holds class ids ``[n]`` in {0, 1}, where 1 is the positive class
      ``class_names[1]``; ``scores`` is the positive-class probability ``[n]`` (``[n, 1]``
      and ``[n, 2]`` probabilities are accepted: the last column is taken). A row is
      predicted positive when ``score >= threshold`` (default 0.5). Returns ``accuracy``,
      ``f1``, ``precision``, ``recall`` (of the positive class), ``mcc``, ``roc_auc``,
      ``pr_auc`` (average precision), ``threshold``, ``confusion_matrix`` (2x2, rows = true)
      and ``per_class``. ``roc_auc`` and ``pr_auc`` are ``None`` when ``y_true`` holds only
      one class: they are undefined there, and ``None`` is returned instead of raising.
    * ``multiclass``: ``y_true`` ids ``[n]``, ``scores`` probabilities ``[n, k]``; the
      prediction is the argmax. Returns ``accuracy``, ``macro_f1``, ``micro_f1``,
      ``weighted_f1``, ``mcc``, ``per_class`` (every class in class order, also those absent
      from ``y_true``) and the ``k x k`` ``confusion_matrix`` over ``labels=range(k)``. The
      averaged F1 scores follow scikit-learn: over the classes present in ``y_true`` or in
      the predictions.
    * ``multilabel``: ``y_true`` 0/1 ``[n, k]``, ``scores`` probabilities ``[n, k]``,
      ``thresholds`` one float or one per label (default 0.5). Returns ``micro_f1``,
      ``macro_f1``, ``samples_f1``, ``subset_accuracy``, ``hamming_loss``, ``per_label`` and
      the ``thresholds`` used. With ``zero_division=0`` a label with no true and no predicted
      positives has F1 0 (in ``macro_f1``), and so has a row with no true and no predicted
      labels (in ``samples_f1``).
    * ``regression``: ``y_true`` ``[n, t]`` or ``[n]`` and predictions ``scores`` of the same
      shape, ``class_names`` the target names. Returns ``mse``, ``mae``, ``r2``,
      ``pearson``, ``spearman`` as the mean over targets, and ``per_target`` keyed by target
      name. A correlation with a constant input (constant predictions, or a constant target)
      is undefined: it is reported as 0.0, without a warning. Needs at least 2 rows.

    ``per_class`` / ``per_label`` rows are ``{"label", "precision", "recall", "f1",
    "support"}``. Every precision, recall and F1 uses ``zero_division=0``.

    Args:
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"`` (a
            :class:`~labelwise.labels.inference.Task` works too).
        y_true: The targets.
        scores: Probabilities (classification) or predictions (regression).
        class_names: Class names in id order, label names, or target names.
        thresholds: Binary: one float (or a one-element sequence / ``Thresholds``).
            Multilabel: one float for every label, or one per label. Ignored otherwise.

    Returns:
        A JSON-serialisable dict; :func:`primary_metrics` keeps the scalar metrics.

    Raises:
        ValueError: Unknown task, or shapes / values that do not fit the task.
    """
    name = task_name(task)
    names = [str(c) for c in class_names]
    if name == "binary":
        y, s = coerce_binary(y_true, scores, names)
        return _binary(y, s, names, float(threshold_vector(thresholds, 1)[0]))
    if name == "multiclass":
        y, s = coerce_multiclass(y_true, scores, names)
        return _multiclass(y, s, names)
    if name == "multilabel":
        y, s = coerce_multilabel(y_true, scores, names)
        return _multilabel(y, s, names, threshold_vector(thresholds, len(names)))
    return _regression(y_true, scores, names)


def primary_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The scalar metrics of a :func:`compute_metrics` result (plus ``loss`` if present).

    Keeps every real-number value; drops tables (``per_class``, ``confusion_matrix``, ...),
    ``None`` values (an undefined ``roc_auc``) and the ``threshold`` setting.
    """
    return {
        key: float(value) for key, value in metrics.items()
        if key not in _NOT_METRICS and isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
    }


# --- the tasks ---------------------------------------------------------------------------


def _binary(y: np.ndarray, s: np.ndarray, names: list[str], threshold: float) -> dict[str, Any]:
    from sklearn.metrics import (accuracy_score, average_precision_score, confusion_matrix,
                                 f1_score, precision_score, recall_score, roc_auc_score)

    pred = decide(s, rule=DecisionRule.THRESHOLD, thresholds=threshold)
    both = np.unique(y).size == 2
    return {
        "accuracy": rounded(accuracy_score(y, pred)),
        "f1": rounded(f1_score(y, pred, pos_label=1, zero_division=0)),
        "precision": rounded(precision_score(y, pred, pos_label=1, zero_division=0)),
        "recall": rounded(recall_score(y, pred, pos_label=1, zero_division=0)),
        "mcc": _mcc(y, pred),
        "roc_auc": rounded(roc_auc_score(y, s)) if both else None,
        "pr_auc": rounded(average_precision_score(y, s)) if both else None,
        "threshold": rounded(threshold),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "per_class": _table(y, pred, names, labels=[0, 1]),
    }


def _multiclass(y: np.ndarray, s: np.ndarray, names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(len(names)))
    pred = decide(s, rule=DecisionRule.ARGMAX)
    return {
        "accuracy": rounded(accuracy_score(y, pred)),
        "macro_f1": rounded(f1_score(y, pred, average="macro", zero_division=0)),
        "micro_f1": rounded(f1_score(y, pred, average="micro", zero_division=0)),
        "weighted_f1": rounded(f1_score(y, pred, average="weighted", zero_division=0)),
        "mcc": _mcc(y, pred),
        "per_class": _table(y, pred, names, labels=labels),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def _multilabel(y: np.ndarray, s: np.ndarray, names: list[str],
                thresholds: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    pred = decide(s, rule=DecisionRule.PER_LABEL_THRESHOLDS, thresholds=thresholds)
    y = y.astype(np.int64)
    return {
        "micro_f1": rounded(f1_score(y, pred, average="micro", zero_division=0)),
        "macro_f1": rounded(f1_score(y, pred, average="macro", zero_division=0)),
        "samples_f1": rounded(f1_score(y, pred, average="samples", zero_division=0)),
        "subset_accuracy": rounded(accuracy_score(y, pred)),
        "hamming_loss": rounded(hamming_loss(y, pred)),
        "per_label": _table(y, pred, names, labels=None),
        "thresholds": [rounded(t) for t in thresholds],
    }


def _regression(y_true: Any, scores: Any, names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, p = as_array("y_true", y_true), as_array("scores", scores)
    y, p = (y[:, None] if y.ndim == 1 else y), (p[:, None] if p.ndim == 1 else p)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"y_true and scores must have the same shape [n] or [n, t] for a "
                         f"regression task; got {np.shape(y_true)} and {np.shape(scores)}")
    if y.shape[0] < 2:
        raise ValueError(f"regression metrics need at least 2 rows; got {y.shape[0]}")
    check_names(names, y.shape[1], "target")
    raw: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        a, b = y[:, j], p[:, j]
        raw[name] = {"mse": float(mean_squared_error(a, b)),
                     "mae": float(mean_absolute_error(a, b)),
                     "r2": float(r2_score(a, b)),
                     "pearson": _correlation("pearsonr", a, b),
                     "spearman": _correlation("spearmanr", a, b)}
    keys = ("mse", "mae", "r2", "pearson", "spearman")
    out: dict[str, Any] = {k: rounded(np.mean([raw[n][k] for n in names])) for k in keys}
    out["per_target"] = {n: {k: rounded(v) for k, v in row.items()} for n, row in raw.items()}
    return out


# --- helpers -----------------------------------------------------------------------------


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        # One label in both y and pred: sklearn warns about the confusion-matrix shape and
        # returns 0.0, which is the value we want.
        warnings.filterwarnings("ignore", message="A single label was found",
                                category=UserWarning)
        return rounded(matthews_corrcoef(y, pred))


def _correlation(kind: str, a: np.ndarray, b: np.ndarray) -> float:
    """Pearson or Spearman correlation; 0.0 when undefined (a constant input)."""
    from scipy import stats

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    degenerate = getattr(stats, "DegenerateDataWarning", RuntimeWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", degenerate)
        value = float(getattr(stats, kind)(a, b)[0])
    return value if np.isfinite(value) else 0.0


def _table(y: np.ndarray, pred: np.ndarray, names: list[str],
           labels: list[int] | None) -> list[dict[str, Any]]:
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, support = precision_recall_fscore_support(y, pred, labels=labels, average=None,
                                                       zero_division=0)
    return [{"label": name, "precision": rounded(p[i]), "recall": rounded(r[i]), "f1": rounded(f[i]),
             "support": int(support[i])} for i, name in enumerate(names)]



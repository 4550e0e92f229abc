"""Evaluation metrics per task, as JSON-ready dicts.

Every number comes from :mod:`sklearn.metrics` or :mod:`scipy.stats`; this module only
checks the inputs, applies the decision rule of the task (threshold, argmax, per-label
thresholds, identity) and shapes the result. The metric keys match
:data:`labelwise.contract.METRICS` (``loss`` is added by the trainer, not here).

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
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from labelwise.thresholds import Thresholds

__all__ = ["compute_metrics", "primary_metrics", "TASKS", "DEFAULT_THRESHOLD"]

TASKS = ("binary", "multiclass", "multilabel", "regression")
DEFAULT_THRESHOLD = 0.5
_DIGITS = 6
# Scalars in a metrics dict that are settings, not metrics.
_NOT_METRICS = frozenset({"threshold"})


def compute_metrics(
    *,
    task: str,
    y_true: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    thresholds: float | Sequence[float] | Thresholds | None = None,
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
            :class:`~labelwise.labels.Task` works too).
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
    name = _task_name(task)
    names = [str(c) for c in class_names]
    if name == "binary":
        y, s = _coerce_binary(y_true, scores, names)
        return _binary(y, s, names, float(_threshold_vector(thresholds, 1)[0]))
    if name == "multiclass":
        y, s = _coerce_multiclass(y_true, scores, names)
        return _multiclass(y, s, names)
    if name == "multilabel":
        y, s = _coerce_multilabel(y_true, scores, names)
        return _multilabel(y, s, names, _threshold_vector(thresholds, len(names)))
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

    pred = (s >= threshold).astype(np.int64)
    both = np.unique(y).size == 2
    return {
        "accuracy": _r(accuracy_score(y, pred)),
        "f1": _r(f1_score(y, pred, pos_label=1, zero_division=0)),
        "precision": _r(precision_score(y, pred, pos_label=1, zero_division=0)),
        "recall": _r(recall_score(y, pred, pos_label=1, zero_division=0)),
        "mcc": _mcc(y, pred),
        "roc_auc": _r(roc_auc_score(y, s)) if both else None,
        "pr_auc": _r(average_precision_score(y, s)) if both else None,
        "threshold": _r(threshold),
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "per_class": _table(y, pred, names, labels=[0, 1]),
    }


def _multiclass(y: np.ndarray, s: np.ndarray, names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    labels = list(range(len(names)))
    pred = s.argmax(axis=1)
    return {
        "accuracy": _r(accuracy_score(y, pred)),
        "macro_f1": _r(f1_score(y, pred, average="macro", zero_division=0)),
        "micro_f1": _r(f1_score(y, pred, average="micro", zero_division=0)),
        "weighted_f1": _r(f1_score(y, pred, average="weighted", zero_division=0)),
        "mcc": _mcc(y, pred),
        "per_class": _table(y, pred, names, labels=labels),
        "confusion_matrix": confusion_matrix(y, pred, labels=labels).tolist(),
    }


def _multilabel(y: np.ndarray, s: np.ndarray, names: list[str],
                thresholds: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    pred = (s >= thresholds[None, :]).astype(np.int64)
    y = y.astype(np.int64)
    return {
        "micro_f1": _r(f1_score(y, pred, average="micro", zero_division=0)),
        "macro_f1": _r(f1_score(y, pred, average="macro", zero_division=0)),
        "samples_f1": _r(f1_score(y, pred, average="samples", zero_division=0)),
        "subset_accuracy": _r(accuracy_score(y, pred)),
        "hamming_loss": _r(hamming_loss(y, pred)),
        "per_label": _table(y, pred, names, labels=None),
        "thresholds": [_r(t) for t in thresholds],
    }


def _regression(y_true: Any, scores: Any, names: list[str]) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    y, p = _array("y_true", y_true), _array("scores", scores)
    y, p = (y[:, None] if y.ndim == 1 else y), (p[:, None] if p.ndim == 1 else p)
    if y.ndim != 2 or y.shape != p.shape:
        raise ValueError(f"y_true and scores must have the same shape [n] or [n, t] for a "
                         f"regression task; got {np.shape(y_true)} and {np.shape(scores)}")
    if y.shape[0] < 2:
        raise ValueError(f"regression metrics need at least 2 rows; got {y.shape[0]}")
    _check_names(names, y.shape[1], "target")
    raw: dict[str, dict[str, float]] = {}
    for j, name in enumerate(names):
        a, b = y[:, j], p[:, j]
        raw[name] = {"mse": float(mean_squared_error(a, b)),
                     "mae": float(mean_absolute_error(a, b)),
                     "r2": float(r2_score(a, b)),
                     "pearson": _correlation("pearsonr", a, b),
                     "spearman": _correlation("spearmanr", a, b)}
    keys = ("mse", "mae", "r2", "pearson", "spearman")
    out: dict[str, Any] = {k: _r(np.mean([raw[n][k] for n in names])) for k in keys}
    out["per_target"] = {n: {k: _r(v) for k, v in row.items()} for n, row in raw.items()}
    return out


# --- helpers -----------------------------------------------------------------------------


def _r(value: Any) -> float:
    return round(float(value), _DIGITS)


def _mcc(y: np.ndarray, pred: np.ndarray) -> float:
    from sklearn.metrics import matthews_corrcoef

    with warnings.catch_warnings():
        # One label in both y and pred: sklearn warns about the confusion-matrix shape and
        # returns 0.0, which is the value we want.
        warnings.filterwarnings("ignore", message="A single label was found",
                                category=UserWarning)
        return _r(matthews_corrcoef(y, pred))


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
    return [{"label": name, "precision": _r(p[i]), "recall": _r(r[i]), "f1": _r(f[i]),
             "support": int(support[i])} for i, name in enumerate(names)]


def _task_name(task: Any) -> str:
    name = str(getattr(task, "value", task))
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    return name


def _array(what: str, value: Any) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{what} must be numeric; got dtype {arr.dtype}") from None
    arr = arr.astype(np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{what} is empty (shape {arr.shape}); at least one row is needed")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinite values")
    return arr


def _check_rows(y: np.ndarray, s: np.ndarray) -> None:
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but scores has {s.shape[0]}")


def _check_names(names: list[str], k: int, what: str) -> None:
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but the data have {k} "
                         f"{what}s")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct; got {names}")


def _check_binary_values(what: str, y: np.ndarray) -> None:
    bad = y[(y != 0) & (y != 1)]
    if bad.size:
        raise ValueError(f"{what} must hold only 0 and 1; got value {bad[0]:g}")


def _coerce_binary(y_true: Any, scores: Any, names: Sequence[str]) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Binary ``y_true`` ``[n]`` ints and positive-class scores ``[n]``, checked."""
    y, s = _array("y_true", y_true), _array("scores", scores)
    if y.ndim != 1:
        raise ValueError(f"y_true must have shape [n] for a binary task; got {y.shape}")
    if s.ndim == 2 and s.shape[1] in (1, 2):
        s = s[:, -1]
    if s.ndim != 1:
        raise ValueError(f"scores must have shape [n], [n, 1] or [n, 2] for a binary task; "
                         f"got {np.shape(scores)}")
    _check_rows(y, s)
    _check_binary_values("y_true", y)
    if len(names) != 2:
        raise ValueError(f"a binary task needs 2 class_names; got {len(names)}")
    return y.astype(np.int64), s


def _coerce_multiclass(y_true: Any, scores: Any,
                       names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y, s = _array("y_true", y_true), _array("scores", scores)
    if y.ndim != 1:
        raise ValueError(f"y_true must have shape [n] for a multiclass task; got {y.shape}")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape [n, k] for a multiclass task; got "
                         f"{s.shape}")
    _check_rows(y, s)
    _check_names(list(names), s.shape[1], "score column")
    bad = y[(y != np.round(y)) | (y < 0) | (y >= s.shape[1])]
    if bad.size:
        raise ValueError(f"y_true must hold class ids 0..{s.shape[1] - 1}; got value "
                         f"{bad[0]:g}")
    return y.astype(np.int64), s


def _coerce_multilabel(y_true: Any, scores: Any,
                       names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Multilabel 0/1 ``y_true`` ``[n, k]`` and scores ``[n, k]``, checked."""
    y, s = _array("y_true", y_true), _array("scores", scores)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true and scores must have the same shape [n, k] for a multilabel "
                         f"task; got {y.shape} and {s.shape}")
    _check_names(list(names), y.shape[1], "label column")
    _check_binary_values("y_true", y)
    return y, s


def _threshold_vector(thresholds: Any, k: int,
                      default: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """One threshold per label: ``None`` -> default, a float -> repeated, else ``k`` values."""
    if thresholds is None:
        return np.full(k, float(default))
    if hasattr(thresholds, "methods"):  # a labelwise.thresholds.Thresholds
        thresholds = thresholds.values
    arr = np.asarray(thresholds, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.ndim != 1 or arr.shape[0] != k:
        raise ValueError(f"thresholds must be one float or {k} value(s), one per label; got "
                         f"shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("thresholds contain NaN or infinite values")
    return arr

"""Decision thresholds for binary and multilabel tasks, tuned on validation data.

A binary task has one threshold on the positive-class score; a multilabel task has one per
label. :func:`tune_thresholds` picks each from the validation data by this rule.

**The rule.** A label is tuned only when the validation data hold at least
``min_positives`` (default 5) positive rows and at least one negative row for it. A tuned
label gets the threshold that maximises its F1 on the validation data, with method
``"tuned: max F1 on validation"``, or with ``metric="accuracy"`` its accuracy (the share of
rows whose 0/1 prediction for that label is right), with method
``"tuned: max accuracy on validation"``. Any other label keeps ``default`` (0.5), with method
``"default: only N positive(s) in validation"`` (fewer than ``min_positives`` positives) or
``"default: no negative rows in validation"`` (every row positive), and F1 ``None``.

How a tuned threshold is chosen: the candidates are the midpoints between consecutive
distinct scores (each gives the predictions of "score >= the upper of the two"), the lowest
score (every row positive) and ``default`` itself; all are clipped to [0.01, 0.99], and the
F1 of each is read off :func:`sklearn.metrics.precision_recall_curve` (accuracy is counted
from the sorted scores). The highest value wins; ties go to the candidate closest to
``default`` (0.5). Because ``default`` is a candidate, a tuned threshold never scores lower
on the validation data than the default does. ``Thresholds.f1`` holds the validation F1 at
each tuned threshold, whichever metric chose it.

:func:`apply_thresholds` turns scores into 0/1 predictions (``score >= threshold``), and
:func:`threshold_curve` gives precision, recall and F1 over a threshold grid for plots.
scikit-learn is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelwise.scoring._checks import (as_array, check_binary_values, check_rows, coerce_binary,
                                      coerce_multilabel, rounded, task_name, threshold_vector)

__all__ = [
    "Thresholds",
    "tune_thresholds",
    "threshold_curve",
    "apply_thresholds",
    "CLIP",
    "METRICS",
    "TUNED",
    "TUNED_ACCURACY",
]

CLIP = (0.01, 0.99)
TUNED = "tuned: max F1 on validation"
TUNED_ACCURACY = "tuned: max accuracy on validation"
METRICS = ("f1", "accuracy")
NO_NEGATIVES = "default: no negative rows in validation"
_TIE = 1e-12


def _few_positives(n: int) -> str:
    return f"default: only {n} positive(s) in validation"


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds, one per label (one in all for a binary task).

    Attributes:
        values: The thresholds: a row is positive when ``score >= value``.
        methods: How each was set (``"tuned: max F1 on validation"`` or a ``"default: ..."``
            reason, see the module docstring).
        f1: The validation F1 at each tuned threshold, ``None`` where the default was kept.
    """

    values: tuple[float, ...]
    methods: tuple[str, ...]
    f1: tuple[float | None, ...]

    def __post_init__(self) -> None:
        values = tuple(float(v) for v in self.values)
        methods = tuple(str(m) for m in self.methods)
        f1 = tuple(None if f is None else float(f) for f in self.f1)
        if not len(values) == len(methods) == len(f1):
            raise ValueError(f"values, methods and f1 must have the same length; got "
                             f"{len(values)}, {len(methods)} and {len(f1)}")
        if not all(np.isfinite(values)):
            raise ValueError(f"threshold values must be finite; got {list(values)}")
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "methods", methods)
        object.__setattr__(self, "f1", f1)

    def __len__(self) -> int:
        return len(self.values)

    def to_dict(self) -> dict[str, list[Any]]:
        """A JSON-serialisable dict: ``{"values": [...], "methods": [...], "f1": [...]}``."""
        return {"values": list(self.values), "methods": list(self.methods),
                "f1": list(self.f1)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Thresholds:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: A key is missing or the lengths differ.
        """
        missing = [k for k in ("values", "methods", "f1") if k not in data]
        if missing:
            raise ValueError(f"thresholds dict is missing key(s) {missing}")
        return cls(values=tuple(data["values"]), methods=tuple(data["methods"]),
                   f1=tuple(data["f1"]))


def tune_thresholds(
    *,
    task: str,
    y_true: np.ndarray,
    scores: np.ndarray,
    class_names: Sequence[str],
    min_positives: int = 5,
    default: float = 0.5,
    metric: str = "f1",
) -> Thresholds:
    """Tune one threshold per label to maximise ``metric`` (F1 or accuracy) on validation
    data (see the rule above).

    Args:
        task: ``"binary"`` or ``"multilabel"``.
        y_true: Binary: class ids ``[n]`` in {0, 1}. Multilabel: 0/1 ``[n, k]``.
        scores: Binary: positive-class probabilities ``[n]`` (or ``[n, 1]`` / ``[n, 2]``).
            Multilabel: probabilities ``[n, k]``.
        class_names: Binary: the 2 class names. Multilabel: the ``k`` label names.
        min_positives: Fewest positive rows a label needs to be tuned (at least 1).
        default: The threshold kept by labels that are not tuned, and the tie-breaker.
        metric: ``"f1"`` or ``"accuracy"``: what each label's threshold maximises.

    Returns:
        One threshold for a binary task, ``k`` for a multilabel task.

    Raises:
        ValueError: Another task, bad arguments, or shapes that do not fit the task.
    """
    name = task_name(task)
    if name not in ("binary", "multilabel"):
        raise ValueError("thresholds apply to binary and multilabel tasks")
    if isinstance(min_positives, bool) or not isinstance(min_positives, (int, np.integer)) \
            or min_positives < 1:
        raise ValueError(f"min_positives must be an int >= 1; got {min_positives!r}")
    if not 0.0 <= float(default) <= 1.0:
        raise ValueError(f"default must be in [0, 1]; got {default!r}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}; got {metric!r}")
    names = [str(c) for c in class_names]
    if name == "binary":
        y1, s1 = coerce_binary(y_true, scores, names)
        y, s = y1[:, None], s1[:, None]
    else:
        y, s = coerce_multilabel(y_true, scores, names)
    values: list[float] = []
    methods: list[str] = []
    f1s: list[float | None] = []
    for j in range(y.shape[1]):
        col = y[:, j].astype(np.int64)
        positives = int(col.sum())
        if positives < min_positives or positives == col.size:
            values.append(float(default))
            methods.append(_few_positives(positives) if positives < min_positives
                           else NO_NEGATIVES)
            f1s.append(None)
            continue
        threshold, f1 = _best_threshold(col, s[:, j], float(default), metric)
        values.append(threshold)
        methods.append(TUNED if metric == "f1" else TUNED_ACCURACY)
        f1s.append(rounded(f1))
    return Thresholds(values=tuple(values), methods=tuple(methods), f1=tuple(f1s))


def threshold_curve(y_true_1d: np.ndarray, scores_1d: np.ndarray, *,
                    points: int = 101) -> dict[str, list[float]]:
    """Precision, recall and F1 of one label over an even threshold grid from 0 to 1.

    Predictions are ``score >= threshold``; ``zero_division=0`` (no predicted positives
    gives precision 0, no true positives gives recall 0).

    Args:
        y_true_1d: 0/1 targets ``[n]``.
        scores_1d: Scores ``[n]``.
        points: Grid size (at least 2).

    Returns:
        ``{"threshold": [...], "precision": [...], "recall": [...], "f1": [...]}``, each
        ``points`` long, rounded to 6 digits.
    """
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ValueError(f"points must be an int >= 2; got {points!r}")
    y, s = as_array("y_true_1d", y_true_1d), as_array("scores_1d", scores_1d)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"y_true_1d and scores_1d must be 1-D; got {y.shape} and {s.shape}")
    check_rows(y, s)
    check_binary_values("y_true_1d", y)
    grid = np.linspace(0.0, 1.0, int(points))
    if y.sum() == 0:
        zeros = [0.0] * grid.size
        return {"threshold": [rounded(t) for t in grid], "precision": zeros, "recall": list(zeros),
                "f1": list(zeros)}
    precision, recall, f1 = _lookup(y.astype(np.int64), s, grid)
    return {"threshold": [rounded(t) for t in grid], "precision": [rounded(v) for v in precision],
            "recall": [rounded(v) for v in recall], "f1": [rounded(v) for v in f1]}


def apply_thresholds(scores: np.ndarray,
                     thresholds: Thresholds | Sequence[float] | float) -> np.ndarray:
    """0/1 int predictions, ``score >= threshold``.

    Args:
        scores: Binary: positive-class scores ``[n]``. Multilabel: ``[n, k]``.
        thresholds: One float (used for every label), one value per label, or
            :class:`Thresholds`.

    Returns:
        ``int64`` predictions of the shape of ``scores``.

    Raises:
        ValueError: Scores not 1-D or 2-D, or a threshold count that does not fit.
    """
    s = as_array("scores", scores)
    if s.ndim == 1:
        return (s >= threshold_vector(thresholds, 1)[0]).astype(np.int64)
    if s.ndim == 2:
        return (s >= threshold_vector(thresholds, s.shape[1])[None, :]).astype(np.int64)
    raise ValueError(f"scores must have shape [n] or [n, k]; got {s.shape}")


# --- helpers -----------------------------------------------------------------------------


def _lookup(y: np.ndarray, s: np.ndarray,
            thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of ``s >= theta`` for each theta, via the PR curve.

    ``y`` must hold at least one positive. ``precision_recall_curve`` (no intermediate
    points dropped) gives one point per distinct score ``u``: the predictions of
    ``s >= u``. Any theta predicts like the smallest distinct score ``>= theta``; a theta
    above every score predicts no positive (precision, recall and F1 0).
    """
    from sklearn.metrics import precision_recall_curve

    precision, recall, distinct = precision_recall_curve(y, s)
    precision, recall = precision[:-1], recall[:-1]  # drop the appended (1, 0) end point
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    idx = np.searchsorted(distinct, thetas, side="left")
    inside = idx < distinct.size
    idx = np.minimum(idx, distinct.size - 1)
    return (np.where(inside, precision[idx], 0.0), np.where(inside, recall[idx], 0.0),
            np.where(inside, f1[idx], 0.0))


def _accuracy(y: np.ndarray, s: np.ndarray, thetas: np.ndarray) -> np.ndarray:
    """Accuracy of ``s >= theta`` for each theta: right positives plus right negatives."""
    pos, neg = np.sort(s[y == 1]), np.sort(s[y == 0])
    true_pos = pos.size - np.searchsorted(pos, thetas, side="left")
    true_neg = np.searchsorted(neg, thetas, side="left")
    return (true_pos + true_neg) / y.size


def _best_threshold(y: np.ndarray, s: np.ndarray, default: float,
                    metric: str = "f1") -> tuple[float, float]:
    """The clipped threshold with the highest ``metric`` (ties: closest to ``default``),
    and the F1 there."""
    distinct = np.unique(s)
    candidates = np.concatenate([(distinct[:-1] + distinct[1:]) / 2, distinct[:1], [default]])
    candidates = np.unique(np.clip(candidates, *CLIP))
    _, _, f1 = _lookup(y, s, candidates)
    score = f1 if metric == "f1" else _accuracy(y, s, candidates)
    tied = np.flatnonzero(score >= score.max() - _TIE)
    best = tied[np.argmin(np.abs(candidates[tied] - default))]
    return float(candidates[best]), float(f1[best])

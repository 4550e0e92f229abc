"""Validators shared by :mod:`metrics` and :mod:`thresholds` (sklearn's ``utils.validation``).

Each turns user input into checked numpy arrays or raises a ``ValueError`` that names the
argument and what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["TASKS", "DEFAULT_THRESHOLD", "DIGITS", "rounded", "task_name", "as_array",
           "check_rows", "check_names", "check_binary_values", "coerce_binary",
           "coerce_multiclass", "coerce_multilabel", "threshold_vector"]

TASKS = ("binary", "multiclass", "multilabel", "regression")
DEFAULT_THRESHOLD = 0.5
DIGITS = 6


def rounded(value: Any) -> float:
    return round(float(value), DIGITS)


def task_name(task: Any) -> str:
    name = str(getattr(task, "value", task))
    if name not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    return name


def as_array(what: str, value: Any) -> np.ndarray:
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


def check_rows(y: np.ndarray, s: np.ndarray) -> None:
    if y.shape[0] != s.shape[0]:
        raise ValueError(f"y_true has {y.shape[0]} rows but scores has {s.shape[0]}")


def check_names(names: list[str], k: int, what: str) -> None:
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but the data have {k} "
                         f"{what}s")
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be distinct; got {names}")


def check_binary_values(what: str, y: np.ndarray) -> None:
    bad = y[(y != 0) & (y != 1)]
    if bad.size:
        raise ValueError(f"{what} must hold only 0 and 1; got value {bad[0]:g}")


def coerce_binary(y_true: Any, scores: Any, names: Sequence[str]) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Binary ``y_true`` ``[n]`` ints and positive-class scores ``[n]``, checked."""
    y, s = as_array("y_true", y_true), as_array("scores", scores)
    if y.ndim != 1:
        raise ValueError(f"y_true must have shape [n] for a binary task; got {y.shape}")
    if s.ndim == 2 and s.shape[1] in (1, 2):
        s = s[:, -1]
    if s.ndim != 1:
        raise ValueError(f"scores must have shape [n], [n, 1] or [n, 2] for a binary task; "
                         f"got {np.shape(scores)}")
    check_rows(y, s)
    check_binary_values("y_true", y)
    if len(names) != 2:
        raise ValueError(f"a binary task needs 2 class_names; got {len(names)}")
    return y.astype(np.int64), s


def coerce_multiclass(y_true: Any, scores: Any,
                       names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y, s = as_array("y_true", y_true), as_array("scores", scores)
    if y.ndim != 1:
        raise ValueError(f"y_true must have shape [n] for a multiclass task; got {y.shape}")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape [n, k] for a multiclass task; got "
                         f"{s.shape}")
    check_rows(y, s)
    check_names(list(names), s.shape[1], "score column")
    bad = y[(y != np.round(y)) | (y < 0) | (y >= s.shape[1])]
    if bad.size:
        raise ValueError(f"y_true must hold class ids 0..{s.shape[1] - 1}; got value "
                         f"{bad[0]:g}")
    return y.astype(np.int64), s


def coerce_multilabel(y_true: Any, scores: Any,
                       names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Multilabel 0/1 ``y_true`` ``[n, k]`` and scores ``[n, k]``, checked."""
    y, s = as_array("y_true", y_true), as_array("scores", scores)
    if y.ndim != 2 or y.shape != s.shape:
        raise ValueError(f"y_true and scores must have the same shape [n, k] for a multilabel "
                         f"task; got {y.shape} and {s.shape}")
    check_names(list(names), y.shape[1], "label column")
    check_binary_values("y_true", y)
    return y, s


def threshold_vector(thresholds: Any, k: int,
                      default: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """One threshold per label: ``None`` -> default, a float -> repeated, else ``k`` values."""
    if thresholds is None:
        return np.full(k, float(default))
    if hasattr(thresholds, "methods"):  # a labelwise.scoring.thresholds.Thresholds
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

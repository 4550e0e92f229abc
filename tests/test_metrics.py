"""compute_metrics: hand-computed small cases for every task and key, and every refusal."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from typing import Any

import numpy as np
import pytest

from labelwise.plan.contract import METRICS
from labelwise.labels.inference import Task
from labelwise.scoring.metrics import compute_metrics, primary_metrics
from labelwise.scoring.thresholds import Thresholds

BIN_Y = [0, 0, 1, 1, 1]
BIN_S = [0.1, 0.6, 0.4, 0.8, 0.9]


def strict(**kwargs: Any) -> dict[str, Any]:
    """compute_metrics with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compute_metrics(**kwargs)


def assert_plain(value: Any) -> None:
    """Only plain JSON types, no NaN, floats rounded to 6 digits."""
    if isinstance(value, dict):
        for v in value.values():
            assert_plain(v)
    elif isinstance(value, list):
        for v in value:
            assert_plain(v)
    else:
        assert value is None or type(value) in (int, float, str), type(value)
        if type(value) is float:
            assert math.isfinite(value) and value == round(value, 6)


# --- binary ------------------------------------------------------------------------------


def test_binary_hand_computed():
    # pred at 0.5 = [0, 1, 0, 1, 1]: TP 2, FP 1, FN 1, TN 1.
    m = strict(task="binary", y_true=BIN_Y, scores=BIN_S, class_names=["neg", "pos"])
    assert m["accuracy"] == 0.6
    assert m["precision"] == m["recall"] == m["f1"] == 0.666667
    assert m["mcc"] == 0.166667  # (2*1 - 1*1) / sqrt(3*3*2*2)
    assert m["roc_auc"] == 0.833333  # 5 of 6 (pos, neg) pairs ordered
    assert m["pr_auc"] == 0.916667  # 1/3 * 1 + 1/3 * 1 + 1/3 * 3/4
    assert m["threshold"] == 0.5
    assert m["confusion_matrix"] == [[1, 1], [1, 2]]
    assert m["per_class"] == [
        {"label": "neg", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        {"label": "pos", "precision": 0.666667, "recall": 0.666667, "f1": 0.666667,
         "support": 3},
    ]
    assert_plain(m)
    json.dumps(m, allow_nan=False)


def test_binary_threshold_and_two_column_scores():
    # pred at 0.35 = [0, 1, 1, 1, 1]: TP 3, FP 1, FN 0, TN 1.
    two = np.column_stack([1 - np.array(BIN_S), BIN_S])
    for thr in (0.35, [0.35], Thresholds((0.35,), ("tuned: max F1 on validation",), (1.0,))):
        m = strict(task="binary", y_true=BIN_Y, scores=two, class_names=["n", "p"],
                   thresholds=thr)
        assert (m["accuracy"], m["precision"], m["recall"]) == (0.8, 0.75, 1.0)
        assert m["f1"] == 0.857143 and m["mcc"] == 0.612372  # 6/7, 3/sqrt(24)
        assert m["threshold"] == 0.35 and m["confusion_matrix"] == [[1, 1], [0, 3]]
        assert m["roc_auc"] == 0.833333  # threshold-free


def test_binary_accepts_task_enum_and_one_column_scores():
    a = strict(task=Task.BINARY, y_true=BIN_Y, scores=np.array(BIN_S)[:, None],
               class_names=["n", "p"])
    assert a == strict(task="binary", y_true=BIN_Y, scores=BIN_S, class_names=["n", "p"])


def test_binary_single_class_gives_none_aucs_without_warnings():
    m = strict(task="binary", y_true=[0, 0, 0], scores=[0.2, 0.7, 0.1], class_names=["n", "p"])
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["accuracy"] == 0.666667
    assert m["f1"] == m["precision"] == m["recall"] == m["mcc"] == 0.0
    assert m["confusion_matrix"] == [[2, 1], [0, 0]]
    assert "roc_auc" not in primary_metrics(m)
    all_pos = strict(task="binary", y_true=[1, 1], scores=[0.9, 0.8], class_names=["n", "p"])
    assert all_pos["roc_auc"] is None and all_pos["f1"] == 1.0 and all_pos["mcc"] == 0.0


# --- multiclass --------------------------------------------------------------------------


def test_multiclass_hand_computed_with_absent_class():
    y = [0, 1, 2, 2, 0]
    pred = [0, 2, 2, 1, 0]  # class "d" (id 3) is in neither
    scores = np.eye(4)[pred] * 0.7 + 0.075
    m = strict(task="multiclass", y_true=y, scores=scores, class_names=list("abcd"))
    assert m["accuracy"] == m["micro_f1"] == 0.6
    assert m["macro_f1"] == 0.5  # (1 + 0 + 0.5) / 3: classes in y_true or predictions
    assert m["weighted_f1"] == 0.6  # (2*1 + 1*0 + 2*0.5) / 5
    assert m["mcc"] == 0.375  # (3*5 - 9) / sqrt((25 - 9) * (25 - 9))
    assert m["confusion_matrix"] == [[2, 0, 0, 0], [0, 0, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    assert m["per_class"] == [
        {"label": "a", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
        {"label": "b", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        {"label": "c", "precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        {"label": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    ]
    assert_plain(m)


def test_multiclass_prediction_of_a_class_absent_from_y_true():
    # Row 2 predicts "c", absent from y_true: it enters the macro average with F1 0.
    m = strict(task="multiclass", y_true=[0, 1, 1], scores=np.eye(3)[[0, 1, 2]],
               class_names=["a", "b", "c"])
    assert m["macro_f1"] == 0.555556  # (1 + 2/3 + 0) / 3
    assert m["confusion_matrix"][2] == [0, 0, 0] and m["per_class"][2]["support"] == 0


# --- multilabel --------------------------------------------------------------------------

ML_Y = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 0]]
ML_S = [[0.9, 0.2, 0.4], [0.3, 0.7, 0.1], [0.6, 0.4, 0.2], [0.1, 0.2, 0.8]]


def test_multilabel_hand_computed_default_threshold():
    # pred = [[1,0,0], [0,1,0], [1,0,0], [0,0,1]]
    m = strict(task="multilabel", y_true=np.array(ML_Y, dtype=float), scores=ML_S,
               class_names=["x", "y", "z"])
    assert m["micro_f1"] == 0.666667  # TP 3, FP 1, FN 2
    assert m["macro_f1"] == 0.555556  # (1 + 2/3 + 0) / 3
    assert m["samples_f1"] == 0.583333  # (2/3 + 1 + 2/3 + 0) / 4; row 3 has FP only
    assert m["subset_accuracy"] == 0.25
    assert m["hamming_loss"] == 0.25  # 3 of 12 cells
    assert m["thresholds"] == [0.5, 0.5, 0.5]
    assert m["per_label"] == [
        {"label": "x", "precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2},
        {"label": "y", "precision": 1.0, "recall": 0.5, "f1": 0.666667, "support": 2},
        {"label": "z", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
    ]
    assert_plain(m)


def test_multilabel_per_label_thresholds():
    # pred = [[1,0,1], [0,1,0], [1,1,0], [0,0,1]]
    m = strict(task="multilabel", y_true=ML_Y, scores=ML_S, class_names=["x", "y", "z"],
               thresholds=[0.5, 0.35, 0.3])
    assert m["micro_f1"] == 0.909091  # TP 5, FP 1, FN 0
    assert m["macro_f1"] == 0.888889  # (1 + 1 + 2/3) / 3
    assert m["samples_f1"] == 0.75
    assert m["subset_accuracy"] == 0.75 and m["hamming_loss"] == 0.083333
    assert m["thresholds"] == [0.5, 0.35, 0.3]
    same = strict(task="multilabel", y_true=ML_Y, scores=ML_S, class_names=["x", "y", "z"],
                  thresholds=0.3)
    assert same["thresholds"] == [0.3, 0.3, 0.3]


def test_multilabel_zero_division_for_empty_rows():
    m = strict(task="multilabel", y_true=[[1, 0], [0, 0]], scores=[[0.9, 0.1], [0.1, 0.1]],
               class_names=["x", "y"])
    assert m["samples_f1"] == 0.5  # the empty row (nothing true, nothing predicted) scores 0
    assert m["macro_f1"] == 0.5  # so does label y
    assert m["subset_accuracy"] == 1.0


# --- regression --------------------------------------------------------------------------


def test_regression_hand_computed_with_constant_predictions():
    y = [[1, 2], [2, 3], [3, 5]]
    p = [[1, 2], [1, 2], [1, 4]]  # target V predicted constant
    m = strict(task="regression", y_true=y, scores=p, class_names=["V", "A"])
    assert m["per_target"] == {
        "V": {"mse": 1.666667, "mae": 1.0, "r2": -1.5, "pearson": 0.0, "spearman": 0.0},
        "A": {"mse": 0.666667, "mae": 0.666667, "r2": 0.571429, "pearson": 0.944911,
              "spearman": 0.866025},
    }
    assert m["mse"] == 1.166667 and m["mae"] == 0.833333 and m["r2"] == -0.464286
    assert m["pearson"] == 0.472456 and m["spearman"] == 0.433013
    assert_plain(m)


def test_regression_one_dimensional():
    m = strict(task="regression", y_true=[1, 2, 3, 4], scores=[1, 2, 3, 5], class_names=["t"])
    assert (m["mse"], m["mae"], m["r2"]) == (0.25, 0.25, 0.8)
    assert m["pearson"] == 0.982708 and m["spearman"] == 1.0
    assert list(m["per_target"]) == ["t"]
    col = strict(task="regression", y_true=[[1], [2], [3], [4]], scores=[1, 2, 3, 5],
                 class_names=["t"])
    assert col == m


def test_regression_constant_target_is_finite():
    m = strict(task="regression", y_true=[2.0, 2.0, 2.0], scores=[1.0, 2.0, 3.0],
               class_names=["t"])
    assert m["pearson"] == 0.0 and m["spearman"] == 0.0 and m["r2"] == 0.0
    assert_plain(m)


# --- keys and primary_metrics ------------------------------------------------------------

CASES = {
    "binary": dict(y_true=BIN_Y, scores=BIN_S, class_names=["n", "p"]),
    "multiclass": dict(y_true=[0, 1, 2], scores=np.eye(3), class_names=["a", "b", "c"]),
    "multilabel": dict(y_true=ML_Y, scores=ML_S, class_names=["x", "y", "z"]),
    "regression": dict(y_true=[1.0, 2.0, 4.0], scores=[1.5, 2.0, 3.0], class_names=["t"]),
}


@pytest.mark.parametrize("task", list(CASES))
def test_keys_match_the_contract(task):
    m = strict(task=task, **CASES[task])
    wanted = set(METRICS[Task(task)]) - {"loss"}
    prim = primary_metrics(m)
    assert set(prim) == wanted
    assert all(type(v) is float for v in prim.values())
    prim_with_loss = primary_metrics({**m, "loss": 0.25})
    assert prim_with_loss["loss"] == 0.25
    json.dumps(m, allow_nan=False)


# --- refusals ----------------------------------------------------------------------------

REFUSALS = [
    (dict(task="binary", y_true=[0, 1, 1], scores=[0.1, 0.2], class_names=["n", "p"]),
     "y_true has 3 rows but scores has 2"),
    (dict(task="binary", y_true=[0, 1], scores=[[0.1, 0.2, 0.7]] * 2, class_names=["n", "p"]),
     "scores must have shape [n], [n, 1] or [n, 2] for a binary task; got (2, 3)"),
    (dict(task="binary", y_true=[0, 2], scores=[0.1, 0.2], class_names=["n", "p"]),
     "y_true must hold only 0 and 1; got value 2"),
    (dict(task="binary", y_true=[0, 1], scores=[0.1, 0.2], class_names=["a", "b", "c"]),
     "a binary task needs 2 class_names; got 3"),
    (dict(task="binary", y_true=[0, 1], scores=[0.1, 0.2], class_names=["n", "p"],
          thresholds=[0.5, 0.5]),
     "thresholds must be one float or 1 value(s), one per label; got shape (2,)"),
    (dict(task="binary", y_true=[0, 1], scores=[0.1, float("nan")], class_names=["n", "p"]),
     "scores contains NaN or infinite values"),
    (dict(task="binary", y_true=[], scores=[], class_names=["n", "p"]),
     "y_true is empty (shape (0,)); at least one row is needed"),
    (dict(task="multiclass", y_true=[0, 1], scores=np.eye(3)[:2], class_names=["a", "b"]),
     "class_names has 2 names but the data have 3 score columns"),
    (dict(task="multiclass", y_true=[0, 3], scores=np.eye(3)[:2], class_names="abc"),
     "y_true must hold class ids 0..2; got value 3"),
    (dict(task="multiclass", y_true=[0, 1], scores=[0.1, 0.9], class_names="ab"),
     "scores must have shape [n, k] for a multiclass task; got (2,)"),
    (dict(task="multilabel", y_true=[[1, 0]], scores=[[0.1, 0.2, 0.3]], class_names="xy"),
     "y_true and scores must have the same shape [n, k] for a multilabel task; got (1, 2) "
     "and (1, 3)"),
    (dict(task="multilabel", y_true=[[1, 0]], scores=[[0.1, 0.2]], class_names="xy",
          thresholds=[0.5, 0.5, 0.5]),
     "thresholds must be one float or 2 value(s), one per label; got shape (3,)"),
    (dict(task="multilabel", y_true=[[1, 0]], scores=[[0.1, 0.2]], class_names="xx"),
     "class_names must be distinct; got ['x', 'x']"),
    (dict(task="regression", y_true=[[1, 2], [3, 4]], scores=[1, 2], class_names="ab"),
     "y_true and scores must have the same shape [n] or [n, t] for a regression task; got "
     "(2, 2) and (2,)"),
    (dict(task="regression", y_true=[1, 2], scores=[1, 2], class_names=["a", "b"]),
     "class_names has 2 names but the data have 1 targets"),
    (dict(task="regression", y_true=[1], scores=[1], class_names=["a"]),
     "regression metrics need at least 2 rows; got 1"),
    (dict(task="ranking", y_true=[1], scores=[1], class_names=["a"]),
     "task must be one of binary, multiclass, multilabel, regression; got 'ranking'"),
]


@pytest.mark.parametrize(("kwargs", "message"), REFUSALS)
def test_refusals(kwargs, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        compute_metrics(**kwargs)


def test_modules_import_without_sklearn_or_scipy():
    code = ("import sys, labelwise.scoring.metrics, labelwise.scoring.thresholds\n"
            "print(','.join(m for m in ('sklearn', 'scipy', 'torch', 'transformers', 'optuna')"
            " if m in sys.modules))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == ""

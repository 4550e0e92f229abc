"""tune_thresholds, apply_thresholds, threshold_curve and the Thresholds record."""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from labelwise.scoring.metrics import compute_metrics
from labelwise.scoring.thresholds import Thresholds, apply_thresholds, threshold_curve, tune_thresholds

TUNED = "tuned: max F1 on validation"
# Positives score 0.3..0.7, negatives 0.1..0.45: at 0.5 three positives are missed.
Y10 = np.array([0] * 5 + [1] * 5)
S10 = np.array([0.1, 0.15, 0.2, 0.25, 0.45, 0.3, 0.35, 0.4, 0.6, 0.7])


def tune(**kwargs) -> Thresholds:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return tune_thresholds(**kwargs)


def test_binary_tuned_threshold_beats_the_default():
    t = tune(task="binary", y_true=Y10, scores=S10, class_names=["n", "p"])
    # Best: predict s >= 0.3 (TP 5, FP 1): the midpoint between 0.25 and 0.3.
    assert t.values == pytest.approx((0.275,))
    assert t.methods == (TUNED,)
    assert t.f1 == (0.909091,)
    at_default = compute_metrics(task="binary", y_true=Y10, scores=S10, class_names=["n", "p"])
    tuned = compute_metrics(task="binary", y_true=Y10, scores=S10, class_names=["n", "p"],
                            thresholds=t)
    assert at_default["f1"] == 0.571429  # TP 2, FP 0, FN 3
    assert tuned["f1"] == 0.909091 > at_default["f1"]
    two = np.column_stack([1 - S10, S10])
    assert tune(task="binary", y_true=Y10, scores=two, class_names=["n", "p"]) == t


def test_ties_go_to_the_threshold_closest_to_default():
    y = [0] * 5 + [1] * 5
    separable = [0.1, 0.2, 0.3, 0.35, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95]
    t = tune(task="binary", y_true=y, scores=separable, class_names=["n", "p"])
    assert t.values == (0.5,) and t.f1 == (1.0,)  # 0.5 is already optimal: kept
    # y = [1, 0, 0, 1]: "all positive" and "only the top row" both have F1 2/3.
    low = tune(task="binary", y_true=[1, 0, 0, 1], scores=[0.2, 0.35, 0.7, 0.95],
               class_names=["n", "p"], min_positives=1)
    assert low.values == (0.2,) and low.f1 == (0.666667,)  # 0.2 is nearer 0.5 than 0.825
    top = tune(task="binary", y_true=[1, 0, 0, 1], scores=[0.1, 0.35, 0.7, 0.9],
               class_names=["n", "p"], min_positives=1)
    assert top.values == pytest.approx((0.8,)) and top.f1 == (0.666667,)  # 0.8 beats 0.1


def test_thresholds_are_clipped():
    y = [0] * 5 + [1] * 5
    scores = [0.1, 0.2, 0.3, 0.4, 0.985] + [0.9999] * 5
    t = tune(task="binary", y_true=y, scores=scores, class_names=["n", "p"])
    assert t.values == (0.99,) and t.f1 == (1.0,)  # midpoint 0.99245, clipped


def test_multilabel_rule_and_fallbacks():
    rng = np.random.default_rng(0)
    n = 40
    common = (np.arange(n) % 2).astype(float)
    rare = np.zeros(n)
    rare[[3, 17]] = 1.0
    every = np.ones(n)
    none = np.zeros(n)
    y = np.column_stack([common, rare, every, none])
    scores = np.clip(y * 0.3 + rng.random(y.shape) * 0.6, 0, 1)
    t = tune(task="multilabel", y_true=y, scores=scores,
             class_names=["common", "rare", "every", "none"])
    assert t.methods == (
        TUNED,
        "default: only 2 positive(s) in validation",
        "default: no negative rows in validation",
        "default: only 0 positive(s) in validation",
    )
    assert t.values[1:] == (0.5, 0.5, 0.5) and t.f1[1:] == (None, None, None)
    assert 0.01 <= t.values[0] <= 0.99 and t.f1[0] is not None
    lower = tune(task="multilabel", y_true=y, scores=scores, min_positives=2,
                 class_names=["common", "rare", "every", "none"], default=0.4)
    assert lower.methods[1] == TUNED
    assert lower.values[3] == 0.4 and lower.methods[3].startswith("default: only 0")


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_other_tasks_are_refused(task):
    with pytest.raises(ValueError, match="^thresholds apply to binary and multilabel tasks$"):
        tune_thresholds(task=task, y_true=Y10, scores=S10, class_names=["n", "p"])


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(min_positives=0), "min_positives must be an int >= 1; got 0"),
    (dict(default=1.5), "default must be in [0, 1]; got 1.5"),
    (dict(scores=S10[:9]), "y_true has 10 rows but scores has 9"),
])
def test_bad_arguments(kwargs, message):
    args = dict(task="binary", y_true=Y10, scores=S10, class_names=["n", "p"]) | kwargs
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        tune_thresholds(**args)


# Scores on a coarse grid make ties and repeated values common.
_score = st.one_of(st.sampled_from([i / 20 for i in range(21)]),
                   st.floats(0.0, 1.0, allow_nan=False))


@st.composite
def multilabel_data(draw):
    n = draw(st.integers(6, 40))
    k = draw(st.integers(1, 3))
    y = np.array(draw(st.lists(st.lists(st.integers(0, 1), min_size=k, max_size=k),
                               min_size=n, max_size=n)), dtype=float)
    s = np.array(draw(st.lists(st.lists(_score, min_size=k, max_size=k), min_size=n,
                               max_size=n)))
    return y, s


def tuned_multilabel(data, min_positives, metric):
    """Targets, scores, the thresholds tuned for ``metric`` and their 0/1 predictions."""
    y, s = data
    names = [f"l{j}" for j in range(y.shape[1])]
    t = tune(task="multilabel", y_true=y, scores=s, class_names=names,
             min_positives=min_positives, metric=metric)
    return y, s, t, apply_thresholds(s, t)


@settings(max_examples=200, deadline=None)
@given(multilabel_data(), st.integers(1, 6))
def test_tuned_f1_is_never_below_f1_at_default(data, min_positives):
    y, s, t, pred = tuned_multilabel(data, min_positives, "f1")
    for j, method in enumerate(t.methods):
        positives = int(y[:, j].sum())
        if method != TUNED:
            assert positives < min_positives or positives == len(y)
            assert t.values[j] == 0.5 and t.f1[j] is None
            continue
        assert 0.01 <= t.values[j] <= 0.99
        tuned = f1_score(y[:, j], pred[:, j], zero_division=0)
        at_half = f1_score(y[:, j], (s[:, j] >= 0.5).astype(int), zero_division=0)
        assert tuned >= at_half - 1e-12
        assert t.f1[j] == pytest.approx(tuned, abs=1e-6)


def test_apply_thresholds_shapes():
    s1 = np.array([0.2, 0.5, 0.7])
    out = apply_thresholds(s1, 0.5)
    assert out.shape == (3,) and out.dtype == np.int64 and out.tolist() == [0, 1, 1]
    assert apply_thresholds(s1, [0.6]).tolist() == [0, 0, 1]
    s2 = np.array([[0.2, 0.9], [0.6, 0.4]])
    assert apply_thresholds(s2, 0.5).tolist() == [[0, 1], [1, 0]]
    assert apply_thresholds(s2, [0.1, 0.95]).tolist() == [[1, 0], [1, 0]]
    t = Thresholds((0.3, 0.3), (TUNED, TUNED), (1.0, 1.0))
    assert apply_thresholds(s2, t).shape == (2, 2)
    with pytest.raises(ValueError, match=re.escape("thresholds must be one float or 2 value")):
        apply_thresholds(s2, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match=re.escape("scores must have shape [n] or [n, k]")):
        apply_thresholds(np.zeros((2, 2, 2)), 0.5)


def test_thresholds_round_trip_and_checks():
    t = Thresholds((0.275, 0.5), (TUNED, "default: only 2 positive(s) in validation"),
                   (0.909091, None))
    d = json.loads(json.dumps(t.to_dict()))
    assert d == {"values": [0.275, 0.5],
                 "methods": [TUNED, "default: only 2 positive(s) in validation"],
                 "f1": [0.909091, None]}
    assert Thresholds.from_dict(d) == t and len(t) == 2
    with pytest.raises(ValueError, match="same length"):
        Thresholds((0.5,), (TUNED, TUNED), (None,))
    with pytest.raises(ValueError, match=re.escape("missing key(s) ['f1']")):
        Thresholds.from_dict({"values": [0.5], "methods": [TUNED]})


def test_threshold_curve():
    c = threshold_curve(Y10, S10, points=5)
    assert c["threshold"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    # >= 0.25: 5 pos + 2 neg; >= 0.5: 2 pos; >= 0.75 and 1.0: nothing predicted.
    assert c["precision"] == [0.5, 0.714286, 1.0, 0.0, 0.0]
    assert c["recall"] == [1.0, 1.0, 0.4, 0.0, 0.0]
    assert c["f1"] == [0.666667, 0.833333, 0.571429, 0.0, 0.0]
    assert all(len(v) == 101 for v in threshold_curve(Y10, S10).values())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        flat = threshold_curve([0, 0, 0], [0.1, 0.6, 0.9], points=3)
    assert flat["precision"] == flat["recall"] == flat["f1"] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="points must be an int >= 2"):
        threshold_curve(Y10, S10, points=1)


def test_thresholds_line_names_each_label_and_marks_defaults():
    from labelwise.cli.render import thresholds_line
    from labelwise.scoring.thresholds import Thresholds

    t = Thresholds((0.3123, 0.5), ("tuned: max F1 on validation",
                                   "default: only 2 positive(s) in validation"), (0.8, None))
    assert thresholds_line(t, ["joy", "grief"]) == (
        "thresholds (tuned on validation): joy 0.312, grief 0.500 (default) — 1 kept the "
        "default: too few positive or negative validation rows to tune")


# Three positives among eleven: F1 gains by calling every non-trivial score positive, accuracy
# by calling only the top one.
Y11 = np.array([1, 1, 1] + [0] * 8)
S11 = np.array([0.45, 0.3, 0.32, 0.4, 0.35, 0.33, 0.1, 0.1, 0.1, 0.1, 0.1])


def test_accuracy_metric_picks_the_most_accurate_threshold():
    f1 = tune(task="binary", y_true=Y11, scores=S11, class_names=["n", "p"], min_positives=1)
    acc = tune(task="binary", y_true=Y11, scores=S11, class_names=["n", "p"], min_positives=1,
               metric="accuracy")
    assert f1.values == pytest.approx((0.2,)) and f1.methods == (TUNED,)
    assert acc.values == pytest.approx((0.425,))
    assert acc.methods == ("tuned: max accuracy on validation",)
    assert acc.f1 == (0.5,)  # the F1 at the chosen threshold, whatever chose it
    right = [int(((S11 >= v) == Y11).sum()) for v in (f1.values[0], acc.values[0], 0.5)]
    assert right == [8, 9, 8]  # rows right: F1's threshold, accuracy's, the default


def test_unknown_threshold_metric_is_refused():
    with pytest.raises(ValueError, match=r"^metric must be one of \['f1', 'accuracy'\]; "
                                         r"got 'mcc'$"):
        tune_thresholds(task="binary", y_true=Y10, scores=S10, class_names=["n", "p"],
                        metric="mcc")


@settings(max_examples=200, deadline=None)
@given(multilabel_data(), st.integers(1, 6))
def test_tuned_accuracy_is_the_best_of_every_candidate(data, min_positives):
    y, s, t, pred = tuned_multilabel(data, min_positives, "accuracy")
    for j, method in enumerate(t.methods):
        if not method.startswith("tuned"):
            assert t.values[j] == 0.5
            continue
        assert method == "tuned: max accuracy on validation"
        col = y[:, j]
        tuned = float((pred[:, j] == col).mean())
        distinct = np.unique(s[:, j])
        candidates = np.clip(np.concatenate([(distinct[:-1] + distinct[1:]) / 2,
                                             distinct[:1], [0.5]]), 0.01, 0.99)
        best = max(float(((s[:, j] >= c) == col).mean()) for c in candidates)
        assert tuned == pytest.approx(best, abs=1e-12)
        assert t.f1[j] == pytest.approx(f1_score(col, pred[:, j], zero_division=0), abs=1e-6)

"""One decision rule: the same logits give the same decisions in evaluation and in predict.

Evaluation (what training reports and tunes thresholds on) and ``predict`` (what a saved
model serves) are fed the same logits for every head; the decisions each makes are caught
where they are made and compared row by row, and the metrics evaluation reports are
recomputed from predict's labels. Logits are drawn from a small grid so that ties (a score
exactly at its threshold, two equal class logits) come up often.
"""

from __future__ import annotations

from contextlib import contextmanager
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, mean_squared_error

import labelwise.scoring.evaluation as evaluation
import labelwise.scoring.metrics as metrics
from labelwise import infer_schema
from labelwise.plan.contract import ContractOptions, derive_contract, to_targets
from labelwise.scoring.thresholds import Thresholds
from labelwise.training.predict import _decide

BINARY = infer_schema(["neg", "pos", "pos", "neg"])
HEADS = {
    "softmax multiclass": (infer_schema(["a", "b", "c", "a"]), ContractOptions()),
    "one-logit binary": (BINARY, ContractOptions(binary_head="one_logit")),
    "two-logit binary": (BINARY, ContractOptions()),
    "multilabel": (infer_schema([["x", "y"], ["y"], ["z"], []]), ContractOptions()),
    "regression": (infer_schema({"V": [1.5, 2.5], "A": [3.5, 1.25]}, columns=["V", "A"]),
                   ContractOptions()),
}
GRID = [-3.0, -1.0, -0.25, 0.0, 0.0, 0.25, 1.0, 3.0]  # 0.0 twice: ties at p = 0.5
THRESHOLD = st.sampled_from([0.01, 0.2, 0.5, 0.5, 0.62245935, 0.8, 0.99])


def _contract(head: str):
    schema, options = HEADS[head]
    return schema, derive_contract(schema, options)


def _encoded(schema, rnd: np.random.Generator, n: int) -> np.ndarray:
    task = schema.task.value
    if task == "multilabel":
        return rnd.integers(0, 2, size=(n, schema.num_labels)).astype(np.float32)
    if task == "regression":
        return rnd.normal(size=(n, schema.num_labels)).astype(np.float32)
    return rnd.integers(0, schema.num_labels, size=n)


@contextmanager
def _evaluation_decisions():
    """What evaluation decides: the output of every ``decide`` call metrics make, and the
    scores metrics read (a regression head's decisions are its scores)."""
    seen: dict[str, list[np.ndarray]] = {"decided": [], "scores": []}
    real_decide, real_metrics = metrics.decide, evaluation.compute_metrics

    def decide(*args, **kwargs):
        out = real_decide(*args, **kwargs)
        seen["decided"].append(np.asarray(out))
        return out

    def compute_metrics(**kwargs):
        seen["scores"].append(np.asarray(kwargs["scores"]))
        return real_metrics(**kwargs)

    with mock.patch.object(metrics, "decide", decide), \
            mock.patch.object(evaluation, "compute_metrics", compute_metrics):
        yield seen


def _check_same(head, logits, encoded, *, tune, given_thresholds, threshold_metric="f1"):
    schema, contract = _contract(head)
    targets = to_targets(encoded, contract)
    thresholds = None
    if given_thresholds is not None:
        width = 1 if schema.task.value == "binary" else schema.num_labels
        values = tuple(given_thresholds[:width])
        thresholds = Thresholds(values, ("given",) * width, (None,) * width)
    with _evaluation_decisions() as seen:
        reported, used = evaluation.evaluate_logits(
            logits, targets, contract=contract, schema=schema, thresholds=thresholds,
            tune=tune, threshold_metric=threshold_metric)
    # predict applies what the model dir saves: the thresholds evaluation used, else 0.5
    served = used.values if used is not None else (
        (0.5,) * (1 if schema.task.value == "binary" else schema.num_labels)
        if contract.uses_thresholds else None)
    preds = _decide(schema, contract, logits, served)
    if schema.task.value == "regression":
        assert seen["decided"] == []
        assert preds.labels == schema.decode(seen["scores"][-1])
        np.testing.assert_array_equal(preds.scores, seen["scores"][-1])
        y = encoded
        # reported metrics are rounded to 6 decimals of a float32 sum: relative tolerance
        assert reported["mse"] == pytest.approx(np.mean(
            [mean_squared_error(y[:, j].astype(np.float64), preds.scores[:, j].astype(np.float64))
             for j in range(y.shape[1])]), rel=1e-6, abs=1e-6)
        return
    assert len(seen["decided"]) == 1
    assert preds.labels == schema.decode(seen["decided"][0])
    predicted = schema.encode(preds.labels)
    key = "subset_accuracy" if schema.task.value == "multilabel" else "accuracy"
    assert reported[key] == pytest.approx(accuracy_score(encoded, predicted), abs=1e-6)
    if contract.uses_thresholds:
        assert preds.thresholds == tuple(served)
        shown = reported["threshold"] if schema.task.value == "binary" else \
            reported["thresholds"]
        assert np.allclose(shown, served[0] if schema.task.value == "binary" else served,
                           atol=1e-6)


def _logits(head: str):
    _, contract = _contract(head)
    width = contract.num_labels
    row = st.lists(st.sampled_from(GRID), min_size=width, max_size=width)
    return st.lists(row, min_size=8, max_size=24).map(lambda r: np.asarray(r, np.float32))


@pytest.mark.parametrize("head", list(HEADS))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), seed=st.integers(0, 2**16), tune=st.booleans(),
       metric=st.sampled_from(["f1", "accuracy"]))
def test_evaluation_and_predict_decide_alike_with_tuned_or_default_thresholds(
        head, data, seed, tune, metric):
    logits = data.draw(_logits(head))
    encoded = _encoded(HEADS[head][0], np.random.default_rng(seed), len(logits))
    _check_same(head, logits, encoded, tune=tune, given_thresholds=None,
                threshold_metric=metric)


@pytest.mark.parametrize("head", ["one-logit binary", "two-logit binary", "multilabel"])
@settings(max_examples=25, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**16),
       thresholds=st.lists(THRESHOLD, min_size=3, max_size=3))
def test_evaluation_and_predict_decide_alike_at_given_thresholds(head, data, seed,
                                                                 thresholds):
    logits = data.draw(_logits(head))
    encoded = _encoded(HEADS[head][0], np.random.default_rng(seed), len(logits))
    _check_same(head, logits, encoded, tune=False, given_thresholds=thresholds)


@pytest.mark.parametrize("head", ["one-logit binary", "two-logit binary", "multilabel"])
def test_a_score_exactly_at_its_threshold_is_positive_in_both(head):
    # logit 0 gives p = 0.5 (one-logit and multilabel: sigmoid; two-logit: equal logits)
    schema, contract = _contract(head)
    logits = np.zeros((4, contract.num_labels), np.float32)
    encoded = _encoded(schema, np.random.default_rng(0), 4)
    _check_same(head, logits, encoded, tune=False, given_thresholds=[0.5, 0.5, 0.5])
    preds = _decide(schema, contract, logits, (0.5,) * (1 if contract.num_labels < 3 else 3))
    expected = ["pos"] * 4 if schema.task.value == "binary" else [("x", "y", "z")] * 4
    assert preds.labels == expected

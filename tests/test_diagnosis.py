"""The findings after training, from numbers alone (no model): labelwise.scoring.diagnosis and
the loss of the label prior in labelwise.scoring.baseline."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from labelwise import infer_schema
from labelwise.errors import LabelwiseError
from labelwise.plan.contract import ContractOptions, derive_contract, to_targets
from labelwise.scoring.baseline import contract_loss, prior_logits, prior_loss
from labelwise.scoring.diagnosis import (CODES, Diagnosis, Settings, brief, diagnose,
                                         final_train_loss)
from labelwise.scoring.thresholds import Thresholds

rng = np.random.default_rng(0)


def _labels(task, n, seed=0):
    r = np.random.default_rng(seed)
    if task == "multiclass":
        return list(r.choice(["a", "b", "c"], size=n, p=[0.6, 0.3, 0.1]))
    if task == "binary":
        return list(r.choice(["neg", "pos"], size=n, p=[0.8, 0.2]))
    return [[name for name, p in (("x", 0.3), ("y", 0.6), ("z", 0.1)) if r.random() < p]
            for _ in range(n)]


def _setup(task, opts=None, n=200, seed=0):
    """A contract and its training targets for ``task`` with ``opts``."""
    if task == "regression":
        r = np.random.default_rng(seed)
        values = {"V": r.normal(2, 1, n).tolist(), "A": r.normal(0, 3, n).tolist()}
        schema = infer_schema(values, columns=["V", "A"])
        encoded, counts = schema.encode(values), {}
    else:
        labels = _labels(task, n, seed)
        schema = infer_schema(labels)
        encoded = schema.encode(labels)
        counts = Counter(x for row in labels for x in (row if isinstance(row, list) else [row]))
    contract = derive_contract(schema, ContractOptions(**(opts or {})), class_counts=counts,
                               n_rows=n)
    return schema, contract, to_targets(encoded, contract)


VARIANTS = [("multiclass", {}), ("multiclass", {"class_weights": "balanced"}),
            ("multiclass", {"class_weights": "balanced", "label_smoothing": 0.2}),
            ("multiclass", {"label_smoothing": 0.1}), ("binary", {}),
            ("binary", {"loss": "focal"}), ("binary", {"binary_head": "one_logit"}),
            ("binary", {"binary_head": "one_logit", "class_weights": "balanced"}),
            ("binary", {"binary_head": "one_logit", "pos_weight": "balanced"}),
            ("binary", {"binary_head": "one_logit", "loss": "focal"}), ("multilabel", {}),
            ("multilabel", {"pos_weight": "balanced"}),
            ("multilabel", {"label_smoothing": 0.1, "label_smoothing_mode": "bce"}),
            ("multilabel", {"loss": "focal"}), ("regression", {})]


# --- the loss and the prior ----------------------------------------------------------------


@pytest.mark.parametrize(("task", "opts"), VARIANTS)
def test_numpy_loss_is_the_training_loss(task, opts):
    torch = pytest.importorskip("torch")
    from labelwise.training.losses import make_loss

    _, contract, y = _setup(task, opts)
    logits = rng.normal(size=(len(y), contract.num_labels)).astype(np.float32)
    expected = make_loss(contract)(torch.tensor(logits), torch.tensor(y)).item()
    assert contract_loss(logits, y, contract) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("task", "opts"), VARIANTS)
def test_prior_logits_are_the_best_constant(task, opts):
    from scipy.optimize import minimize

    _, contract, y = _setup(task, opts)
    best = prior_logits(y, contract)
    loss, _ = prior_loss(y, contract)
    assert loss == pytest.approx(contract_loss(np.tile(best, (len(y), 1)), y, contract))
    for start in range(3):
        x0 = best + np.random.default_rng(start).normal(scale=0.5, size=best.shape)
        found = minimize(lambda z: contract_loss(np.tile(z, (len(y), 1)), y, contract), x0,
                         method="Nelder-Mead", options={"xatol": 1e-9, "fatol": 1e-12,
                                                        "maxiter": 20000})
        assert found.fun >= loss - 1e-6


def test_plain_prior_loss_is_the_entropy_of_the_label_frequencies():
    _, contract, y = _setup("multiclass")
    p = np.bincount(y) / len(y)
    assert prior_loss(y, contract)[0] == pytest.approx(-(p * np.log(p)).sum(), rel=1e-12)
    _, weighted, y = _setup("multiclass", {"class_weights": "balanced"})
    assert prior_loss(y, weighted)[0] == pytest.approx(math.log(3), rel=1e-9)
    _, reg, y = _setup("regression")
    variance = np.var(y.astype(np.float64), axis=0).mean()
    assert prior_loss(y, reg)[0] == pytest.approx(variance, rel=1e-9)


# --- the training log ------------------------------------------------------------------------


def test_final_train_loss_averages_the_last_fifth_of_the_steps():
    log = [{"loss": 1.0, "step": 10}, {"loss": 0.8, "step": 20}, {"eval_loss": 5.0, "step": 20},
           {"loss": 0.6, "step": 30}, {"loss": 0.4, "step": 40}, {"loss": 0.2, "step": 50},
           {"train_loss": 0.6, "step": 50}]
    loss, rows = final_train_loss(log, 16)
    assert loss == pytest.approx(0.2) and rows == 10 * 16  # steps 40-50
    log = [{"loss": 1.0, "step": 10}, {"loss": 0.5, "step": 100}]
    assert final_train_loss(log, 8) == (0.5, 90 * 8)
    assert final_train_loss([{"eval_loss": 1.0, "step": 3}], 8) is None
    assert final_train_loss([{"loss": float("nan"), "step": 3}], 8) is None


# --- the findings ----------------------------------------------------------------------------


def _multiclass(n_train=(300, 24, 300), n_valid=(80, 6, 80), weights=None):
    names = ["negative", "neutral", "positive"]
    train = [n for n, k in zip(names, n_train, strict=True) for _ in range(k)]
    schema = infer_schema(train)
    counts = Counter(train)
    contract = derive_contract(schema, ContractOptions(class_weights=weights),
                               class_counts=counts, n_rows=len(train))
    y_train = to_targets(schema.encode(train), contract)
    valid = [n for n, k in zip(names, n_valid, strict=True) for _ in range(k)]
    y_valid = to_targets(schema.encode(valid), contract)
    return schema, contract, y_train, y_valid


def _logits_for(pred, k, margin=4.0):
    out = np.zeros((len(pred), k))
    out[np.arange(len(pred)), pred] = margin
    return out


def _codes(d):
    return [f.code for f in d.findings]


def test_a_class_never_predicted_names_its_counts_and_the_fixes():
    schema, contract, y_train, y_valid = _multiclass()
    pred = np.where(y_valid == 1, 0, y_valid)  # neutral rows go to negative
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(pred, 3), train_targets=y_train,
                 settings=Settings(epochs=2))
    assert _codes(d) == ["LW601"]
    f = d.findings[0]
    assert f.message == ("class 'neutral' never predicted on validation (6 validation rows, "
                         "24 training rows)")
    assert f.where.split == "valid" and f.where.value == "neutral"
    assert "train.class_weights: balanced" in f.fix and "train.epochs: 4, now 2" in f.fix
    assert d.checks["predicted"] == {"negative": 86, "neutral": 0, "positive": 80}
    assert d.checks["recall"]["neutral"] == 0.0
    # with class weights set, the fix no longer suggests them
    schema, weighted, y_train, y_valid = _multiclass(weights="balanced")
    d = diagnose(contract=weighted, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(pred, 3), train_targets=y_train)
    assert "class_weights" not in d.findings[0].fix


def test_one_training_row_and_recall_zero():
    schema, contract, y_train, y_valid = _multiclass(n_train=(300, 1, 300))
    pred = y_valid.copy()
    neutral = np.flatnonzero(y_valid == 1)
    pred[neutral] = 0
    pred[:3] = 1  # predicted for three negative rows, none of its own
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(pred, 3), train_targets=y_train)
    assert _codes(d) == ["LW602"]
    assert d.findings[0].message == ("class 'neutral' has recall 0 on validation: predicted "
                                     "for 3 rows, none of its 6 (1 training row)")


def test_multilabel_never_predicted_suggests_pos_weight_and_the_f1_threshold_metric():
    labels = [["x"], ["y"], ["x", "y"], ["z"]] * 30
    schema = infer_schema(labels)
    contract = derive_contract(schema, ContractOptions(), class_counts=Counter(
        x for row in labels for x in row), n_rows=len(labels))
    y = to_targets(schema.encode(labels), contract)
    logits = np.where(y > 0, 3.0, -3.0)
    logits[:, 2] = -5.0  # 'z' never reaches its threshold
    thresholds = Thresholds((0.5, 0.5, 0.5), ("default",) * 3, (None,) * 3)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=thresholds,
                 settings=Settings(threshold_metric="accuracy"))
    assert _codes(d) == ["LW601"]
    assert d.findings[0].message.startswith("label 'z' never predicted on validation (30 ")
    assert "train.pos_weight: balanced" in d.findings[0].fix
    assert "train.threshold_metric: f1" in d.findings[0].fix


def test_many_unpredicted_classes_make_one_finding():
    names = [f"c{i}" for i in range(8)]
    train = [n for n in names for _ in range(20)] + ["c0"] * 200
    schema = infer_schema(train)
    contract = derive_contract(schema, ContractOptions(), class_counts=Counter(train),
                               n_rows=len(train))
    y = to_targets(schema.encode(train), contract)
    pred = np.where(np.isin(y, [0, 1]), y, 0)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=_logits_for(pred, 8), train_targets=y)
    assert _codes(d) == ["LW601", "LW606"]  # confidently wrong: worse than the prior
    assert d.findings[0].message == "6 classes never predicted on validation"
    assert "'c2' (20)" in d.findings[0].where.detail


def test_a_collapsed_classifier_is_one_finding_naming_the_missing_classes():
    schema, contract, y_train, y_valid = _multiclass(n_valid=(30, 30, 30))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(np.full(90, 2), 3), train_targets=y_train)
    assert _codes(d) == ["LW603", "LW606"]
    assert d.findings[0].message == ("collapsed: the model predicts class 'positive' for 100% "
                                     "of validation rows (90 of 90) while 33% of them hold "
                                     "it; 'negative', 'neutral' never predicted")
    # predicting the class that (nearly) every row holds is not a collapse
    schema, contract, y_train, y_valid = _multiclass(n_valid=(2, 0, 98))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(np.full(100, 2), 3), train_targets=y_train)
    assert "LW603" not in _codes(d) and "LW601" in _codes(d)


def test_a_collapsed_multilabel_model_predicts_one_label_set():
    labels = [["x"], ["y"], ["x", "y"], []] * 10
    schema = infer_schema(labels)
    contract = derive_contract(schema, ContractOptions(), class_counts=Counter(
        x for row in labels for x in row), n_rows=len(labels))
    y = to_targets(schema.encode(labels), contract)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=np.full(y.shape, -4.0), train_targets=y)
    assert "predicts no label for 100% of validation rows" in d.findings.by_code(
        "LW603")[0].message


def test_a_collapsed_regressor():
    _, contract, y = _setup("regression", n=100)
    names = ["V", "A"]
    flat = np.tile(y.mean(axis=0), (len(y), 1)) + rng.normal(scale=0.01, size=y.shape)
    d = diagnose(contract=contract, class_names=names, valid_targets=y, valid_logits=flat,
                 train_targets=y)
    assert _codes(d).count("LW604") == 2 and "LW606" in _codes(d)
    assert d.findings[0].where.column in names
    good = y + rng.normal(scale=0.1, size=y.shape)
    d = diagnose(contract=contract, class_names=names, valid_targets=y, valid_logits=good,
                 train_targets=y)
    assert _codes(d) == []


def test_learned_nothing_against_the_exact_prior_loss():
    schema, contract, y_train, y_valid = _multiclass()
    prior, _ = prior_loss(y_train, contract)
    logits = np.tile(prior_logits(y_train, contract), (len(y_valid), 1))
    flat = [{"loss": prior + 0.003 * (-1) ** i, "step": 10 * i} for i in range(1, 9)]
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=logits, train_targets=y_train, log_history=flat,
                 rows_per_step=16, settings=Settings(learning_rate=5e-5))
    assert {"LW605", "LW606"} <= set(_codes(d))
    f = d.findings.by_code("LW605")[0]
    assert f.message.startswith("learned nothing: the training loss ended at ")
    assert f.message.endswith(f" {prior:.4f}, the loss of predicting the training label prior "
                              "for every row")
    assert "raise train.learning_rate (now 5e-05)" in f.fix
    assert d.checks["prior_loss"] == pytest.approx(prior, abs=1e-6)
    # a loss well below the prior learned something
    fell = [{"loss": prior * (1 - 0.1 * i), "step": 10 * i} for i in range(1, 9)]
    good = _logits_for(y_valid, 3)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=good, train_targets=y_train, log_history=fell, rows_per_step=16)
    assert _codes(d) == []


def test_validation_at_the_prior_after_the_training_loss_fell_points_at_overfitting():
    schema, contract, y_train, y_valid = _multiclass()
    prior, _ = prior_loss(y_train, contract)
    fell = [{"loss": prior * (1 - 0.1 * i), "step": 10 * i} for i in range(1, 9)]
    wrong = _logits_for((y_valid + 1) % 3, 3, margin=2.0)  # confidently wrong
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=wrong, train_targets=y_train, log_history=fell, rows_per_step=16)
    f = d.findings.by_code("LW606")[0]
    assert "no lower than" in f.message and "stop earlier" in f.fix
    assert "LW605" not in _codes(d)


def test_thresholds_at_the_edge_of_their_range_or_below_every_score():
    labels = [["x"], ["y"], ["x", "y"], []] * 10
    schema = infer_schema(labels)
    contract = derive_contract(schema, ContractOptions(), class_counts=Counter(
        x for row in labels for x in row), n_rows=len(labels))
    y = to_targets(schema.encode(labels), contract)
    logits = np.where(y > 0, 2.0, -2.0)
    tuned = "tuned: max F1 on validation"
    edge = Thresholds((0.01, 0.5), (tuned, tuned), (0.6, 1.0))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=edge)
    assert _codes(d) == ["LW607"]
    assert d.findings[0].message == ("the threshold of 'x' was tuned to 0.010, the bottom of "
                                     "its range [0.01, 0.99]")
    below = Thresholds((0.5, 0.1), (tuned, tuned), (1.0, 0.6))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=below)
    assert d.findings.by_code("LW607")[0].message == (
        "the threshold of 'y' was tuned to 0.100, below every validation score: 'y' is "
        "predicted for every row")
    kept = Thresholds((0.01, 0.99), ("default: only 2 positive(s) in validation",) * 2,
                      (None, None))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=kept)
    assert "LW607" not in _codes(d)


def test_overfitting_against_a_sample_of_training_rows():
    schema, contract, y_train, y_valid = _multiclass(n_valid=(60, 60, 60))
    perfect = _logits_for(y_train, 3)
    half = y_valid.copy()
    half[::2] = (half[::2] + 1) % 3
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(half, 3), train_targets=y_train,
                 objective=("macro_f1", "maximize"), train_sample=(perfect, y_train))
    f = d.findings.by_code("LW608")[0]
    assert f.message.startswith("overfitting: macro_f1 is 1.000 on 624 training rows but 0.")
    assert "train.early_stopping_patience" in f.fix
    # a small gap is noise, not overfitting
    close = y_train.copy()
    close[::10] = (close[::10] + 1) % 3
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(y_valid, 3), train_targets=y_train,
                 objective=("macro_f1", "maximize"), train_sample=(_logits_for(close, 3),
                                                                   y_train))
    assert "LW608" not in _codes(d)
    # a minimised objective compares the loss's skill over the prior
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(half, 3, margin=3.0), train_targets=y_train,
                 objective=("loss", "minimize"), train_sample=(_logits_for(y_train, 3, 9.0),
                                                               y_train))
    assert d.findings.by_code("LW608")[0].message.startswith("overfitting: the loss is 0.0")


def test_a_binary_model_that_predicts_every_row_positive():
    schema, contract, y = _setup("binary", n=100)
    logits = np.zeros((100, 2))
    logits[:, 1] = 0.3 + rng.normal(scale=1e-3, size=100)
    tuned = Thresholds((0.01,), ("tuned: max F1 on validation",), (0.3,))
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=tuned)
    assert {"LW603", "LW607"} <= set(_codes(d))
    assert "'neg' never predicted" in d.findings.by_code("LW603")[0].message


def test_round_trip_and_brief():
    schema, contract, y_train, y_valid = _multiclass()
    pred = np.where(y_valid == 1, 0, y_valid)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y_valid,
                 valid_logits=_logits_for(pred, 3), train_targets=y_train)
    saved = json.loads(json.dumps(d.to_dict()))
    again = Diagnosis.from_dict(saved)
    assert again.findings == d.findings and again.checks == saved["checks"]
    assert brief(d.findings) == brief(saved["findings"]) == d.findings[0].message
    assert brief([]) == "" and Diagnosis.from_dict(None).findings == ()
    many = [{"message": m} for m in "abc"]
    assert brief(many) == "a; b; 1 more"


@settings(max_examples=40, deadline=None)
@given(task=st.sampled_from(["binary", "multiclass", "multilabel", "regression"]),
       seed=st.integers(0, 10_000), n=st.integers(2, 60), scale=st.floats(0.0, 20.0))
def test_any_outputs_give_json_findings_with_known_codes(task, seed, n, scale):
    try:
        schema, contract, y = _setup(task, n=n, seed=seed)
    except LabelwiseError:
        assume(False)  # one class only: no schema to judge
    r = np.random.default_rng(seed)
    logits = r.normal(scale=scale, size=(n, contract.num_labels))
    log = [{"loss": float(r.random()), "step": i + 1} for i in range(r.integers(0, 5))]
    thresholds = None
    if contract.uses_thresholds:
        k = 1 if task == "binary" else contract.num_labels
        thresholds = Thresholds(tuple(r.uniform(0.01, 0.99, k)),
                                ("tuned: max F1 on validation",) * k, (0.5,) * k)
    d = diagnose(contract=contract, class_names=schema.label_names, valid_targets=y,
                 valid_logits=logits, train_targets=y, thresholds=thresholds,
                 log_history=log, rows_per_step=8, objective=("loss", "minimize"),
                 train_sample=(logits, y))
    assert set(_codes(d)) <= set(CODES)
    json.dumps(d.to_dict())
    assert all(f.level == "warning" and f.message and f.fix for f in d.findings)

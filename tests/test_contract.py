"""derive_contract: a table over every (task x option) pair, and every refusal."""

from __future__ import annotations

import re

import pytest

from labelwise import infer_schema
from labelwise.plan.contract import ContractOptions, derive_contract
from labelwise.errors import ContractError

SCHEMAS = {
    "binary": infer_schema(["neg", "pos", "pos"]),
    "multiclass": infer_schema(["a", "b", "c"]),
    "multilabel": infer_schema([["x", "y"], ["y"], []]),
    "regression": infer_schema({"V": [1.5, 2.5], "A": [3.5, 1.25]}, columns=["V", "A"]),
}
COUNTS = {
    "binary": ({"neg": 1, "pos": 3}, 4),
    "multiclass": ({"a": 2, "b": 1, "c": 1}, 4),
    "multilabel": ({"x": 1, "y": 3}, 4),
    "regression": ({}, 2),
}
# (task, options) -> expected (num_labels, problem_type, loss, dtype, shape, activation, rule)
TABLE = [
    ("binary", {}, (2, "single_label_classification", "cross_entropy", "int64", "[B]",
                    "softmax", "threshold")),
    ("binary", {"binary_head": "one_logit"}, (1, "multi_label_classification",
                                              "bce_with_logits", "float32", "[B, 1]",
                                              "sigmoid", "threshold")),
    ("binary", {"loss": "focal"}, (2, "single_label_classification", "focal", "int64", "[B]",
                                   "softmax", "threshold")),
    ("binary", {"binary_head": "one_logit", "loss": "focal"},
     (1, "multi_label_classification", "focal", "float32", "[B, 1]", "sigmoid", "threshold")),
    ("binary", {"label_smoothing": 0.1}, (2, "single_label_classification", "cross_entropy",
                                          "int64", "[B]", "softmax", "threshold")),
    ("multiclass", {}, (3, "single_label_classification", "cross_entropy", "int64", "[B]",
                        "softmax", "argmax")),
    ("multiclass", {"class_weights": "balanced"}, (3, "single_label_classification",
                                                   "cross_entropy", "int64", "[B]", "softmax",
                                                   "argmax")),
    ("multilabel", {}, (2, "multi_label_classification", "bce_with_logits", "float32",
                        "[B, K]", "sigmoid", "per_label_thresholds")),
    ("multilabel", {"label_smoothing": 0.1, "label_smoothing_mode": "bce"},
     (2, "multi_label_classification", "bce_with_logits", "float32", "[B, K]", "sigmoid",
      "per_label_thresholds")),
    ("multilabel", {"loss": "focal", "focal_gamma": 1.5},
     (2, "multi_label_classification", "focal", "float32", "[B, K]", "sigmoid",
      "per_label_thresholds")),
    ("regression", {}, (2, "regression", "mse", "float32", "[B, T]", "identity", "identity")),
]


@pytest.mark.parametrize(("task", "opts", "expected"), TABLE)
def test_contract_table(task, opts, expected):
    counts, n = COUNTS[task]
    c = derive_contract(SCHEMAS[task], ContractOptions(**opts), class_counts=counts, n_rows=n)
    got = (c.num_labels, c.problem_type, c.loss, c.target_dtype, c.target_shape, c.activation,
           c.decision_rule)
    assert got == expected
    assert c.schema_fingerprint == SCHEMAS[task].fingerprint


def test_balanced_weights_and_pos_weight_values():
    c = derive_contract(SCHEMAS["multiclass"], ContractOptions(class_weights="balanced"),
                        class_counts=COUNTS["multiclass"][0])
    assert c.class_weights == (pytest.approx(4 / 6), pytest.approx(4 / 3), pytest.approx(4 / 3))
    c = derive_contract(SCHEMAS["multilabel"], ContractOptions(pos_weight="balanced"),
                        class_counts={"x": 1, "y": 3}, n_rows=4)
    assert c.pos_weight == (3.0, pytest.approx(1 / 3))
    c = derive_contract(SCHEMAS["binary"], ContractOptions(binary_head="one_logit",
                                                           pos_weight="balanced"),
                        class_counts={"neg": 1, "pos": 3}, n_rows=4)
    assert c.pos_weight == (pytest.approx(1 / 3),)


def test_explicit_weights_by_name_and_list():
    c = derive_contract(SCHEMAS["binary"], ContractOptions(class_weights={"pos": 2, "neg": 1}))
    assert c.class_weights == (1.0, 2.0)
    c = derive_contract(SCHEMAS["binary"], ContractOptions(class_weights=[1, 3]))
    assert c.class_weights == (1.0, 3.0)


def test_focal_with_weights_is_a_finding():
    c = derive_contract(SCHEMAS["binary"], ContractOptions(loss="focal", class_weights=[1, 2]))
    assert [f.code for f in c.findings] == ["LW208"]


REFUSALS = [
    ("multilabel", {"label_smoothing": 0.1}, "LW203",
     "label_smoothing=0.1 was set for a multilabel task, which trains with BCE; cross-entropy "
     "label smoothing does not apply (Transformers switches it off with only a warning) (key "
     "train.label_smoothing). Fix: set train.label_smoothing_mode: bce to smooth the BCE "
     "targets, or remove train.label_smoothing"),
    ("binary", {"binary_head": "one_logit", "label_smoothing": 0.2}, "LW203",
     "label_smoothing=0.2 was set for a one_logit binary head"),
    ("regression", {"label_smoothing": 0.1}, "LW204",
     "label_smoothing=0.1 was set, but the task is regression"),
    ("multiclass", {"label_smoothing": 0.1, "label_smoothing_mode": "bce"}, "LW211",
     "label_smoothing_mode 'bce' was set, but a multiclass task with a two_logit head trains "
     "with cross-entropy"),
    ("multiclass", {"num_labels": 2}, "LW202",
     "num_labels=2 was set, but the schema needs num_labels=3 (3 classes in column(s) "
     "'label')"),
    ("binary", {"problem_type": "multi_label_classification"}, "LW201",
     "problem_type='multi_label_classification' was set, but the schema needs "
     "problem_type='single_label_classification' (task binary)"),
    ("multiclass", {"class_weights": [1, 2]}, "LW205",
     "`len(class_weights) == num_classes` must hold, but got (len(class_weights)=2, "
     "num_classes=3)"),
    ("multiclass", {"class_weights": {"a": 1, "b": 1, "zz": 2}}, "LW205",
     "class_weights names class 'zz', which is not one of the schema's classes ['a', 'b', 'c']"),
    ("multilabel", {"class_weights": "balanced"}, "LW206",
     "class_weights was set, but the task is multilabel"),
    ("binary", {"pos_weight": [2.0]}, "LW206",
     "pos_weight was set, but the task is binary with a two_logit head"),
    ("multiclass", {"loss": "focal"}, "LW207", "loss 'focal' was set, but the task is "
     "multiclass"),
    ("multiclass", {"binary_head": "one_logit"}, "LW209",
     "binary_head 'one_logit' was set, but the task is multiclass"),
    ("binary", {"loss": "bce"}, "LW212", "loss 'bce' was set, but a binary task needs "
     "'cross_entropy'"),
]


@pytest.mark.parametrize(("task", "opts", "code", "message"), REFUSALS)
def test_refusals(task, opts, code, message):
    counts, n = COUNTS[task]
    with pytest.raises(ContractError, match=re.escape(message)) as info:
        derive_contract(SCHEMAS[task], ContractOptions(**opts), class_counts=counts, n_rows=n)
    assert info.value.code == code


OPTIONS = {
    "default": {},
    "one_logit": {"binary_head": "one_logit"},
    "loss_ce": {"loss": "cross_entropy"},
    "loss_bce": {"loss": "bce"},
    "loss_focal": {"loss": "focal"},
    "loss_mse": {"loss": "mse"},
    "class_weights": {"class_weights": "balanced"},
    "pos_weight": {"pos_weight": "balanced"},
    "smoothing_ce": {"label_smoothing": 0.1},
    "smoothing_bce": {"label_smoothing": 0.1, "label_smoothing_mode": "bce"},
}
CE, BCE, FOCAL, MSE = "cross_entropy", "bce_with_logits", "focal", "mse"
# every (task x option) pair: the loss of the derived contract, or the refusal's code
CROSS = {
    "binary": [CE, BCE, CE, "LW212", FOCAL, "LW212", CE, "LW206", CE, "LW211"],
    "multiclass": [CE, "LW209", CE, "LW212", "LW207", "LW212", CE, "LW206", CE, "LW211"],
    "multilabel": [BCE, "LW209", "LW212", BCE, FOCAL, "LW212", "LW206", BCE, "LW203", BCE],
    "regression": [MSE, "LW209", "LW212", "LW212", "LW207", MSE, "LW206", "LW206", "LW204",
                   "LW204"],
}


@pytest.mark.parametrize("task", sorted(CROSS))
@pytest.mark.parametrize("option", list(OPTIONS))
def test_every_task_option_pair(task, option):
    expected = CROSS[task][list(OPTIONS).index(option)]
    counts, n = COUNTS[task]
    opts = ContractOptions(**OPTIONS[option])
    if expected.startswith("LW"):
        with pytest.raises(ContractError) as info:
            derive_contract(SCHEMAS[task], opts, class_counts=counts, n_rows=n)
        assert info.value.code == expected
        return
    c = derive_contract(SCHEMAS[task], opts, class_counts=counts, n_rows=n)
    assert c.loss == expected
    assert (c.class_weights is not None) == (option == "class_weights")
    assert (c.pos_weight is not None) == (option == "pos_weight")
    assert c.label_smoothing == (0.1 if option.startswith("smoothing") else 0.0)
    assert c.focal_gamma == (2.0 if option == "loss_focal" else None)

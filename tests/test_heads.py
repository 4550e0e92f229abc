"""The new head: its output bias starts at the training prior and it can learn at its own rate."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from transformers import TrainerCallback

from labelwise.plan.preflight import preflight
from labelwise.errors import ConfigError
from labelwise.training.heads import head_prior
from labelwise.plan.space import apply_params
from labelwise.training.train import _new_model, load_base_state, prepare, train
from test_training import make_config, texts


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@settings(max_examples=50, deadline=None)
@given(arrays(np.int8, st.tuples(st.integers(1, 40), st.integers(1, 6)),
              elements=st.integers(0, 1)))
def test_sigmoid_prior_predicts_each_label_frequency(y):
    prior = head_prior(y.astype(np.float32), SimpleNamespace(activation="sigmoid", num_labels=0))
    assert prior.shape == (y.shape[1],)
    assert np.allclose(sigmoid(prior), np.clip(y.mean(0), 1e-4, 1 - 1e-4), atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_softmax_prior_predicts_smoothed_class_frequency(ids):
    k = 5
    prior = head_prior(np.array(ids), SimpleNamespace(activation="softmax", num_labels=k))
    p = np.exp(prior) / np.exp(prior).sum()
    expected = (np.bincount(ids, minlength=k) + 1) / (len(ids) + k)
    assert np.allclose(p, expected) and abs(prior.mean()) < 1e-9


def test_identity_prior_is_the_target_mean():
    y = np.array([[1.0, 5.0], [3.0, 1.0]], dtype=np.float32)
    assert head_prior(y, SimpleNamespace(activation="identity", num_labels=2)).tolist() == [
        2.0, 3.0]


def _model(tmp_path, tiny_model, task, *, from_memory=False, **more):
    plan = preflight(make_config(tmp_path, tiny_model, task, **more))
    prepared = prepare(plan)
    if from_memory:  # the tuning path: base weights kept in memory
        prepared.base_state = load_base_state(plan)
    model, head = _new_model(prepared, plan)
    return model, head, prepared.targets("train", plan)


@pytest.mark.parametrize("from_memory", [False, True])
def test_new_multilabel_head_starts_at_label_log_odds(tmp_path, tiny_model, from_memory):
    model, head, y = _model(tmp_path, tiny_model, "multilabel", from_memory=from_memory)
    assert head == {"classifier.weight", "classifier.bias"}
    p = np.clip(y.mean(0), 1e-4, 1 - 1e-4)
    assert np.allclose(model.classifier.bias.detach().numpy(), np.log(p / (1 - p)), atol=1e-5)


def test_regression_head_starts_at_target_means(tmp_path, tiny_model):
    model, _, y = _model(tmp_path, tiny_model, "regression")
    assert np.allclose(model.classifier.bias.detach().numpy(), y.mean(0), atol=1e-5)


def test_head_bias_model_keeps_the_model_init(tmp_path, tiny_model):
    model, _, _ = _model(tmp_path, tiny_model, "multilabel", model={"head_bias": "model"})
    assert torch.count_nonzero(model.classifier.bias) == 0


@pytest.mark.parametrize("task", ["multiclass", "binary"])
def test_softmax_head_keeps_the_model_init_by_default(tmp_path, tiny_model, task):
    model, _, _ = _model(tmp_path, tiny_model, task)
    assert torch.count_nonzero(model.classifier.bias) == 0


def test_head_bias_prior_starts_a_softmax_head_at_the_class_frequencies(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model, "multiclass", model={"head_bias": "prior"})
    skewed = tmp_path / "skewed.csv"  # 30 a, 12 b, 6 c
    pd.DataFrame({"text": texts(48), "label": ["a"] * 30 + ["b"] * 12 + ["c"] * 6}).to_csv(
        skewed, index=False)
    config = apply_params(config, {"data.train": str(skewed)})
    prepared = prepare(preflight(config))
    model, _ = _new_model(prepared, prepared.plan)
    logp = np.log(np.array([31.0, 13.0, 7.0]) / 51.0)
    assert np.allclose(model.classifier.bias.detach().numpy(), logp - logp.mean(), atol=1e-5)


class _Groups(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
        head = {id(p) for p in model.classifier.parameters()}
        self.groups = [(g["lr"], {id(p) for p in g["params"]} <= head,
                        bool({id(p) for p in g["params"]} & head)) for g in
                       optimizer.param_groups]


def test_head_learning_rate_puts_the_new_head_in_groups_of_its_own(tmp_path, tiny_model):
    seen = _Groups()
    train(make_config(tmp_path, tiny_model, "multiclass",
                      train={"learning_rate": 1e-4, "head_learning_rate": 3e-3}),
          callbacks=[seen])
    head_groups = [g for g in seen.groups if g[2]]
    assert head_groups and all(lr == 3e-3 and only for lr, only, _ in head_groups)
    assert all(lr == 1e-4 for lr, _, touches in seen.groups if not touches)
    assert len(seen.groups) == 4  # decay and no-decay, for encoder and head


def test_without_head_learning_rate_every_group_uses_learning_rate(tmp_path, tiny_model):
    seen = _Groups()
    train(make_config(tmp_path, tiny_model, "multiclass", train={"learning_rate": 1e-4}),
          callbacks=[seen])
    assert [lr for lr, _, _ in seen.groups] == [1e-4, 1e-4]


def test_bad_head_learning_rate_is_a_config_error(tmp_path, tiny_model):
    with pytest.raises(ConfigError, match="head_learning_rate"):
        make_config(tmp_path, tiny_model, "binary", train={"head_learning_rate": 0})


def test_plan_states_how_the_new_head_starts_and_learns(tmp_path, tiny_model):
    plan = preflight(make_config(tmp_path, tiny_model, "multilabel",
                                 train={"head_learning_rate": 1e-3}))
    decisions = {d.key: (d.value, d.reason) for d in plan.decisions}
    assert decisions["head_bias"] == ("training prior",
                                      "log-odds of each label's training frequency")
    assert decisions["head_learning_rate"][0] == 1e-3


@pytest.mark.parametrize(("task", "head_bias", "expected"), [
    ("binary", "auto", ("model init", "softmax head: the prior would start rare classes far "
                        "below the rest")),
    ("regression", "auto", ("training prior", "each target's training mean")),
    ("multiclass", "prior", ("training prior", "config (model.head_bias: prior): log of each "
                             "class's training frequency")),
    ("multilabel", "model", ("model init", "config (model.head_bias: model)")),
])
def test_plan_says_where_the_head_bias_starts_and_why(tmp_path, tiny_model, task, head_bias,
                                                      expected):
    plan = preflight(make_config(tmp_path, tiny_model, task, model={"head_bias": head_bias}))
    assert {d.key: (d.value, d.reason) for d in plan.decisions}["head_bias"] == expected
    assert plan.head_bias_at_prior is (expected[0] == "training prior")


def test_trial_models_are_independent_copies_with_a_head_of_their_seed(tmp_path, tiny_model):
    plan = preflight(make_config(tmp_path, tiny_model, "multiclass",
                                 model={"head_bias": "model"}))
    prepared = prepare(plan)
    prepared.base_state = load_base_state(plan)
    a, head = _new_model(prepared, plan)
    b, _ = _new_model(prepared, plan)
    other = dataclasses.replace(plan, config=apply_params(plan.config, {"train.seed": 7}))
    c, _ = _new_model(prepared, other)
    assert head == {"classifier.weight", "classifier.bias"} and len(prepared.templates) == 1
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert 0.01 < float(c.classifier.weight.detach().std()) < 0.03  # the model's own init (std 0.02)
    for name, value in a.state_dict().items():
        if name in prepared.base_state:
            assert torch.equal(value, prepared.base_state[name]), name
    with torch.no_grad():
        a.bert.embeddings.word_embeddings.weight.zero_()
    assert torch.count_nonzero(b.bert.embeddings.word_embeddings.weight) > 0

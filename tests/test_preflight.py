"""The seed scenarios: each mistake is caught before any weight loads or file is written."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from labelwise.plan.config import config_from_dict
from labelwise.errors import PreflightError
from labelwise import preflight


@pytest.fixture
def no_weights(monkeypatch):
    """Make every way of loading weights fail loudly."""
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    for name in ("AutoModelForSequenceClassification", "AutoModel", "PreTrainedModel"):
        monkeypatch.setattr(getattr(transformers, name), "from_pretrained", refuse)


def write(tmp_path, name, labels, column="label"):
    path = tmp_path / name
    texts = [f"{name} sentence {i}" for i in range(len(labels))]
    pd.DataFrame({"text": texts, column: labels}).to_csv(path, index=False)
    return str(path)


def cfg(tmp_path, train_path, valid_path, **sections):
    data = {"train": train_path, "valid": valid_path, **sections.pop("data", {})}
    return config_from_dict({"data": data, "output_dir": str(tmp_path / "out"), **sections})


def expect_failure(config, *, search=False):
    """Preflight fails, and so does `train` (before loading a weight or writing a file)."""
    from pathlib import Path

    from labelwise.training.train import train

    with pytest.raises(PreflightError) as info:
        preflight(config, search=search)
    if not search:
        with pytest.raises(PreflightError) as via_train:
            train(config)
        assert [f.render() for f in via_train.value.findings] == [
            f.render() for f in info.value.findings]
    out = Path(config.output_dir)
    assert not out.exists() and not (out.parent / f".{out.name}.partial").exists()
    return info.value


def test_one_hot_width_3_with_binary_head(tmp_path, no_weights):
    rows = [json.dumps(r) for r in ([1, 0, 0], [0, 1, 0], [0, 0, 1])] * 10
    config = cfg(tmp_path, write(tmp_path, "t.csv", rows), write(tmp_path, "v.csv", rows[:6]),
                 data={"task": "binary"})
    err = expect_failure(config)
    [finding] = err.findings.errors
    assert finding.code == "LW115"
    assert finding.message == ("task 'binary' was asked, but the one-hot rows of column 'label' "
                               "have width 3, i.e. 3 classes (10 row(s) hot beyond position 1)")
    assert finding.where.rows == (2, 5, 8, 11, 14) and finding.where.count == 10
    assert finding.fix.startswith("pass --task multiclass")


@pytest.mark.parametrize("search", [False, True])
def test_neutral_label_in_binary_data(tmp_path, no_weights, search):
    labels = ["negative", "positive"] * 20 + ["neutral"] * 2
    sections = {"data": {"task": "binary"}}
    if search:
        sections["search"] = {"objective": {"metric": "f1", "direction": "maximize"},
                              "space": {"train.learning_rate": {"type": "float", "low": 1e-5,
                                                                "high": 1e-4, "log": True}}}
    config = cfg(tmp_path, write(tmp_path, "t.csv", labels),
                 write(tmp_path, "v.csv", ["negative", "positive"]), **sections)
    err = expect_failure(config, search=search)
    [finding] = err.findings.errors
    assert finding.code == "LW115"
    assert finding.message == ("task 'binary' was asked, but column 'label' has 3 classes: "
                               "stray value 'neutral' (2 row(s)) next to 'negative' and "
                               "'positive'")
    assert (finding.where.split, finding.where.rows) == ("train", (40, 41))


def test_neutral_only_in_validation_of_binary_data(tmp_path, no_weights):
    config = cfg(tmp_path, write(tmp_path, "t.csv", ["neg", "pos"] * 10),
                 write(tmp_path, "v.csv", ["neg", "pos", "neutral"]), data={"task": "binary"})
    err = expect_failure(config)
    [finding] = err.findings.errors
    assert finding.code == "LW102"
    assert finding.message == "label 'neutral' occurs in validation (1 row(s)) but not in train"


def multilabel(tmp_path):
    rows = [json.dumps(r) for r in (["joy"], ["anger", "joy"], ["fear"], [])] * 8
    return write(tmp_path, "t.csv", rows, "labels"), write(tmp_path, "v.csv", rows[:8], "labels")


def test_label_smoothing_with_multilabel_is_an_error_by_default(tmp_path, no_weights):
    train, valid = multilabel(tmp_path)
    config = cfg(tmp_path, train, valid, data={"label_columns": ["labels"]},
                 train={"label_smoothing": 0.1})
    err = expect_failure(config)
    [finding] = err.findings.errors
    assert finding.code == "LW203"
    assert "set train.label_smoothing_mode: bce" in finding.fix


def test_label_smoothing_bce_mode_passes(tmp_path, no_weights):
    train, valid = multilabel(tmp_path)
    config = cfg(tmp_path, train, valid, data={"label_columns": ["labels"]},
                 train={"label_smoothing": 0.1, "label_smoothing_mode": "bce"})
    plan = preflight(config)
    assert (plan.contract.label_smoothing, plan.contract.label_smoothing_mode) == (0.1, "bce")
    assert plan.contract.loss == "bce_with_logits"


def test_label_smoothing_in_search_space_caught_in_preflight(tmp_path, no_weights):
    train, valid = multilabel(tmp_path)
    config = cfg(tmp_path, train, valid, data={"label_columns": ["labels"]}, search={
        "objective": {"metric": "macro_f1", "direction": "maximize"},
        "space": {"train.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2}}})
    err = expect_failure(config, search=True)
    [finding] = err.findings.errors
    assert finding.code == "LW203"
    assert finding.message.startswith("search space point train.label_smoothing=0.2: "
                                      "label_smoothing=0.2 was set for a multilabel task")


def test_num_labels_in_search_space(tmp_path, no_weights):
    config = cfg(tmp_path, write(tmp_path, "t.csv", ["a", "b", "c"] * 5),
                 write(tmp_path, "v.csv", ["a", "b", "c"]), search={
                     "objective": {"metric": "macro_f1", "direction": "maximize"},
                     "space": {"model.num_labels": {"type": "categorical", "choices": [3, 4]}}})
    err = expect_failure(config, search=True)
    [finding] = err.findings.errors
    assert finding.code == "LW312"
    assert finding.message == ("search space key 'model.num_labels' would change the label "
                               "encoding between trials: it is fixed by the schema")
    assert str(finding.where) == "key search.space.model.num_labels"


def test_every_error_collected_at_once(tmp_path, no_weights):
    train, valid = multilabel(tmp_path)
    config = cfg(tmp_path, train, valid, data={"label_columns": ["labels"]},
                 train={"label_smoothing": 0.1}, model={"max_length": 4096}, search={
                     "objective": {"metric": "accuracy", "direction": "maximize"},
                     "space": {"model.num_labels": {"type": "categorical", "choices": [3]}}})
    err = expect_failure(config, search=True)
    assert sorted(f.code for f in err.findings.errors) == ["LW203", "LW312", "LW320", "LW406"]


def test_valid_combinations_pass(tmp_path, no_weights):
    # two logits + one-hot rows of width 2 read as multilabel: BCE on [B, 2]
    rows = [json.dumps(r) for r in ([1, 0], [0, 1])] * 10
    plan = preflight(cfg(tmp_path, write(tmp_path, "t.csv", rows), write(tmp_path, "v.csv", rows),
                         data={"task": "multilabel"}))
    c = plan.contract
    assert (c.num_labels, c.loss, c.target_dtype, c.target_shape) == (
        2, "bce_with_logits", "float32", "[B, K]")
    # one logit + [B, 1] float targets
    plan = preflight(cfg(tmp_path, write(tmp_path, "t.csv", ["neg", "pos"] * 10),
                         write(tmp_path, "v.csv", ["neg", "pos"]),
                         model={"binary_head": "one_logit"}))
    c = plan.contract
    assert (c.num_labels, c.problem_type, c.target_shape, c.activation) == (
        1, "multi_label_classification", "[B, 1]", "sigmoid")
    assert "num_labels=1 (binary task with a one_logit head)" in plan.lines()


def test_plan_decisions_printed_once(tmp_path, no_weights):
    plan = preflight(cfg(tmp_path, write(tmp_path, "t.csv", ["a", "b", "c"] * 5),
                         write(tmp_path, "v.csv", ["a", "b", "c"])))
    assert "num_labels=3 (3 classes in column 'label')" in plan.lines()
    assert any(line.startswith("head=new") for line in plan.lines())


def test_config_not_mutated(tmp_path, no_weights):
    config = cfg(tmp_path, write(tmp_path, "t.csv", ["a", "b"] * 5),
                 write(tmp_path, "v.csv", ["a", "b"]), train={"class_weights": "balanced"})
    before = config.model_dump_json()
    preflight(config)
    assert config.model_dump_json() == before


def test_classifier_head_width_mismatch(tmp_path, no_weights):
    from labelwise.testing import make_tiny_classifier

    model = make_tiny_classifier(tmp_path / "clf", num_labels=2)
    config = cfg(tmp_path, write(tmp_path, "t.csv", ["a", "b", "c"] * 5),
                 write(tmp_path, "v.csv", ["a", "b", "c"]), model={"name_or_path": str(model)})
    err = expect_failure(config)
    [finding] = err.findings.errors
    assert finding.code == "LW405"
    assert finding.message == ("the model is already a classifier with 2 labels, but the schema "
                               "needs num_labels=3")
    ok = cfg(tmp_path, config.data.train, config.data.valid,
             model={"name_or_path": str(model), "reinit_head": True})
    assert preflight(ok).lines()[7].startswith("head=replaced")


def test_offline_hub_id_is_a_finding(tmp_path, no_weights, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = cfg(tmp_path, write(tmp_path, "t.csv", ["a", "b"] * 5),
                 write(tmp_path, "v.csv", ["a", "b"]),
                 model={"name_or_path": "someone/not-cached-model"})
    err = expect_failure(config)
    [finding] = err.findings.errors
    assert finding.code == "LW404"
    assert "the hub is offline (HF_HUB_OFFLINE=1) and it is not cached" in finding.message


def test_a_trial_plan_derives_every_decision_from_the_trial_config(tmp_path, no_weights):
    from labelwise.errors import ConfigError
    from labelwise.plan.preflight import EmbeddingRows, HeadBias
    from labelwise.plan.space import apply_params

    train_path = write(tmp_path, "train.csv", ["a", "b", "c", "a"] * 5)
    valid_path = write(tmp_path, "valid.csv", ["a", "b", "c"] * 2)
    plan = preflight(cfg(tmp_path, train_path, valid_path))
    assert plan.embedding_rows is EmbeddingRows.SEEN and plan.head_bias is HeadBias.MODEL
    params = {"train.weight_decay": 0.1, "model.head_bias": "prior",
              "train.class_weights": "balanced", "train.label_smoothing": 0.1}
    trial = plan.for_trial(apply_params(plan.config, params))
    assert trial.embedding_rows is EmbeddingRows.ALL and trial.cuts_embedding_rows is False
    assert trial.head_bias is HeadBias.PRIOR and trial.head_bias_at_prior is True
    assert trial.contract.class_weights and trial.contract.label_smoothing == 0.1
    fresh = preflight(trial.config)
    assert trial.to_dict() == fresh.to_dict()  # as if the trial's config were the run's
    assert plan.decisions != trial.decisions  # the base plan is unchanged
    other = apply_params(plan.config, {"data.text_column": "other"})
    with pytest.raises(ConfigError, match="a trial's config reads other data") as info:
        plan.for_trial(other)
    assert info.value.code == "LW315"

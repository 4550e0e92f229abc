"""Run config: frozen, unknown keys are errors with suggestions, YAML/TOML, overrides;
search-space checks."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from labelwise.plan.config import RunConfig, config_from_dict, load_config
from labelwise.errors import ConfigError
from labelwise.plan.space import apply_params, check_space, space_points

BASE = {"data": {"train": "t.csv"}}


def test_defaults_and_frozen():
    cfg = config_from_dict(BASE)
    assert cfg.train.learning_rate == 5e-5 and cfg.model.name_or_path is None
    with pytest.raises(ValidationError):
        cfg.train.learning_rate = 1.0  # type: ignore[misc]


def test_unknown_key_did_you_mean():
    with pytest.raises(ConfigError, match=re.escape(
            "unknown key 'train.learnig_rate' (did you mean 'train.learning_rate'?)")) as info:
        config_from_dict({**BASE, "train": {"learnig_rate": 1e-4}})
    assert info.value.code == "LW301"


def test_every_problem_listed_at_once():
    with pytest.raises(ConfigError) as info:
        config_from_dict({"data": {"train": "t", "txet_column": "x"}, "modle": {},
                          "train": {"batch_size": 0}})
    codes = sorted(f.code for f in info.value.findings)
    assert codes == ["LW301", "LW301", "LW303"]
    assert "unknown key 'modle' (did you mean 'model'?)" in str(info.value)


def test_bad_value_and_missing_key():
    with pytest.raises(ConfigError, match=re.escape(
            "'train.label_smoothing' input should be less than 1. Got 1.5 instead")):
        config_from_dict({**BASE, "train": {"label_smoothing": 1.5}})
    with pytest.raises(ConfigError, match=re.escape("missing key 'data.train'")):
        config_from_dict({"data": {}})


def test_yaml_toml_and_overrides(tmp_path):
    yml = tmp_path / "run.yaml"
    yml.write_text("data: {train: a.csv}\ntrain: {epochs: 2}\n")
    toml = tmp_path / "run.toml"
    toml.write_text('[data]\ntrain = "a.csv"\n[train]\nepochs = 2\n')
    a = load_config(yml, overrides=["train.learning_rate=3e-5", "model.max_length=64"])
    b = load_config(toml, overrides=["train.learning_rate=3e-5", "model.max_length=64"])
    assert a == b
    assert (a.train.learning_rate, a.model.max_length, a.train.epochs) == (3e-5, 64, 2)
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [\n")
    with pytest.raises(ConfigError, match="cannot parse config"):
        load_config(bad)


def test_objective_needs_explicit_direction():
    with pytest.raises(ConfigError, match=re.escape(
            "missing key 'search.objective.direction'")):
        config_from_dict({**BASE, "search": {"objective": {"metric": "f1"}}})


def test_distribution_well_formed():
    for dist, message in [
        ({"type": "float", "low": 1e-3, "high": 1e-5}, "`low <= high` must hold"),
        ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "a log distribution needs"),
        ({"type": "categorical", "choices": []}, "at least 1 item"),
        ({"type": "uniform", "low": 0, "high": 1}, "does not match any of the expected tags"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            config_from_dict({**BASE, "search": {"space": {"train.learning_rate": dist}}})


def space(entries):
    return config_from_dict({**BASE, "search": {"space": entries}})


def test_space_checks_each_key():
    cfg = space({
        "train.learnig_rate": {"type": "float", "low": 1e-5, "high": 1e-4},
        "model.num_labels": {"type": "categorical", "choices": [2, 3]},
        "data.task": {"type": "categorical", "choices": ["binary", "multiclass"]},
        "output_dir": {"type": "categorical", "choices": ["a", "b"]},
        "train.batch_size": {"type": "categorical", "choices": [16, 0]},
        "train.label_smoothing": {"type": "float", "low": 0.0, "high": 1.0},
    })
    found = {f.message for f in check_space(cfg, source="run.yaml")}
    assert found == {
        "search space key 'train.learnig_rate' is not a config field (did you mean "
        "'train.learning_rate'?)",
        "search space key 'model.num_labels' would change the label encoding between trials: "
        "it is fixed by the schema",
        "search space key 'data.task' would change the label encoding between trials: it "
        "decides the task, and so the label encoding",
        "search space key 'output_dir' cannot be searched: the output directory is fixed for a "
        "search",
        "search space 'train.batch_size' reaches 0, outside the field's valid values: input "
        "should be greater than or equal to 1",
        "search space 'train.label_smoothing' reaches 1.0, outside the field's valid values: "
        "input should be less than 1",
    }


def test_space_points_cross_contract_choices():
    cfg = space({"model.binary_head": {"type": "categorical", "choices": ["two_logit",
                                                                          "one_logit"]},
                 "train.label_smoothing": {"type": "float", "low": 0.0, "high": 0.2},
                 "train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-4}})
    points = space_points(cfg)
    assert len(points) == 4
    assert {"model.binary_head": "one_logit", "train.label_smoothing": 0.2} in points


def test_apply_params_returns_new_config():
    cfg = config_from_dict(BASE)
    trial = apply_params(cfg, {"train.learning_rate": 1e-4})
    assert trial.train.learning_rate == 1e-4 and cfg.train.learning_rate == 5e-5
    assert isinstance(trial, RunConfig)

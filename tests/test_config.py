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


# -- hostile configs: refused with the key, the line and the fix --------------------------

@pytest.mark.parametrize(("section", "key"), [
    ("train", "epochs"), ("train", "batch_size"), ("train", "learning_rate"),
    ("data", "split_seed"), ("model", "max_length"), ("search", "n_trials"),
])
def test_bools_are_not_numbers(section, key):
    with pytest.raises(ConfigError) as info:
        config_from_dict({**BASE, section: {**BASE.get(section, {}), key: True}})
    assert str(info.value).startswith(f"'{section}.{key}' must be a number, not true or false."
                                      " Got True instead")
    assert info.value.code == "LW303"


def test_bool_still_fine_where_a_bool_is_meant():
    cfg = config_from_dict({"data": {"train": "t.csv", "classes": [False, True],
                                     "positive": True}, "train": {"length_bucketing": False}})
    assert cfg.data.positive is True and cfg.data.classes == [False, True]


def test_empty_search_space_is_refused_not_replaced_by_the_default():
    with pytest.raises(ConfigError) as info:
        config_from_dict({**BASE, "search": {"space": {}}})
    assert "'search.space' must not be empty" in str(info.value)
    assert "leave search.space out to search the default space" in str(info.value)
    assert config_from_dict({**BASE, "search": {}}).search.space is None  # default space


def test_duplicate_yaml_key_names_both_lines(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  train: t.csv\ntrain:\n  epochs: 2\n  batch_size: 8\n  epochs: 3\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.code == "LW306"
    assert "key 'epochs' is written twice (lines 4 and 6)" in str(info.value)


def test_yaml_syntax_error_keeps_line_and_column(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("data:\n  train: t.csv\n train: [1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"file {path}, line 3, column 2" in str(info.value)
    assert "\n" not in str(info.value)
    toml = tmp_path / "run.toml"
    toml.write_text("[data]\ntrain = \n")
    with pytest.raises(ConfigError, match=r"at line 2, column 9"):
        load_config(toml)


def test_non_utf8_config_and_directory_are_user_errors(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_bytes("data:\n  train: café.csv\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=re.escape(f"config file is not UTF-8 text (file "
                                                    f"{path}, line 2). Fix: re-save it as "
                                                    "UTF-8")):
        load_config(path)
    with pytest.raises(ConfigError, match="config path is a directory"):
        load_config(tmp_path)


@pytest.mark.parametrize(("text", "message"), [
    (b"data:\n  train: t.csv\ntrain:\n  epochs: true\n", "must be a number"),
    (b"data:\n  train: t.csv\ndata:\n  valid: v.csv\n", "written twice (lines 1 and 3)"),
    (b"data:\n  train: caf\xe9.csv\n", "not UTF-8"),
    (b"data: [\n", "line 2, column 1"),
    (b"data:\n  train: t.csv\nsearch:\n  space: {}\n", "must not be empty"),
])
def test_cli_bad_config_exits_2_and_writes_nothing(tmp_path, text, message):
    from typer.testing import CliRunner

    from labelwise.cli.app import app

    config = tmp_path / "run.yaml"
    config.write_bytes(text)
    out = tmp_path / "out"
    for verb in ("train", "tune", "check"):
        args = [verb, "--config", str(config)] + (["-o", str(out)] if verb != "check" else [])
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()) and "Traceback" not in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml"]
    result = CliRunner().invoke(app, ["check", "--config", str(tmp_path), "--format", "json"])
    assert result.exit_code == 2
    assert '"ok": false' in result.stdout and "config path is a directory" in result.stdout


def test_config_symlink_loop_and_dangling_link_say_so(tmp_path):
    (tmp_path / "a.yaml").symlink_to(tmp_path / "b.yaml")
    (tmp_path / "b.yaml").symlink_to(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match="config path is a symlink loop"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").symlink_to(tmp_path / "gone.yaml")
    with pytest.raises(ConfigError, match="config path is a symlink to a missing file"):
        load_config(tmp_path / "c.yaml")

"""Data objects wherever a path is accepted, and the keyword form of train, tune and check."""

from __future__ import annotations

import json

import pandas as pd
import pytest

import labelwise
from labelwise.errors import ConfigError, DataError, PreflightError, SchemaMismatchError
from labelwise.plan.config import config_from_dict, resolve_config

WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()


def frame(n: int, offset: int = 0) -> pd.DataFrame:
    rows = [" ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(2 + i % 4))
            for i in range(offset, offset + n)]
    return pd.DataFrame({"text": rows, "label": [["neg", "pos"][i % 2] for i in range(n)]})


def small(tiny_model, **more):
    return {"model": str(tiny_model), "max_steps": 2, "batch_size": 8, **more}


def test_train_from_dataframes_with_keywords(tmp_path, tiny_model):
    train_df, valid_df = frame(40), frame(16, 40)
    result = labelwise.train(train=train_df, valid=valid_df, label_columns=["label"],
                             output_dir=tmp_path / "run", epochs=2, **small(tiny_model))
    manifest = json.loads((result.output_dir / "labelwise.json").read_text())
    sources = manifest["plan"]["sources"]
    assert sources["train"].startswith("DataFrame, 40 rows, sha ")
    assert sources["valid"].startswith("DataFrame, 16 rows, sha ")
    assert manifest["plan"]["config"]["data"]["train"] == f"<{sources['train']}>"
    assert result.plan.config.train.epochs == 2 and result.plan.config.train.max_steps == 2
    preds = labelwise.predict(result.output_dir, "good film")
    assert len(preds) == 1


def test_train_takes_the_frame_as_its_first_argument(tmp_path, tiny_model):
    result = labelwise.train(frame(40), output_dir=tmp_path / "run", **small(tiny_model))
    assert result.plan.data.carve is not None  # validation carved from the frame


@pytest.mark.parametrize("kind", ["dataset", "dataset_dict", "records"])
def test_other_data_objects(tmp_path, tiny_model, kind):
    from datasets import Dataset, DatasetDict

    train_df, valid_df = frame(40), frame(16, 40)
    if kind == "dataset":
        given = {"train": Dataset.from_pandas(train_df), "valid": Dataset.from_pandas(valid_df)}
    elif kind == "dataset_dict":
        given = {"train": DatasetDict(train=Dataset.from_pandas(train_df),
                                      validation=Dataset.from_pandas(valid_df))}
    else:
        given = {"train": train_df.to_dict("records"), "valid": valid_df.to_dict("records")}
    plan = labelwise.check(**given, model=str(tiny_model))
    assert plan.data.carve is None and len(plan.data.frames["valid"]) == 16
    assert plan.data.fingerprint("train") == labelwise.check(
        train=train_df, valid=valid_df, model=str(tiny_model)).data.fingerprint("train")


def test_check_is_preflight_and_writes_nothing(tmp_path, tiny_model):
    bad = frame(40).assign(label=["neg", "pos", "neutral", "pos"] * 10)
    with pytest.raises(PreflightError):
        labelwise.check(train=bad, task="binary", model=str(tiny_model),
                        output_dir=tmp_path / "x")
    assert not (tmp_path / "x").exists()
    plan = labelwise.check(train=frame(40), model=str(tiny_model))
    assert any(line.startswith("task=binary") for line in plan.lines())


def test_inspect_data_takes_a_list_of_dicts():
    result = labelwise.inspect_data(train=frame(30).to_dict("records"))
    assert result.schema.task.value == "binary" and result.sizes["train"] + \
        result.sizes["valid"] == 30


def test_keywords_override_a_config_and_unknown_types_are_refused(tmp_path):
    base = {"data": {"train": "a.csv", "label_columns": ["y"]}, "train": {"epochs": 5}}
    cfg, _ = resolve_config(base, data={"train": frame(4), "label_columns": "label"},
                            train={"epochs": 1})
    assert isinstance(cfg.data.train, pd.DataFrame) and cfg.data.label_columns == ["label"]
    assert cfg.train.epochs == 1
    with pytest.raises(ConfigError, match="cannot read a run config from a int"):
        resolve_config(3)
    with pytest.raises(ConfigError, match="given twice"):
        resolve_config(frame(4), data={"train": frame(4)})
    with pytest.raises(ConfigError, match="no training data"):
        resolve_config(None)
    with pytest.raises(ConfigError, match="data.train"):
        config_from_dict({"data": {"train": 3}})


def test_a_saved_config_loads_and_asks_for_the_data_again(tmp_path, tiny_model):
    plan = labelwise.check(train=frame(40), model=str(tiny_model))
    saved = json.loads(json.dumps(plan.to_dict()["config"]))
    cfg = config_from_dict(saved)  # loadable
    assert cfg.data.train.startswith("<DataFrame, 40 rows")
    with pytest.raises(PreflightError, match="was in-memory data when this config was saved"):
        labelwise.check(cfg)


def test_resume_checks_the_fingerprint_of_the_frame(tmp_path, tiny_model):
    out = tmp_path / "run"
    work = out.parent / f".{out.name}.partial"
    data = frame(40)
    fingerprints = labelwise.check(train=data, model=str(tiny_model)).to_dict()[
        "data_fingerprints"]
    schema = labelwise.check(train=data, model=str(tiny_model)).schema.fingerprint
    work.mkdir(parents=True)
    (work / "plan.json").write_text(json.dumps({"schema": schema, "data": fingerprints}))
    changed = data.copy()
    changed.loc[3, "text"] = "a different text"
    with pytest.raises(SchemaMismatchError, match="the data or labels changed"):
        labelwise.train(train=changed, output_dir=out, resume=True, **small(tiny_model))
    result = labelwise.train(train=data, output_dir=out, resume=True, **small(tiny_model))
    assert result.output_dir == out


def test_tune_from_a_dataset_with_workers_reads_the_same_data(tmp_path, tiny_model):
    from datasets import Dataset

    from labelwise.tuning._data import with_data_files

    data = frame(40).assign(tags=[["a"], ["b"], ["a", "b"], []] * 10)
    cfg, _ = resolve_config(data={"train": Dataset.from_pandas(data)})
    written = with_data_files(cfg, tmp_path / "data")
    assert written.data.train.endswith("train.parquet")
    from labelwise.data.io import content_sha, read_table

    assert content_sha(read_table(written.data.train).frame) == content_sha(
        read_table(cfg.data.train).frame)


def test_a_split_of_another_type_is_a_data_error():
    with pytest.raises(DataError, match="not of dicts"):
        labelwise.inspect_data(train=[1, 2, 3])


def test_the_findings_after_training_are_printed_once_with_the_plan(tmp_path, tiny_model,
                                                                  capsys):
    # two steps of a tiny random model: it predicts one class for every validation row
    result = labelwise.train(train=frame(40), valid=frame(16, 40), output_dir=tmp_path / "r",
                             **small(tiny_model))
    # the run's own lines (a log handler an earlier CLI call attached may add its own)
    lines = capsys.readouterr().out.splitlines()
    codes = [f.code for f in result.diagnosis.findings]
    assert codes  # e.g. LW601, a class never predicted
    assert lines.count("plan:") == 1 and lines.count("after training:") == 1
    shown = lines[lines.index("after training:") + 1:][:len(codes)]
    assert [line.split()[0] for line in shown] == codes
    labelwise.train(train=frame(40), valid=frame(16, 40), output_dir=tmp_path / "q",
                    progress=False, **small(tiny_model))
    lines = capsys.readouterr().out.splitlines()
    assert "plan:" not in lines and "after training:" not in lines

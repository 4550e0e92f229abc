"""Experiment tracking through Transformers' integrations: TensorBoard event files and a
local MLflow store, read back; a search is one MLflow run with a nested run per trial."""

from __future__ import annotations

import pandas as pd
import pytest
from transformers import TrainerCallback

import labelwise
from labelwise.errors import ConfigError, MissingDependencyError
from labelwise.plan.config import config_from_dict

pytest.importorskip("tensorboard")
mlflow = pytest.importorskip("mlflow")

WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()


def frame(n: int) -> pd.DataFrame:
    rows = [" ".join(WORDS[(i * 5 + k) % len(WORDS)] for k in range(2 + i % 4))
            for i in range(n)]
    return pd.DataFrame({"text": rows, "label": [["neg", "pos"][i % 2] for i in range(n)]})


def config(tmp_path, tiny_model, report_to, **search):
    return config_from_dict({
        "data": {"train": frame(40), "valid": frame(16)},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 4, "batch_size": 8, "report_to": report_to},
        **({"search": search} if search else {}), "output_dir": str(tmp_path / "out")})


def scalars(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def client(out):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{out / 'logs' / 'mlflow.db'}")


def runs(c):
    ids = [e.experiment_id for e in c.search_experiments()]
    return c.search_runs(ids)


class Count(TrainerCallback):
    def __init__(self) -> None:
        self.begins = 0
        self.steps = 0

    def on_train_begin(self, *a, **k):
        self.begins += 1

    def on_step_end(self, *a, **k):
        self.steps += 1


def test_train_writes_tensorboard_and_mlflow_logs_inside_the_model_dir(tmp_path, tiny_model,
                                                                      monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    count = Count()
    result = labelwise.train(config(tmp_path, tiny_model, ["tensorboard", "mlflow"]),
                             callbacks=[count], progress=False)
    out = result.output_dir
    assert count.begins == 1 and count.steps == 4
    board = scalars(out / "logs" / "tensorboard" / "out")
    assert len(board["train/loss"]) >= 1 and "eval/f1" in board or "train/loss" in board
    (run,) = runs(client(out))
    assert run.info.status == "FINISHED" and run.info.run_name == "out"
    assert "loss" in run.data.metrics and run.data.params["learning_rate"] == "5e-05"
    assert not (tmp_path / ".out.partial").exists()
    assert (out / "logs" / "mlflow.db").exists()


def test_a_search_is_one_mlflow_run_with_a_nested_run_per_trial(tmp_path, tiny_model,
                                                                 monkeypatch):
    from labelwise.tuning import tune

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    count = Count()
    space = {"train.learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}
    result = tune(config(tmp_path, tiny_model, ["mlflow", "tensorboard"], n_trials=2,
                         space=space, study_name="study-a"),
                  trainer_callbacks=[count], progress=False)
    assert count.begins == 2 and result.best_dir is not None
    found = runs(client(result.output_dir))
    parents = [r for r in found if "mlflow.parentRunId" not in r.data.tags]
    assert [p.info.run_name for p in parents] == ["study-a"]
    children = [r for r in found if r.data.tags.get("mlflow.parentRunId") ==
                parents[0].info.run_id]
    assert sorted(r.info.run_name for r in children) == ["trial-0", "trial-1"]
    rates = {r.info.run_name: float(r.data.params["learning_rate"]) for r in children}
    assert len(set(rates.values())) == 2  # each trial logged its own parameters
    for name in ("trial-0", "trial-1"):
        assert "train/loss" in scalars(result.output_dir / "logs" / "tensorboard" / name)


def test_trainer_callbacks_and_search_callbacks_go_where_each_belongs(tmp_path, tiny_model):
    from labelwise.tuning import tune

    count, finished = Count(), []
    result = tune(config(tmp_path, tiny_model, [], n_trials=2), trainer_callbacks=[count],
                  callbacks=[finished.append], progress=False)
    assert count.begins == 2  # every trial's Trainer
    assert sorted(r.number for r in finished) == [0, 1]  # every finished trial, once
    assert all(r.state == "COMPLETE" for r in finished) and result.best_dir is not None


def test_trainer_callbacks_for_trials_in_other_processes_are_refused(tmp_path, tiny_model):
    from labelwise.tuning import OptunaBackend, tune

    cfg = config(tmp_path, tiny_model, [], n_trials=2)
    with pytest.raises(ConfigError, match="with workers=2 the trials run in others") as err:
        tune(cfg, trainer_callbacks=[Count()], workers=2, progress=False)
    assert err.value.code == "LW338"
    with pytest.raises(ConfigError, match="trainer_callbacks= is an option of the optuna "
                       "backend, not of ray") as err:
        tune(cfg, trainer_callbacks=[Count()], backend="ray", progress=False)
    assert err.value.code == "LW334"
    with pytest.raises(ConfigError, match="carries its own settings"):
        tune(cfg, trainer_callbacks=[Count()], backend=OptunaBackend(), progress=False)
    assert not (tmp_path / "out").exists()


def test_a_missing_or_unknown_integration_is_refused_before_anything_is_written(tmp_path,
                                                                               tiny_model):
    from transformers.integrations import get_available_reporting_integrations

    if "wandb" not in get_available_reporting_integrations():
        with pytest.raises(MissingDependencyError, match="pip install wandb"):
            labelwise.train(config(tmp_path, tiny_model, ["wandb"]), progress=False)
    with pytest.raises(ConfigError, match="unknown train.report_to 'tensorbored'"):
        labelwise.train(config(tmp_path, tiny_model, "tensorbored"), progress=False)
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_report_to_none_and_a_string():
    cfg = config_from_dict({"data": {"train": "x.csv"}, "train": {"report_to": "none"}})
    assert cfg.train.report_to == []
    cfg = config_from_dict({"data": {"train": "x.csv"}, "train": {"report_to": "mlflow"}})
    assert cfg.train.report_to == ["mlflow"]

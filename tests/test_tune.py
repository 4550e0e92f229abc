"""Tuning on Optuna with a tiny BERT: resume, failures, pruning, refusal, best dir, workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest

from labelwise.errors import PreflightError, SchemaMismatchError
from labelwise.training.predict import predict
from labelwise.tuning import tune

from tuning_data import make


def test_search_writes_best_dir_trials_and_one_model(tmp_path, tiny_model):
    result = tune(make(tmp_path, tiny_model, search={"pruner": "none"}))
    out = tmp_path / "out"
    assert result.counts() == {"COMPLETE": 3}
    rows = list(pd.read_csv(out / "trials.csv").itertuples())
    assert [r.number for r in rows] == [0, 1, 2]
    header = pd.read_csv(out / "trials.csv").columns.tolist()
    assert header[:4] == ["number", "state", "value", "train.learning_rate"]
    assert {"accuracy", "f1", "duration_s", "step_seconds", "seed", "reason"} <= set(header)
    assert len(list(out.rglob("model.safetensors"))) == 1  # one model on disk, not one per trial
    manifest = json.loads((out / "best" / "labelwise.json").read_text())
    assert manifest["trial"] == result.best_trial
    assert {"valid", "test"} <= set(manifest["metrics"])
    assert predict(out / "best", ["good film"]).labels[0] in ("neg", "pos")
    from transformers import pipeline

    clf = pipeline("text-classification", model=str(out / "best"), device="cpu")
    assert clf("bad plot")[0]["label"] in ("neg", "pos")
    summary = json.loads((out / "search.json").read_text())
    assert summary["best_trial"] == result.best_trial and summary["counts"] == {"COMPLETE": 3}


def test_failing_and_nan_trials_are_isolated(tmp_path, tiny_model, monkeypatch):
    import torch

    import labelwise.training.trainer
    import labelwise.tuning._runner as runner_mod
    from labelwise.training.losses import make_loss as real_make_loss

    calls = {"fit": 0}
    real_fit = runner_mod.fit

    def flaky_fit(*args, **kwargs):
        calls["fit"] += 1
        if calls["fit"] == 2:
            raise RuntimeError("boom in trial")
        return real_fit(*args, **kwargs)

    def nan_on_third(contract):
        loss = real_make_loss(contract)
        if calls["fit"] == 3:
            return lambda logits, y: loss(logits, y) * torch.tensor(float("nan"))
        return loss

    monkeypatch.setattr(runner_mod, "fit", flaky_fit)
    monkeypatch.setattr(labelwise.training.trainer, "make_loss", nan_on_third)
    result = tune(make(tmp_path, tiny_model, n_trials=4, search={"pruner": "none"}))
    states = [t.state for t in result.trials]
    assert states == ["COMPLETE", "FAIL", "FAIL", "COMPLETE"]
    assert result.trials[1].reason == "RuntimeError: boom in trial"
    assert result.trials[2].reason.startswith("DivergedError: the training loss became nan")
    csv = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert csv["reason"].fillna("").tolist()[1] == "RuntimeError: boom in trial"


def test_pruning_prunes_hopeless_choices(tmp_path, tiny_model):
    config = make(tmp_path, tiny_model, n_trials=10, search={
        "sampler": "random", "seed": 6,  # the first 5 run to the end, then the median prunes
        "objective": {"metric": "loss", "direction": "minimize"}},
        # 1e-6 keeps the loss at its start (ln 2); 1.0 blows it up: a hopeless choice
        space={"train.learning_rate": {"type": "categorical", "choices": [1e-6, 1.0]}},
        train={"epochs": 3, "evals_per_epoch": 2})
    result = tune(config)
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert pruned, [(t.state, t.params) for t in result.trials]
    assert all(t.params["train.learning_rate"] == 1.0 for t in pruned), [
        (t.state, t.params, t.value, t.reason) for t in result.trials]
    assert all(re.match(r"pruned at step \d+: loss=", t.reason) for t in pruned)


def test_resume_adds_trials_up_to_n_trials(tmp_path, tiny_model):
    tune(make(tmp_path, tiny_model, n_trials=2))
    first = pd.read_csv(tmp_path / "out" / "trials.csv")
    result = tune(make(tmp_path, tiny_model, n_trials=3))
    assert len(result.trials) == 3
    again = pd.read_csv(tmp_path / "out" / "trials.csv")
    assert again.head(2)["value"].tolist() == first["value"].tolist()


def test_changed_data_or_labels_are_refused(tmp_path, tiny_model):
    tune(make(tmp_path, tiny_model, n_trials=1))
    config = make(tmp_path, tiny_model, n_trials=2)
    frame = pd.read_csv(config.data.train)
    frame.loc[0, "text"] = "a different first row"
    frame.to_csv(config.data.train, index=False)
    with pytest.raises(SchemaMismatchError, match=re.escape(
            "study 'labelwise' was started with other data_fingerprints")):
        tune(config)
    for path in (config.data.train, config.data.valid, config.data.test):
        split = pd.read_csv(path)
        split.loc[split["label"] == "neg", "label"] = "negative"
        split.to_csv(path, index=False)
    with pytest.raises(SchemaMismatchError, match="schema_fingerprint, data_fingerprints"):
        tune(config)


def test_preflight_errors_stop_before_any_trial(tmp_path, tiny_model):
    config = make(tmp_path, tiny_model, space={
        "model.num_labels": {"type": "categorical", "choices": [2, 3]}})
    with pytest.raises(PreflightError) as info:
        tune(config)
    assert info.value.findings.codes() == ["LW312"]
    assert not (tmp_path / "out").exists()


BARRIER_DIR = Path(__file__).resolve().parent / "trial_barrier"


def wait_for(check, what, timeout=600.0, proc=None):
    """Poll ``check()`` until it holds (no fixed sleeps: a loaded machine only waits longer)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the search ended ({proc.returncode}) before {what}")
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_two_workers_share_one_sqlite_study(tmp_path, tiny_model, monkeypatch):
    # Each worker's first trial waits until the other worker runs one too
    # (tests/trial_barrier/sitecustomize.py): the two processes share the study side by side
    # however the machine schedules their start-up.
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(BARRIER_DIR), *filter(None, [os.environ.get("PYTHONPATH")])]))
    monkeypatch.setenv("LABELWISE_TEST_BARRIER", str(barrier))
    monkeypatch.setenv("LABELWISE_TEST_BARRIER_N", "2")
    result = tune(make(tmp_path, tiny_model, n_trials=4), workers=2)
    numbers = [t.number for t in result.trials]
    assert sorted(numbers) == [0, 1, 2, 3] and len(set(numbers)) == 4
    assert len(list(barrier.iterdir())) == 2  # two worker processes reached a trial
    import optuna

    study = optuna.load_study(study_name="labelwise",
                              storage=f"sqlite:///{tmp_path / 'out' / 'study.db'}")
    assert {t.user_attrs["worker"] for t in study.trials} == {0, 1}
    assert len({t.user_attrs["pid"] for t in study.trials}) == 2
    assert all(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials)
    assert len(list((tmp_path / "out").rglob("model.safetensors"))) == 1


def test_resume_after_sigkill_mid_trial(tmp_path, tiny_model, monkeypatch):
    import sqlite3

    import optuna

    config = make(tmp_path, tiny_model, n_trials=4)
    path = tmp_path / "run.json"
    path.write_text(config.model_dump_json())
    flag = tmp_path / "blocked"
    env = {**os.environ, "LABELWISE_HEARTBEAT": "1", "LABELWISE_GRACE": "2"}
    # The search's second trial blocks (after the first has completed) until it is killed.
    code = ("import json, time\nfrom pathlib import Path\n"
            "from labelwise.plan.config import config_from_dict\n"
            "import labelwise.tuning._runner as r\nreal = r.TrialRunner.run\ncalls = []\n"
            "def run(self, params, **kw):\n    calls.append(1)\n    if len(calls) == 2:\n"
            f"        Path({str(flag)!r}).write_text('')\n"
            "        while True:\n            time.sleep(0.05)\n"
            "    return real(self, params, **kw)\nr.TrialRunner.run = run\n"
            "from labelwise.tuning import tune\n"
            f"tune(config_from_dict(json.load(open({str(path)!r}))))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "out" / "study.db"
    storage = f"sqlite:///{db}"

    def heartbeats() -> int:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM trial_heartbeats").fetchone()[0]

    try:
        wait_for(flag.exists, "the second trial", proc=proc)
        wait_for(lambda: heartbeats() > 0, "the running trial's heartbeat", proc=proc)
        study = optuna.load_study(study_name="labelwise", storage=storage)
        trials = study.get_trials(deepcopy=False)
        finished = [(t.number, t.value) for t in trials if t.state.name == "COMPLETE"]
        running = [t.number for t in trials if t.state.name == "RUNNING"]
    finally:
        proc.kill()
        proc.wait()
    assert len(finished) == 1 and len(running) == 1
    with warnings.catch_warnings():  # the heartbeat arguments are experimental in Optuna
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        watcher = optuna.storages.RDBStorage(storage, heartbeat_interval=1, grace_period=2)
    study_id = watcher.get_study_id_from_name("labelwise")
    wait_for(lambda: watcher._get_stale_trial_ids(study_id), "the heartbeat to go stale")
    monkeypatch.setenv("LABELWISE_HEARTBEAT", "1")
    monkeypatch.setenv("LABELWISE_GRACE", "2")
    result = tune(config)
    states = {t.number: t for t in result.trials}
    for number, value in finished:  # the finished trial is kept as it was
        assert states[number].state == "COMPLETE" and states[number].value == value
    counted = [t for t in result.trials if t.state in ("COMPLETE", "PRUNED")]
    assert len(counted) == 4
    killed = [t for t in result.trials if t.state == "FAIL"]
    assert [t.number for t in killed] == running
    assert re.fullmatch(r"process died \(retried as trial \d+\)", killed[0].reason)


def test_refit_retrains_best_params_on_train_and_valid(tmp_path, tiny_model):
    result = tune(make(tmp_path, tiny_model, n_trials=2, search={"refit": True,
                                                                 "pruner": "none"}))
    manifest = json.loads((tmp_path / "out" / "best" / "labelwise.json").read_text())
    assert manifest["refit"] is True and manifest["trial"] == result.best_trial
    assert manifest["params"] == result.best_params
    assert "test" in manifest["metrics"]
    assert manifest["stats"]["steps"] == 6  # (64 + 24 rows) / 16 per batch, one epoch
    assert predict(tmp_path / "out" / "best", ["good film"]).labels[0] in ("neg", "pos")


def test_search_timeout_from_the_config_stops_starting_trials(tmp_path, tiny_model):
    config = make(tmp_path, tiny_model, n_trials=50, search={"timeout": 0.5, "pruner": "none"})
    result = tune(config)
    assert 1 <= len(result.trials) < 50  # the first trial starts, then the time is up
    assert result.trials[0].state == "COMPLETE"  # never stopped: the search needs a model


def test_search_timeout_stops_the_running_trial_once_one_has_completed(tmp_path, tiny_model):
    tune(make(tmp_path, tiny_model, n_trials=1, search={"pruner": "none"}))
    best = (tmp_path / "out" / "best" / "model.safetensors").read_bytes()
    # same study, a trial that would run for minutes, an 8-second budget
    config = make(tmp_path, tiny_model, n_trials=2, search={"pruner": "none", "timeout": 8},
                  train={"epochs": 1000})
    started = time.monotonic()
    result = tune(config)
    assert time.monotonic() - started < 60
    last = result.trials[1]
    assert last.state == "PRUNED", (last.state, last.reason)
    assert re.fullmatch(r"stopped at step \d+ of \d+: the search timeout \(8 s\) was reached",
                        last.reason)
    assert 0 < last.step_seconds <= last.duration_s  # its steps count as training time
    assert result.best_trial == 0
    assert (tmp_path / "out" / "best" / "model.safetensors").read_bytes() == best


def test_reports_are_keyed_by_evaluation_number_whatever_the_batch_size(tmp_path, tiny_model):
    import optuna

    config = make(tmp_path, tiny_model, n_trials=4, search={"sampler": "random", "seed": 1,
                                                            "pruner": "none"},
                  space={"train.batch_size": {"type": "categorical", "choices": [4, 16]}},
                  train={"epochs": 1, "evals_per_epoch": 2})
    tune(config)
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{tmp_path}/out/study.db")
    keys = {t.params["train.batch_size"]: sorted(t.intermediate_values) for t in study.trials}
    assert keys == {4: [1, 2], 16: [1, 2]}, keys  # steps would be 8, 16 and 2, 4


@pytest.mark.parametrize("base_decay, refit", [(0.0, False), (0.1, True)])
def test_best_dir_records_the_decisions_of_the_best_trials_own_config(tmp_path, tiny_model,
                                                                     base_decay, refit):
    # Whichever weight decay wins, one of the two base values differs from it: a best/
    # that kept the base plan's decisions would record the other embedding_rows.
    from labelwise.plan.preflight import preflight
    from labelwise.plan.space import apply_params

    config = make(tmp_path, tiny_model, n_trials=2, train={"weight_decay": base_decay},
                  space={"train.weight_decay": {"type": "categorical",
                                                "choices": [0.0, 0.1]}},
                  search={"pruner": "none", "sampler": "random", "seed": 0, "refit": refit})
    result = tune(config)
    assert {t.params["train.weight_decay"] for t in result.trials} == {0.0, 0.1}
    manifest = json.loads((tmp_path / "out" / "best" / "labelwise.json").read_text())
    best = apply_params(config, result.best_params)
    decided = {d["key"]: d["value"] for d in manifest["plan"]["decisions"]}
    assert decided["embedding_rows"] == ("all" if best.train.weight_decay > 0
                                         else "tokens in train and valid")
    assert manifest["plan"]["config"]["train"]["weight_decay"] == best.train.weight_decay
    from labelwise.training.device import device_facts

    expected = preflight(best, search=True, facts=device_facts()).to_dict()["decisions"]
    assert manifest["plan"]["decisions"] == expected

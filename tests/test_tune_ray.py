"""The Ray Tune backend on a real local Ray cluster: a head and a second node, each a
process started here on 127.0.0.1 with one CPU, torn down at the end.

The cluster (the ``ray_cluster`` fixture of ``conftest.py``, started once per test session)
loads ``tests/ray_fault/sitecustomize.py``: a trial with learning rate 0.002 raises there, so
one trial of the search fails for real, inside a Ray worker. Without Ray installed these
tests are skipped, unless ``LABELWISE_REQUIRE_SERVICES=1`` (set by CI), which turns the skip
into a failure.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from labelwise.training.predict import predict
from labelwise.tuning import tune

from tuning_data import RAY_FAIL_LR, make

FAIL_LR = RAY_FAIL_LR  # a trial at this learning rate raises inside the test cluster
# the seeded random sampler draws 0.005, 0.005, 0.002, 0.005: one trial of four fails
SPACE = {"train.learning_rate": {"type": "categorical", "choices": [0.005, FAIL_LR]}}
SEARCH = {"sampler": "random", "seed": 6, "pruner": "none", "ray": {"cpus_per_trial": 1}}


def _results(out: Path) -> list[dict]:
    rows = []
    for path in sorted((out / "ray" / "labelwise").glob("trial_*/result.json")):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if lines:
            rows.append({"dir": path.parent.name, "pid": lines[-1]["pid"],
                         "end": lines[-1]["timestamp"],
                         "start": lines[-1]["timestamp"] - lines[-1]["time_total_s"],
                         "final": bool(lines[-1].get("final"))})
    return rows


def test_two_nodes_run_trials_at_once_and_a_failed_trial_does_not_stop_the_run(
        tmp_path, tiny_model, ray_cluster):
    import ray

    config = make(tmp_path, tiny_model, n_trials=4, space=SPACE, search=SEARCH,
                  train={"epochs": 4})
    try:
        result = tune(config, backend="ray", ray_address=ray_cluster, timeout=300)
    finally:
        ray.shutdown()
    out = tmp_path / "out"
    by_state = {t.number: (t.state, t.params["train.learning_rate"], t.reason)
                for t in result.trials}
    assert sorted(by_state) == [0, 1, 2, 3]
    failed = [n for n, (state, _, _) in by_state.items() if state == "FAIL"]
    assert failed, by_state
    for state, lr, reason in by_state.values():
        if lr == FAIL_LR:
            assert state == "FAIL"
            assert reason == "RuntimeError: injected failure for this learning rate"
        else:
            assert state == "COMPLETE", by_state
    csv = pd.read_csv(out / "trials.csv")
    assert csv["number"].tolist() == [0, 1, 2, 3]
    assert csv.loc[csv["state"] == "FAIL", "reason"].str.startswith("RuntimeError").all()
    manifest = json.loads((out / "best" / "labelwise.json").read_text())
    assert manifest["trial"] == result.best_trial and "test" in manifest["metrics"]
    assert len(list(out.rglob("model.safetensors"))) == 1
    assert predict(out / "best", ["good great film"]).labels[0] in ("neg", "pos")
    runs = _results(out)
    assert len({r["pid"] for r in runs}) >= 2  # trials ran in workers of both nodes
    spans = sorted((r["start"], r["end"]) for r in runs)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans  # two at once


def test_rerun_restores_a_search_whose_driver_was_killed(tmp_path, tiny_model, ray_cluster):
    config = make(tmp_path, tiny_model, n_trials=4, space=SPACE, search=SEARCH,
                  train={"epochs": 60, "evals_per_epoch": 1})
    path = tmp_path / "run.json"
    path.write_text(config.model_dump_json())
    cmd = [sys.executable, "-m", "labelwise", "tune", "--config", str(path), "--backend",
           "ray", "--ray-address", ray_cluster, "--no-report"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    out = tmp_path / "out"
    deadline = time.time() + 300
    while time.time() < deadline and driver.poll() is None:
        if (out / ".best.json").exists():  # a trial finished and published best/
            break
        time.sleep(0.1)
    assert (out / ".best.json").exists(), "no trial finished while the driver ran"
    time.sleep(2.0)  # the trial saves best/, then reports its result to the driver
    assert driver.poll() is None, "the search ended before the driver could be killed"
    os.kill(driver.pid, signal.SIGKILL)
    killed_at = time.time()
    driver.wait()
    first = json.loads((out / ".best.json").read_text())["trial"]
    assert not (out / "trials.csv").exists()
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "restoring the Ray search" in again.stderr + again.stdout
    csv = pd.read_csv(out / "trials.csv")
    assert csv["number"].tolist() == [0, 1, 2, 3]
    assert sorted(csv["state"]) == ["COMPLETE", "COMPLETE", "COMPLETE", "FAIL"]
    ends = {int(r["dir"].split("_")[1]) - 1: r["end"] for r in _results(out)}
    assert ends[first] < killed_at  # the trial finished before the kill was not run again
    assert max(ends.values()) > killed_at  # the unfinished ones ran after the restore
    assert (out / "best" / "model.safetensors").exists()


def test_a_worker_whose_data_differs_refuses_to_run(tmp_path, tiny_model):
    from labelwise.plan.preflight import preflight
    from labelwise.errors import SchemaMismatchError
    from labelwise.tuning._ray import _runner_for, absolute_config
    from labelwise.tuning._runner import study_key
    from labelwise.plan.space import search_space

    config = absolute_config(make(tmp_path, tiny_model, n_trials=1))
    plan = preflight(config, search=True)
    key = study_key(plan, search_space(config)[0])
    frame = pd.read_csv(config.data.train)  # this node's copy of the file differs
    frame.loc[0, "text"] = "another first row"
    frame.to_csv(config.data.train, index=False)
    spec = {"config": config.model_dump(mode="json"), "key": key, "cpus": 1}
    with pytest.raises(SchemaMismatchError, match="this worker's data yields other "
                       "data_fingerprints than the driver's") as info:
        _runner_for(spec)
    assert info.value.code == "LW354"


def test_without_ray_installed_the_error_names_the_extra(tmp_path, tiny_model, monkeypatch):
    from labelwise.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingDependencyError, match="the ray backend needs Ray Tune") as info:
        tune(make(tmp_path, tiny_model, n_trials=1), backend="ray")
    assert "pip install 'labelwise[ray]'" in str(info.value)
    assert not (tmp_path / "out").exists()

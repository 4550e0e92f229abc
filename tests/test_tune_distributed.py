"""Tuning across processes and machines on the Optuna backend: PostgreSQL with --join,
Optuna's journal file, and the refusals that keep every process on the same labels.

The PostgreSQL tests need a server: ``eval "$(scripts/postgres.sh start)"`` sets
``LABELWISE_TEST_POSTGRES``. Without it they are skipped, unless
``LABELWISE_REQUIRE_SERVICES=1`` (set by CI), which turns the skip into a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pandas as pd
import pytest

from labelwise.errors import ConfigError, MissingDependencyError, SchemaMismatchError
from labelwise.training.predict import predict
from labelwise.tuning import tune

from tuning_data import make

BARRIER_DIR = Path(__file__).resolve().parent / "trial_barrier"


@pytest.fixture
def postgres_url():
    url = os.environ.get("LABELWISE_TEST_POSTGRES")
    if not url:
        if os.environ.get("LABELWISE_REQUIRE_SERVICES") == "1":
            pytest.fail("LABELWISE_TEST_POSTGRES is not set; run scripts/postgres.sh start")
        pytest.skip("no PostgreSQL: eval \"$(scripts/postgres.sh start)\" to run this test")
    return url


def _cli(config_path, *args, out):
    return [sys.executable, "-m", "labelwise", "tune", "--config", str(config_path),
            "--output-dir", str(out), "--no-report", *args]


def _write(config, path):
    path.write_text(config.model_dump_json())
    return path


def test_two_machines_finish_one_postgres_study(tmp_path, tiny_model, postgres_url):
    import optuna

    study = f"t-{uuid.uuid4().hex[:8]}"
    config = make(tmp_path, tiny_model, n_trials=6, search={"pruner": "none"},
                  train={"epochs": 4})
    path = _write(config, tmp_path / "run.json")
    # each machine's first trial waits until the other machine runs one too
    # (tests/trial_barrier/sitecustomize.py): however fast the first one is, both run trials
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LABELWISE_TEST_BARRIER": str(barrier),
           "LABELWISE_TEST_BARRIER_N": "2", "PYTHONPATH": os.pathsep.join(
               [str(BARRIER_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])}
    first = subprocess.Popen(_cli(path, "--storage", postgres_url, "--study", study,
                                  out=tmp_path / "first"), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:  # the first machine creates the study
        names = [s.study_name for s in optuna.get_all_study_summaries(postgres_url)]
        if study in names:
            break
        time.sleep(0.5)
    second = subprocess.run(_cli(path, "--storage", postgres_url, "--study", study, "--join",
                                 out=tmp_path / "second"), env=env, capture_output=True,
                            text=True, timeout=600)
    output, _ = first.communicate(timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert first.returncode == 0, output
    assert "joined: the machine that started the study writes best/" in second.stdout
    loaded = optuna.load_study(study_name=study, storage=postgres_url)
    trials = loaded.get_trials(deepcopy=False)
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.name == "COMPLETE" for t in trials)
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both processes ran trials
    csv = pd.read_csv(tmp_path / "first" / "trials.csv")
    assert csv["number"].tolist() == list(range(6))
    manifest = json.loads((tmp_path / "first" / "best" / "labelwise.json").read_text())
    # best/ holds a best trial (of tied ones, the first to finish; Optuna may name another)
    by_number = {t.number: t for t in trials}
    assert by_number[manifest["trial"]].value == loaded.best_value
    assert "test" in manifest["metrics"]
    assert not (tmp_path / "second" / "report.html").exists()
    assert predict(tmp_path / "first" / "best", ["good great film"]).labels[0] in ("neg", "pos")
    optuna.delete_study(study_name=study, storage=postgres_url)


def test_join_with_other_data_is_refused_before_any_trial(tmp_path, tiny_model, postgres_url):
    import optuna

    study = f"t-{uuid.uuid4().hex[:8]}"
    tune(make(tmp_path, tiny_model, n_trials=1), storage=postgres_url, study=study)
    other = make(tmp_path, tiny_model, n_trials=1, out="joiner")
    frame = pd.read_csv(other.data.train)
    frame.loc[0, "text"] = "a row this machine has and the first one has not"
    frame.to_csv(other.data.train, index=False)
    with pytest.raises(SchemaMismatchError, match=f"study '{study}' was started with other "
                       "data_fingerprints") as info:
        tune(other, storage=postgres_url, study=study, join=True)
    assert info.value.code == "LW351"
    assert len(optuna.load_study(study_name=study, storage=postgres_url).trials) == 1
    assert not (tmp_path / "joiner" / "trials.csv").exists()
    optuna.delete_study(study_name=study, storage=postgres_url)


def test_join_needs_an_existing_study_and_a_storage(tmp_path, tiny_model):
    config = make(tmp_path, tiny_model, n_trials=1)
    storage = f"sqlite:///{tmp_path / 'nothing.db'}"
    with pytest.raises(ConfigError, match="there is no study 'labelwise' to join") as info:
        tune(config, storage=storage, join=True)
    assert info.value.code == "LW353"
    with pytest.raises(ConfigError, match="join=True needs the storage") as info:
        tune(config, join=True)
    assert info.value.code == "LW334"


def test_ray_backend_refuses_optuna_options(tmp_path, tiny_model):
    config = make(tmp_path, tiny_model, n_trials=1)
    for kwargs, flag in (({"storage": "sqlite:///x.db"}, "storage="), ({"join": True},
                         "join=True"), ({"workers": 2}, "workers=")):
        with pytest.raises(ConfigError, match=f"{flag} is an option of the optuna backend, "
                           "not of ray"):
            tune(config, backend="ray", **kwargs)
    with pytest.raises(ConfigError, match="unknown backend 'dask'"):
        tune(config, backend="dask")
    assert not (tmp_path / "out").exists()


def test_postgres_url_without_a_driver_names_the_extra(monkeypatch):
    import importlib.util

    from labelwise.tuning._storage import make_storage

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in (
        "psycopg2", "psycopg") else real(name, *a))
    with pytest.raises(MissingDependencyError, match="needs a PostgreSQL driver") as info:
        make_storage("postgresql://me:secret@db.example:5432/studies")
    assert "pip install 'labelwise[postgres]'" in str(info.value)
    assert "secret" not in str(info.value) and "me:***@db.example" in str(info.value)


def test_unreachable_storage_is_one_line(tmp_path):
    from labelwise.tuning._storage import make_storage

    with pytest.raises(ConfigError, match="cannot open the study storage") as info:
        make_storage("postgresql://me:secret@127.0.0.1:9/studies")
    assert info.value.code == "LW333" and "secret" not in str(info.value)
    with pytest.raises(ConfigError, match="journal file's directory does not exist"):
        make_storage(f"journal://{tmp_path / 'missing' / 'study.log'}")


def test_two_workers_share_a_journal_file(tmp_path, tiny_model):
    storage = f"journal://{tmp_path / 'study.log'}"
    result = tune(make(tmp_path, tiny_model, n_trials=4), workers=2, storage=storage)
    numbers = sorted(t.number for t in result.trials)
    assert numbers == [0, 1, 2, 3]
    assert all(t.state in ("COMPLETE", "PRUNED") for t in result.trials)
    assert (tmp_path / "out" / "best" / "model.safetensors").exists()
    assert json.loads((tmp_path / "out" / "search.json").read_text())["storage"] == storage

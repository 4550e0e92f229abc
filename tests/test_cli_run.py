"""`labelwise train`, `predict`, `tune`, `dashboard` as a user runs them."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.request

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app

runner = CliRunner()


def setup(tmp_path, tiny_model, search=""):
    for name, n in (("t.csv", 32), ("v.csv", 16)):
        pd.DataFrame({"text": [f"good film {i}" if i % 2 else f"bad plot {i}" for i in range(n)],
                      "label": ["pos" if i % 2 else "neg" for i in range(n)]}).to_csv(
            tmp_path / name, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{train: {tmp_path}/t.csv, valid: {tmp_path}/v.csv}}\n"
                      f"model: {{name_or_path: {tiny_model}, max_length: 16}}\n"
                      "train: {max_steps: 2, batch_size: 8}\n" + search)
    return config


def test_train_then_predict(tmp_path, tiny_model):
    config = setup(tmp_path, tiny_model)
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--config", str(config), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    assert "num_labels=2 (2 classes in column 'label')" in " ".join(result.output.split())
    assert f"saved {out}" in " ".join(result.output.split())
    assert re.search(r"thresholds \(tuned on validation\): pos \d\.\d{3}( \(default\))?$",
                     result.output, re.M), result.output
    again = runner.invoke(app, ["train", "--config", str(config), "--output-dir", str(out)])
    assert again.exit_code == 2 and "LW331 output directory is not empty" in " ".join(
        again.output.split())
    preds = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(out), str(tmp_path / "v.csv"), "--output",
                                 str(preds)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(preds)
    assert list(frame.columns) == ["text", "label", "pred_label", "pred_score_neg",
                                   "pred_score_pos"]
    assert set(frame["pred_label"]) <= {"neg", "pos"} and len(frame) == 16
    bad = runner.invoke(app, ["predict", str(out), str(tmp_path / "v.csv"), "--text-column",
                              "body"])
    assert bad.exit_code == 2
    assert "text column 'body' not found in the input split" in " ".join(bad.output.split())


def test_train_preflight_failure_exits_2_without_traceback(tmp_path, tiny_model):
    config = setup(tmp_path, tiny_model)
    proc = subprocess.run([sys.executable, "-m", "labelwise.cli.app", "train", "--config",
                           str(config), "--task", "multiclass", "--set",
                           "model.binary_head=one_logit", "--output-dir", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "LW209" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_tune_cli_and_dashboard(tmp_path, tiny_model):
    search = ("search:\n  n_trials: 2\n  objective: {metric: f1, direction: maximize}\n"
              "  space:\n    train.learning_rate: {type: float, low: 1.0e-4, high: 1.0e-3, "
              "log: true}\n")
    config = setup(tmp_path, tiny_model, search)
    out = tmp_path / "search"
    result = runner.invoke(app, ["tune", "--config", str(config), "--output-dir", str(out)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Trials (objective: f1, maximize)" in text and "2 trials: 2 complete" in text
    assert (out / "best" / "labelwise.json").exists()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "labelwise.cli.app", "dashboard", str(out),
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        body = ""
        deadline = time.monotonic() + 300  # polled: a loaded machine starts it later
        while not body and time.monotonic() < deadline and proc.poll() is None:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies",
                                              timeout=2).read().decode()
            except OSError:
                time.sleep(0.1)
        assert '"study_name": "labelwise"' in body or '"study_name":"labelwise"' in body
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_dashboard_on_a_non_search_dir(tmp_path):
    result = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a labelwise tune output directory" in " ".join(result.output.split())


@pytest.mark.parametrize("saved,message", [
    ({"backend": "ray", "storage": None}, "LW336 a Ray search keeps no Optuna study to show"),
    ({"backend": "optuna", "storage": "postgresql://me:***@db/studies"},
     "LW335 the study's storage URL was saved without its password"),
])
def test_dashboard_explains_what_it_cannot_open(tmp_path, saved, message):
    (tmp_path / "tune.json").write_text(json.dumps(saved))
    result = runner.invoke(app, ["dashboard", str(tmp_path)])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


@pytest.mark.parametrize("cmd", [["train"], ["tune"]])
def test_missing_output_dir(tmp_path, tiny_model, cmd):
    config = setup(tmp_path, tiny_model)
    result = runner.invoke(app, [*cmd, "--config", str(config)])
    assert result.exit_code == 2
    assert "LW330 no output directory given" in " ".join(result.output.split())

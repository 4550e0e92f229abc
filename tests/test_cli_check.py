"""`labelwise check`: what a run or search would check, exit codes, JSON, no torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
from typer.testing import CliRunner

from labelwise.cli.app import app

runner = CliRunner()


def setup(tmp_path, labels=("neg", "pos"), extra=""):
    for name, n in (("t.csv", 20), ("v.csv", 4)):
        pd.DataFrame({"text": [f"{name} {i}" for i in range(n)],
                      "label": [labels[i % len(labels)] for i in range(n)]}).to_csv(
            tmp_path / name, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{train: {tmp_path}/t.csv, valid: {tmp_path}/v.csv}}\n{extra}")
    return config


SEARCH = """search:
  n_trials: 20
  objective: {metric: f1, direction: maximize, split: valid}
  space:
    train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    train.batch_size: {type: categorical, choices: [16, 32]}
"""


def test_check_passes_and_prints_plan(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(setup(tmp_path, extra=SEARCH))])
    assert result.exit_code == 0, result.output
    assert "num_labels=2  (2 classes in column 'label')" in result.output
    assert "preflight passed" in result.output


def test_check_json(tmp_path):
    result = runner.invoke(app, ["check", "--config", str(setup(tmp_path)), "--format", "json"])
    out = json.loads(result.stdout)
    assert out["ok"] and out["task"] == "binary" and out["num_labels"] == 2
    assert out["contract"]["loss"] == "cross_entropy"
    assert {"fingerprint", "findings", "decisions", "classes"} <= set(out)


def test_check_flags_override_file(tmp_path):
    config = setup(tmp_path, labels=("a", "b", "c"))
    result = runner.invoke(app, ["check", "--config", str(config), "--task", "binary",
                                 "--format", "json"])
    assert result.exit_code == 2
    assert json.loads(result.stdout)["findings"][0]["code"] == "LW115"
    result = runner.invoke(app, ["check", "--config", str(config), "--set",
                                 "model.binary_head=one_logit"])
    assert result.exit_code == 2
    assert "LW209" in result.output


def test_check_without_config_file(tmp_path):
    setup(tmp_path)
    result = runner.invoke(app, ["check", "--train", str(tmp_path / "t.csv"), "--valid",
                                 str(tmp_path / "v.csv")])
    assert result.exit_code == 0, result.output


def check_in_subprocess(config):
    """Run `labelwise check` in a fresh process; report its exit code and heavy imports."""
    code = ("import sys\nfrom labelwise.cli.app import app\n"
            f"try:\n    app(['check', '--config', {str(config)!r}])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'transformers', 'optuna')"
            " if m in sys.modules))\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_check_exit_2_no_traceback_and_no_torch(tmp_path):
    proc = check_in_subprocess(setup(tmp_path, extra="train: {learnig_rate: 1e-4}\n"))
    assert "EXIT 2" in proc.stdout and proc.stdout.strip().endswith("HEAVY=")
    assert "Traceback" not in proc.stderr
    assert "unknown key 'train.learnig_rate' (did you mean 'train.learning_rate'?)" in \
        " ".join(proc.stderr.split())


def test_check_passing_run_imports_no_torch(tmp_path):
    proc = check_in_subprocess(setup(tmp_path, extra=SEARCH))
    assert "EXIT 0" in proc.stdout and proc.stdout.strip().endswith("HEAVY=")


LONG = "a long sentence that goes on and on about the film and its many scenes"


def _check_max_length_8(tmp_path, train_texts, valid_texts):
    """``check --format json`` with model.max_length 8 on these texts; the LW131 finding."""
    for name, texts in (("t.csv", train_texts), ("v.csv", valid_texts)):
        pd.DataFrame({"text": texts, "label": ["neg", "pos"] * (len(texts) // 2)}).to_csv(
            tmp_path / name, index=False)
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {{train: {tmp_path}/t.csv, valid: {tmp_path}/v.csv}}\n"
                      "model: {max_length: 8}\n")
    result = runner.invoke(app, ["check", "--config", str(config), "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    (warning,) = [f for f in out["findings"] if f["code"] == "LW131"]
    return config, out, warning


def test_check_reports_truncated_share_per_split_and_warns_when_most(tmp_path):
    config, out, warning = _check_max_length_8(
        tmp_path, *[[f"{LONG} {i}" if i % 4 else f"short {i}" for i in range(n)]
                    for n in (20, 4)])
    assert warning["level"] == "warning"
    assert warning["message"].startswith("model.max_length=8 truncates most rows: train 75.0% "
                                         "(15 of 20), validation 75.0% (3 of 4)")
    (decision,) = [d for d in out["decisions"] if d["key"] == "max_length"]
    assert decision["value"] == 8
    result = runner.invoke(app, ["check", "--config", str(config), "--set",
                                 "model.max_length=128", "--format", "json"])
    out = json.loads(result.stdout)
    assert not [f for f in out["findings"] if f["code"] == "LW131"]
    (decision,) = [d for d in out["decisions"] if d["key"] == "max_length"]
    assert decision["reason"] == ("rows truncated: train 0.0% (0 of 20), validation 0.0% "
                                  "(0 of 4)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.yaml", "t.csv", "v.csv"]


def test_check_measures_a_large_split_on_a_sample_and_says_so(tmp_path, monkeypatch):
    from labelwise.plan import truncation

    monkeypatch.setattr(truncation, "SAMPLE", 12)
    _, _, warning = _check_max_length_8(tmp_path, [f"{LONG} {i}" for i in range(40)],
                                        [f"short {i}" for i in range(6)])
    # every train row is long: the sample of 12 of 40 says 100%, marked as a sample
    assert warning["message"].startswith("model.max_length=8 truncates most rows: train "
                                         "~100.0% (12 of a sample of 12 of 40), validation "
                                         "0.0% (0 of 6); the longest sampled train row has ")


def test_check_measures_truncation_without_torch(tmp_path):
    config = setup(tmp_path, extra="model: {max_length: 8}\n")
    proc = check_in_subprocess(config)
    assert "EXIT 0" in proc.stdout and proc.stdout.strip().endswith("HEAVY=")
    assert "max_length=8" in " ".join(proc.stdout.split())

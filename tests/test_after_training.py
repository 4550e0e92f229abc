"""The findings after training on tiny models made to fail: a class given one row, a zero
learning rate, a frozen head, a validation split that contradicts training, and a search."""

from __future__ import annotations

import csv
import json
import random
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.plan.config import config_from_dict
from labelwise.training.train import train

runner = CliRunner()
FILLER = "film plot story actor city river".split()
KEYS = {"a": "good great", "b": "bad awful", "c": "fine"}


def write(path, labels, *, keys=KEYS, seed=0, column="label"):
    rnd = random.Random(seed)
    rows = []
    for label in labels:
        words = [rnd.choice(FILLER) for _ in range(rnd.randint(2, 5))]
        words.insert(rnd.randint(0, len(words)), keys[label])
        rows.append({"text": " ".join(words), column: label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def config(tmp_path, tiny_model, train_labels, valid_labels, *, valid_keys=KEYS, **train_opts):
    return config_from_dict({
        "data": {"train": write(tmp_path / "train.csv", train_labels, seed=1),
                 "valid": write(tmp_path / "valid.csv", valid_labels, keys=valid_keys, seed=2)},
        "model": {"name_or_path": str(tiny_model), "max_length": 16},
        "train": {"max_steps": 30, "batch_size": 8, "learning_rate": 1e-2,
                  "evals_per_epoch": 1, **train_opts},
        "output_dir": str(tmp_path / "out")})


def codes(result):
    return [f.code for f in result.diagnosis.findings]


def test_a_class_given_one_row_is_never_predicted_and_said_everywhere(tmp_path, tiny_model):
    cfg = config(tmp_path, tiny_model, ["a", "b"] * 30 + ["c"], ["a", "b", "c"] * 8)
    path = tmp_path / "run.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json", exclude_none=True)))
    shown = runner.invoke(app, ["train", "--config", str(path), "--no-report"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert "After training (judged on validation)" in text
    assert ("LW601 class 'c' never predicted on validation (8 validation rows, 1 training row)"
            in text), text
    assert "fix: set train.class_weights: balanced" in text
    out = tmp_path / "out"
    saved = json.loads((out / "metrics.json").read_text())
    found = saved["after_training"]["findings"]
    assert [f["code"] for f in found if f["code"] in ("LW601", "LW605")] == ["LW601"]
    assert saved["after_training"]["checks"]["predicted"]["c"] == 0
    assert json.loads((out / "labelwise.json").read_text())["after_training"] == \
        saved["after_training"]
    card = (out / "README.md").read_text()
    assert "## Limitations found after training" in card
    assert "| LW601 | class 'c' never predicted on validation" in card

    from labelwise.report.html import write_report

    page = write_report(out).read_text()
    assert '<section id="after-training">' in page and "class &#x27;c&#x27; never" in page


def test_a_zero_learning_rate_learns_nothing(tmp_path, tiny_model):
    result = train(config(tmp_path, tiny_model, ["a", "b"] * 24, ["a", "b"] * 12,
                          learning_rate=1e-12, max_steps=6))
    found = {f.code: f for f in result.diagnosis.findings}
    assert {"LW605", "LW606"} <= set(found)
    assert found["LW605"].message.startswith("learned nothing: the training loss ended at ")
    assert "0.6931, the loss of predicting the training label prior" in found["LW605"].message
    assert "raise train.learning_rate (now 1e-12)" in found["LW605"].fix


class FrozenHead:
    """A classifier head frozen at zero weights: the same output for every row."""

    def __new__(cls):
        import torch
        from transformers import TrainerCallback

        class Freeze(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kw):
                with torch.no_grad():
                    model.classifier.weight.zero_()
                model.classifier.weight.requires_grad_(False)

        return Freeze()


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_a_frozen_head_collapses_the_model(tmp_path, tiny_model, task):
    if task == "regression":
        rnd = random.Random(0)
        for name, n in (("train.csv", 48), ("valid.csv", 24)):
            pd.DataFrame({"text": [" ".join(rnd.choice(FILLER) for _ in range(4))
                                   for _ in range(n)],
                          "V": [rnd.uniform(1, 5) for _ in range(n)],
                          "A": [rnd.uniform(0, 9) for _ in range(n)]}).to_csv(
                tmp_path / name, index=False)
        cfg = config_from_dict({
            "data": {"train": str(tmp_path / "train.csv"), "valid": str(tmp_path / "valid.csv"),
                     "label_columns": ["V", "A"]},
            "model": {"name_or_path": str(tiny_model), "max_length": 16},
            "train": {"max_steps": 6, "batch_size": 8}, "output_dir": str(tmp_path / "out")})
    elif task == "binary":
        cfg = config(tmp_path, tiny_model, ["a", "b"] * 24, ["a", "b"] * 12, max_steps=6)
    else:
        cfg = config(tmp_path, tiny_model, ["a"] * 30 + ["b"] * 10 + ["c"] * 8,
                     ["a", "b", "c"] * 8, max_steps=6)
    result = train(cfg, callbacks=[FrozenHead()])
    found = {f.code: f for f in result.diagnosis.findings}
    if task == "regression":
        assert [f.where.column for f in result.diagnosis.findings if f.code == "LW604"] == \
            ["V", "A"]
        assert "nearly one value for every row" in found["LW604"].message
        return
    assert "LW603" in found, found
    assert "of validation rows (24 of 24)" in found["LW603"].message
    assert "LW601" not in found  # the collapse names the classes it never predicts
    if task == "binary":  # one score for every row: its threshold predicts every row
        assert "LW607" in found and "'b'" in found["LW607"].message


def test_validation_much_worse_than_training_is_overfitting(tmp_path, tiny_model):
    # the training run of the test above (it learns 'a' against 'b'), judged on a validation
    # split whose 'a' and 'b' rows carry each other's words. A trial's model (the last one):
    # train() keeps the checkpoint best on validation, here the one that learned least.
    from labelwise.plan.preflight import preflight
    from labelwise.training.after import diagnose_run
    from labelwise.training.train import final_metrics, fit, prepare

    swapped = {"a": KEYS["b"], "b": KEYS["a"], "c": KEYS["c"]}
    plan = preflight(config(tmp_path, tiny_model, ["a", "b"] * 30 + ["c"],
                            ["a", "b", "c"] * 8, valid_keys=swapped))
    prepared = prepare(plan)
    fitted = fit(prepared, work=tmp_path / "work", save=False)
    outputs = {}
    final_metrics(prepared, fitted.model, splits=["valid"], keep=outputs)
    diagnosis = diagnose_run(prepared, fitted.model, plan=plan, valid=outputs["valid"],
                             thresholds=None, log_history=fitted.log_history)
    found = {f.code: f for f in diagnosis.findings}
    assert "LW608" in found, found
    assert found["LW608"].message.startswith("overfitting: macro_f1 is ")
    sample = diagnosis.checks["train_sample"]
    assert sample["rows"] == 24 and sample["macro_f1"] > 0.6


def test_a_search_records_findings_per_trial_and_prints_them_on_the_best_line(tmp_path,
                                                                             tiny_model):
    import yaml

    cfg = config(tmp_path, tiny_model, ["a", "b"] * 30 + ["c"], ["a", "b", "c"] * 8)
    data = cfg.model_dump(mode="json", exclude_none=True)
    data["search"] = {"n_trials": 2, "pruner": "none",
                      "objective": {"metric": "macro_f1", "direction": "maximize"},
                      "space": {"train.learning_rate": {"type": "float", "low": 5e-3,
                                                        "high": 1e-2, "log": True}}}
    path = tmp_path / "tune.yaml"
    path.write_text(yaml.safe_dump(data))
    shown = runner.invoke(app, ["tune", "--config", str(path), "--no-report"])
    assert shown.exit_code == 0, shown.output
    text = " ".join(shown.output.split())
    assert re.search(r"best trial \d: macro_f1=\d\.\d{4} — class 'c' never predicted on "
                     r"validation \(8 validation rows, 1 training row\)", text), text
    assert "After training (best trial" in text
    with (tmp_path / "out" / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert all("LW601 class 'c' never predicted" in r["findings"] for r in rows)
    best = json.loads((tmp_path / "out" / "best" / "metrics.json").read_text())
    assert "LW601" in [f["code"] for f in best["after_training"]["findings"]]
    assert "test" not in best  # no test split here; the findings survive the best/ rewrite

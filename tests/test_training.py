"""Training on a tiny random BERT: every task and head, the saved dir, pipeline, predict."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pandas as pd
import pytest

from labelwise.plan.preflight import preflight
from labelwise.plan.config import config_from_dict
from labelwise.errors import ConfigError
from labelwise.training.predict import predict
from labelwise.training.train import train

rnd = random.Random(0)
WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()


def texts(n, *, long_every=0):
    out = []
    for i in range(n):
        k = 40 if long_every and i % long_every == 0 else rnd.randint(2, 8)
        out.append(" ".join(rnd.choice(WORDS) for _ in range(k)))
    return out


def write(path, n, labels, **extra):
    frame = pd.DataFrame({"text": texts(n), **labels(n), **extra})
    frame.to_csv(path, index=False)
    return str(path)


TASKS = {
    "binary": ({}, lambda n: {"label": [["neg", "pos"][i % 2] for i in range(n)]}),
    "binary_one_logit": ({"model": {"binary_head": "one_logit"}},
                         lambda n: {"label": [["neg", "pos"][i % 2] for i in range(n)]}),
    "multiclass": ({}, lambda n: {"label": [["a", "b", "c"][i % 3] for i in range(n)]}),
    "multilabel": ({"data": {"label_columns": ["labels"]},
                    "train": {"label_smoothing": 0.1, "label_smoothing_mode": "bce"}},
                   lambda n: {"labels": [json.dumps([["x"], ["y"], ["x", "y"], []][i % 4])
                                         for i in range(n)]}),
    "regression": ({"data": {"label_columns": ["V", "A", "D"]}},
                   lambda n: {"V": [1 + (i % 7) / 3 for i in range(n)],
                              "A": [2 + (i % 5) / 4 for i in range(n)],
                              "D": [3 - (i % 3) / 5 for i in range(n)]}),
}


def make_config(tmp_path, tiny_model, name, **more):
    extra, labels = TASKS[name]
    data = {"train": write(tmp_path / "train.csv", 48, labels),
            "valid": write(tmp_path / "valid.csv", 24, labels),
            "test": write(tmp_path / "test.csv", 12, labels), **extra.get("data", {})}
    sections = {k: v for k, v in extra.items() if k != "data"}
    for key, value in more.items():
        sections.setdefault(key, {}).update(value)
    sections.setdefault("train", {}).update({"max_steps": sections.get("train", {}).get(
        "max_steps", 4), "batch_size": 8})
    return config_from_dict({"data": data, "model": {"name_or_path": str(tiny_model),
                                                     "max_length": 32,
                                                     **sections.pop("model", {})},
                             "output_dir": str(tmp_path / "out"), **sections})


EXPECT = {
    # name: (num_labels in config.json, problem_type, metric keys, thresholds count)
    "binary": (2, "single_label_classification", {"accuracy", "f1", "roc_auc", "mcc"}, 1),
    "binary_one_logit": (1, "multi_label_classification", {"accuracy", "f1", "pr_auc"}, 1),
    "multiclass": (3, "single_label_classification", {"accuracy", "macro_f1", "weighted_f1"},
                   None),
    "multilabel": (2, "multi_label_classification", {"micro_f1", "samples_f1",
                                                     "hamming_loss"}, 2),
    "regression": (3, "regression", {"mse", "mae", "r2", "pearson", "spearman"}, None),
}


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_and_head_trains_and_saves(tmp_path, tiny_model, name):
    config = make_config(tmp_path, tiny_model, name)
    before = config.model_dump_json()
    result = train(config)
    assert config.model_dump_json() == before  # the user's config is never mutated
    out = result.output_dir
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
        "labelwise.json", "metrics.json", "train_log.jsonl", "README.md"])
    width, problem, keys, n_thr = EXPECT[name]
    hf = json.loads((out / "config.json").read_text())
    assert hf["problem_type"] == problem and len(hf["id2label"]) == width
    manifest = json.loads((out / "labelwise.json").read_text())
    assert manifest["schema"]["fingerprint"] == result.plan.schema.fingerprint
    assert set(manifest["plan"]["data_fingerprints"]) == {"train", "valid", "test"}
    assert {"torch", "transformers", "labelwise"} <= set(manifest["versions"])
    assert set(result.metrics) == {"valid", "test"}
    assert keys <= set(result.metrics["test"])
    if n_thr is None:
        assert result.thresholds is None
    else:
        assert len(result.thresholds.values) == n_thr
    preds = predict(out, ["good film", "bad plot " * 30, "sad"])
    assert len(preds) == 3
    if name.startswith("binary"):
        assert set(preds.labels) <= {"neg", "pos"} and preds.scores.shape == (3, 2)
    elif name == "multiclass":
        assert set(preds.labels) <= {"a", "b", "c"}
        assert np.allclose(preds.scores.sum(axis=1), 1.0, atol=1e-5)
    elif name == "multilabel":
        assert all(set(v) <= {"x", "y"} for v in preds.labels)
    else:
        assert all(len(v) == 3 for v in preds.labels) and preds.class_names == ("V", "A", "D")


def test_pipeline_loads_the_dir_and_returns_label_names(tmp_path, tiny_model):
    from transformers import pipeline

    result = train(make_config(tmp_path, tiny_model, "multiclass"))
    clf = pipeline("text-classification", model=str(result.output_dir), device="cpu")
    out = clf(["good film", "sad story"])
    assert {o["label"] for o in out} <= {"a", "b", "c"}


def test_predictions_stay_aligned_with_input_rows(tmp_path, tiny_model):
    result = train(make_config(tmp_path, tiny_model, "multiclass"))
    rows = texts(40, long_every=3)  # very different lengths, shuffled
    batch = predict(result.output_dir, rows, batch_size=8)
    one_by_one = np.concatenate([predict(result.output_dir, [r]).scores for r in rows])
    assert np.allclose(batch.scores, one_by_one, atol=1e-5)


def test_thresholds_saved_applied_and_overridable(tmp_path, tiny_model):
    result = train(make_config(tmp_path, tiny_model, "multilabel"))
    saved = json.loads((result.output_dir / "labelwise.json").read_text())["thresholds"]
    assert len(saved["values"]) == 2 and len(saved["methods"]) == 2
    preds = predict(result.output_dir, ["good film"])
    assert preds.thresholds == tuple(saved["values"])
    assert predict(result.output_dir, ["good film"], thresholds=0.0).labels == [("x", "y")]
    assert predict(result.output_dir, ["good film"], thresholds=1.0).labels == [()]
    assert predict(result.output_dir, ["good"], thresholds={"x": 0.0, "y": 1.0}).labels == \
        [("x",)]
    with pytest.raises(ConfigError, match=re.escape("`len(thresholds) == 2` must hold")):
        predict(result.output_dir, ["good"], thresholds=[0.5])


def test_non_empty_output_dir_is_refused_and_kept(tmp_path, tiny_model):
    from labelwise.errors import OutputError

    config = make_config(tmp_path, tiny_model, "binary")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match=re.escape("output directory is not empty")):
        train(config)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(OutputError, match="replaces only a labelwise output") as info:
        train(config, overwrite=True)  # keep.txt is not a labelwise output
    assert info.value.code == "LW362"
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    first = train(config)
    train(config, overwrite=True)  # a labelwise output is replaced
    assert (out / "labelwise.json").exists() and first.output_dir == out


def test_crash_mid_save_leaves_no_half_model(tmp_path, tiny_model, monkeypatch):
    import labelwise.training.train

    def crash(path, **kwargs):
        path.mkdir(parents=True)
        (path / "config.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(labelwise.training.train, "save_model_dir", crash)
    config = make_config(tmp_path, tiny_model, "binary")
    with pytest.raises(OSError, match="disk full"):
        train(config)
    assert not (tmp_path / "out").exists()


def test_nan_loss_stops_loudly(tmp_path, tiny_model, monkeypatch):
    import torch

    import labelwise.training.trainer
    from labelwise.training.trainer import DivergedError

    monkeypatch.setattr(labelwise.training.trainer, "make_loss",
                        lambda contract: lambda logits, y: logits.sum() * torch.tensor(
                            float("nan")))
    with pytest.raises(DivergedError, match=re.escape("the training loss became nan at step 0")):
        train(make_config(tmp_path, tiny_model, "binary"))
    assert not (tmp_path / "out").exists()


def test_resume_continues_from_the_last_checkpoint(tmp_path, tiny_model):
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 5:
                raise KeyboardInterrupt

    config = make_config(tmp_path, tiny_model, "binary", train={"max_steps": 8,
                                                                "evals_per_epoch": 3})
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Crash()])
    partial = tmp_path / ".out.partial" / "checkpoints"
    assert sorted(p.name for p in partial.iterdir())[-1] == "checkpoint-4"
    result = train(config, resume=True)
    log = [json.loads(line) for line in (result.output_dir / "train_log.jsonl").open()]
    assert log[-1]["step"] == 8
    assert result.stats["steps"] == 8
    # the resumed run is the run that was not interrupted: the same loss at every step and
    # the same validation metrics at every evaluation (timings and Trainer's summary aside)
    whole = train(config.model_copy(update={"output_dir": str(tmp_path / "whole")}))
    assert _trajectory(log) == _trajectory(
        [json.loads(line) for line in (whole.output_dir / "train_log.jsonl").open()])


def _trajectory(log):
    keep = [{k: v for k, v in h.items() if k in ("step", "loss", "grad_norm", "learning_rate")
             or (k.startswith("eval_") and not k.endswith(("runtime", "_per_second")))}
            for h in log if "train_runtime" not in h]
    assert keep and any("loss" in h for h in keep) and any("eval_loss" in h for h in keep)
    return keep


def test_bce_label_smoothing_changes_the_loss():
    import torch

    from labelwise import infer_schema
    from labelwise.plan.contract import ContractOptions, derive_contract
    from labelwise.training.losses import make_loss

    schema = infer_schema([["x"], ["y"], []])
    plain = make_loss(derive_contract(schema))
    smooth = make_loss(derive_contract(schema, ContractOptions(label_smoothing=0.2,
                                                               label_smoothing_mode="bce")))
    logits = torch.tensor([[4.0, -4.0], [-4.0, 4.0]])
    y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert smooth(logits, y) > plain(logits, y) * 2
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits, y * 0.8 + 0.1)
    assert torch.isclose(smooth(logits, y), expected)


def test_class_weights_are_applied():
    import torch

    from labelwise import infer_schema
    from labelwise.plan.contract import ContractOptions, derive_contract
    from labelwise.training.losses import make_loss

    schema = infer_schema(["a", "b"])
    weighted = make_loss(derive_contract(schema, ContractOptions(class_weights=[1.0, 3.0])))
    logits, y = torch.tensor([[2.0, 0.0], [0.0, 2.0]]), torch.tensor([1, 1])
    expected = torch.nn.functional.cross_entropy(logits, y, weight=torch.tensor([1.0, 3.0]))
    assert torch.isclose(weighted(logits, y), expected)
    one = make_loss(derive_contract(schema, ContractOptions(binary_head="one_logit",
                                                            class_weights=[1.0, 3.0])))
    l1 = one(torch.tensor([[0.5], [0.5]]), torch.tensor([[1.0], [0.0]]))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        torch.tensor([0.5, 0.5]), torch.tensor([1.0, 0.0]), reduction="none")
    assert torch.isclose(l1, (bce * torch.tensor([3.0, 1.0])).sum() / 4)


def test_sentence_pairs(tmp_path, tiny_model):
    labels = TASKS["binary"][1]
    data = {"train": write(tmp_path / "t.csv", 40, labels, second=texts(40)),
            "valid": write(tmp_path / "v.csv", 16, labels, second=texts(16)),
            "text_pair_column": "second"}
    config = config_from_dict({"data": data, "model": {"name_or_path": str(tiny_model),
                                                       "max_length": 32},
                               "train": {"max_steps": 2, "batch_size": 8},
                               "output_dir": str(tmp_path / "out")})
    result = train(config)
    assert json.loads((result.output_dir / "labelwise.json").read_text())[
        "text_pair_column"] == "second"
    preds = predict(result.output_dir, ["good film"], text_pairs=["bad plot"])
    assert preds.labels[0] in {"neg", "pos"}


def test_early_stopping_follows_the_objective(tmp_path, tiny_model):
    config = make_config(tmp_path, tiny_model, "binary", train={
        "max_steps": 60, "evals_per_epoch": 6, "learning_rate": 1e-9,
        "early_stopping_patience": 2})
    result = train(config)
    evals = [r for r in map(json.loads, (result.output_dir / "train_log.jsonl").open())
             if "eval_f1" in r]
    assert result.stats["steps"] < 60  # stopped: the objective did not improve
    assert len(evals) == 3  # the first evaluation, then two without improvement


def test_evaluations_are_evenly_spaced_and_the_last_is_on_the_last_step(tmp_path, tiny_model):
    # 48 rows at batch 8: 6 steps an epoch. 4 evaluations an epoch cannot be evenly placed:
    # every 2 steps (3 an epoch), never an extra one just before or after the last step
    config = make_config(tmp_path, tiny_model, "multiclass",
                         train={"max_steps": None, "epochs": 2, "evals_per_epoch": 4})
    out = train(config).output_dir
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [h["step"] for h in log if "eval_loss" in h] == [2, 4, 6, 8, 10, 12]


@pytest.mark.parametrize(("objective", "setting", "decision"), [
    ("accuracy", "auto", ("max accuracy on validation", "the objective is accuracy")),
    ("f1", "auto", ("max F1 on validation", "the objective is f1, not accuracy")),
    ("accuracy", "f1", ("max F1 on validation", "config (train.threshold_metric)")),
])
def test_thresholds_follow_the_objective(tmp_path, tiny_model, objective, setting, decision):
    config = make_config(tmp_path, tiny_model, "binary",
                         train={"threshold_metric": setting},
                         search={"objective": {"metric": objective, "direction": "maximize"}})
    plan = preflight(config)
    assert {d.key: (d.value, d.reason) for d in plan.decisions}["thresholds"] == decision
    result = train(config)
    saved = json.loads((result.output_dir / "labelwise.json").read_text())["thresholds"]
    assert saved["methods"] == [f"tuned: {decision[0]}"]


def test_evaluating_more_often_trains_the_same_model(tmp_path, tiny_model):
    # an evaluation is an observation: the same seed gives the same weights whether the
    # validation split is evaluated once an epoch or three times (a DataLoader draws its
    # base seed from torch's global generator, which also drives dropout)
    from labelwise.training.train import fit, prepare

    config = make_config(tmp_path, tiny_model, "multiclass",
                         train={"max_steps": None, "epochs": 2})
    weights = []
    for evals in (1, 3):
        run = config.model_copy(update={"train": config.train.model_copy(
            update={"evals_per_epoch": evals})})
        result = fit(prepare(preflight(run)), work=tmp_path / f"w{evals}", save=False)
        assert result.final_eval is not None
        weights.append({k: v.detach().clone() for k, v in result.model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    changed = [k for k in weights[0] if not (weights[0][k] == weights[1][k]).all()]
    assert changed == []

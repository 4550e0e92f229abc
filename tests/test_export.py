"""``export`` to ONNX and ``predict(runtime="onnx")``: the same labels as the PyTorch model,
the manifest carried, refusals, and no half-written export dir."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.errors import (ConfigError, DataError, MissingDependencyError, OutputError)
from labelwise.plan.config import config_from_dict
from labelwise.training import export as export_module
from labelwise.training.export import export
from labelwise.training.predict import predict
from labelwise.training.train import train

pytestmark = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("onnxruntime", "onnx", "onnxscript")),
    reason="the 'serve' extra is not installed: pip install 'labelwise[serve]'")

runner = CliRunner()
WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()
LABELS = {
    "binary": ({}, lambda i: {"label": ["neg", "pos"][i % 2]}),
    "multiclass": ({}, lambda i: {"label": ["a", "b", "c"][i % 3]}),
    "multilabel": ({"label_columns": ["labels"]},
                   lambda i: {"labels": json.dumps([["x"], ["y"], ["x", "y"], []][i % 4])}),
    "regression": ({"label_columns": ["V", "A"]},
                   lambda i: {"V": 1 + (i % 7) / 3, "A": 2 - (i % 5) / 4}),
}


def _texts(n: int, offset: int = 0) -> list[str]:
    return [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(2 + i % 9))
            for i in range(offset, offset + n)]


def _frame(task: str, n: int, offset: int = 0) -> pd.DataFrame:
    rows = [{"text": t, **LABELS[task][1](i)} for i, t in enumerate(_texts(n, offset))]
    return pd.DataFrame(rows)


def _train(tmp, tiny_model, task: str):
    _frame(task, 48).to_csv(tmp / "train.csv", index=False)
    _frame(task, 24, 48).to_csv(tmp / "valid.csv", index=False)
    cfg = config_from_dict({
        "data": {"train": str(tmp / "train.csv"), "valid": str(tmp / "valid.csv"),
                 **LABELS[task][0]},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 4, "batch_size": 8, "learning_rate": 1e-3},
        "output_dir": str(tmp / "model")})
    return train(cfg).output_dir


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model):
    """``{task: (model dir, fp32 export)}``, each trained and exported once."""
    out = {}
    for task in LABELS:
        tmp = tmp_path_factory.mktemp(f"export_{task}")
        model_dir = _train(tmp, tiny_model, task)
        out[task] = (model_dir, export(model_dir=model_dir))
    return out


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# --- round trip -----------------------------------------------------------------------------
@pytest.mark.parametrize("task", sorted(LABELS))
def test_fp32_onnx_gives_the_labels_and_scores_of_torch_predict(exported, task):
    model_dir, done = exported[task]
    rows = _texts(37, 100)  # lengths 2..10 words, several length-sorted batches
    torch_preds = predict(model_dir, rows, batch_size=8, runtime="torch")
    onnx_preds = predict(done.output_dir, rows, batch_size=8, runtime="onnx")
    if task == "regression":  # the predicted values, to float rounding
        np.testing.assert_allclose(onnx_preds.labels, torch_preds.labels, atol=1e-5)
    else:
        assert onnx_preds.labels == torch_preds.labels
    np.testing.assert_allclose(onnx_preds.scores, torch_preds.scores, atol=1e-5)
    assert onnx_preds.class_names == torch_preds.class_names
    assert onnx_preds.thresholds == torch_preds.thresholds
    assert onnx_preds.task == torch_preds.task == task


def test_multilabel_thresholds_are_the_saved_ones_and_overrides_apply(exported):
    model_dir, done = exported["multilabel"]
    saved = json.loads((model_dir / "labelwise.json").read_text())["thresholds"]["values"]
    rows = _texts(20)
    preds = predict(done.output_dir, rows)
    assert preds.thresholds == tuple(saved)
    for thr in (0.0, 1.0, {"x": 0.2, "y": 0.8}):
        a = predict(done.output_dir, rows, thresholds=thr)
        assert a.labels == predict(model_dir, rows, thresholds=thr).labels
    assert all(set(v) == {"x", "y"} for v in predict(done.output_dir, rows,
                                                      thresholds=0.0).labels)


def test_auto_runtime_is_onnx_for_an_export_and_torch_for_a_model_dir(exported):
    from labelwise.training.predict import load_model

    model_dir, done = exported["binary"]
    assert load_model(done.output_dir, runtime="auto").runtime == "onnx"
    assert load_model(model_dir, runtime="auto").runtime == "torch"
    rows = _texts(5)
    assert predict(done.output_dir, rows).labels == predict(model_dir, rows).labels


def test_the_export_dir_carries_the_manifest_and_where_it_came_from(exported):
    model_dir, done = exported["multiclass"]
    out = done.output_dir
    assert out == model_dir.parent / "model-onnx"
    assert _listing(out) == ["config.json", "labelwise.json", "model.onnx", "tokenizer.json",
                             "tokenizer_config.json"]
    source = json.loads((model_dir / "labelwise.json").read_text())
    manifest = json.loads((out / "labelwise.json").read_text())
    for key in ("schema", "contract", "thresholds", "max_length", "text_column", "plan"):
        assert manifest[key] == source[key]
    info = manifest["export"]
    assert info["format"] == "onnx" and info["quantize"] is None
    assert info["optimized"] is True  # a BERT: attention and layer norms fused
    assert info["exporter"].startswith("torch.onnx.export")
    assert info["source"]["path"] == str(model_dir)
    assert info["source"]["fingerprint"] == f"sha256:{done.source_fingerprint}"
    assert done.source_fingerprint == export_module.fingerprint(model_dir)
    assert manifest["files"] == _listing(out)
    assert "onnxruntime" in manifest["versions"]
    assert not list(out.parent.glob(".model-onnx*"))  # no partial dir, no lock left


def test_the_fingerprint_changes_with_the_weights(tmp_path, exported):
    import shutil

    model_dir, done = exported["binary"]
    copy = tmp_path / "copy"
    shutil.copytree(model_dir, copy)
    assert export_module.fingerprint(copy) == done.source_fingerprint
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    assert export_module.fingerprint(copy) != done.source_fingerprint


def test_int8_export_loads_and_predicts(exported, tmp_path):
    model_dir, _ = exported["multiclass"]
    done = export(model_dir=model_dir, quantize="int8", output_dir=tmp_path / "int8")
    manifest = json.loads((done.output_dir / "labelwise.json").read_text())
    assert manifest["export"]["quantize"] == "int8" and done.quantize == "int8"
    assert _listing(done.output_dir) == ["config.json", "labelwise.json", "model.onnx",
                                         "tokenizer.json", "tokenizer_config.json"]
    rows = _texts(30)
    preds = predict(done.output_dir, rows)
    torch_preds = predict(model_dir, rows)
    assert len(preds) == 30 and set(preds.labels) <= {"a", "b", "c"}
    np.testing.assert_allclose(preds.scores.sum(axis=1), 1.0, atol=1e-5)
    assert np.abs(preds.scores - torch_preds.scores).max() < 0.1  # int8 rounding, not noise


def test_invalid_rows_are_skipped_in_place_with_onnx(exported):
    _, done = exported["binary"]
    preds = predict(done.output_dir, ["good film", None, "sad"], on_invalid="skip")
    assert preds.labels[1] is None and preds.labels[0] is not None
    assert np.isnan(preds.scores[1]).all()


# --- refusals ---------------------------------------------------------------------------------
def _one_line(err) -> str:
    text = err.render("cli") if hasattr(err, "render") else str(err)
    assert "\n" not in text
    return text


def test_onnx_runtime_on_a_dir_without_an_onnx_model_is_refused(exported):
    model_dir, _ = exported["binary"]
    with pytest.raises(DataError) as info:
        predict(model_dir, ["good"], runtime="onnx")
    assert info.value.code == "LW414"
    assert "no ONNX model" in _one_line(info.value) and "labelwise export" in _one_line(
        info.value)


def test_torch_runtime_on_an_export_is_refused_naming_the_source(exported):
    model_dir, done = exported["binary"]
    with pytest.raises(DataError) as info:
        predict(done.output_dir, ["good"], runtime="torch")
    text = _one_line(info.value)
    assert info.value.code == "LW414" and "no PyTorch weights" in text
    assert str(model_dir) in text and "--runtime onnx" in text


def test_an_unknown_runtime_is_refused(exported):
    _, done = exported["binary"]
    with pytest.raises(ConfigError, match="unknown runtime 'tensorrt'"):
        predict(done.output_dir, ["good"], runtime="tensorrt")


@pytest.mark.parametrize("kwargs, match", [
    ({"format": "torchscript"}, "unknown export format 'torchscript'"),
    ({"format": "torchscript", "quantize": "int8"}, "unknown export format"),
    ({"quantize": "int4"}, "unknown quantization 'int4'"),
])
def test_bad_export_options_are_refused_before_anything_is_written(exported, tmp_path,
                                                                     kwargs, match):
    model_dir, _ = exported["binary"]
    with pytest.raises(ConfigError, match=match) as info:
        export(model_dir=model_dir, output_dir=tmp_path / "out", **kwargs)
    assert info.value.code == "LW343"
    _one_line(info.value)
    assert _listing(tmp_path) == []


def test_exporting_an_export_or_a_non_model_dir_is_refused(exported, tmp_path):
    _, done = exported["binary"]
    with pytest.raises(DataError, match="no PyTorch weights to export") as info:
        export(model_dir=done.output_dir, output_dir=tmp_path / "out")
    assert info.value.code == "LW414"
    with pytest.raises(DataError, match="not a labelwise model directory"):
        export(model_dir=tmp_path, output_dir=tmp_path / "out")
    assert _listing(tmp_path) == []


def test_an_existing_export_needs_overwrite_and_the_source_is_never_replaced(exported):
    model_dir, done = exported["binary"]
    before = (done.output_dir / "model.onnx").read_bytes()
    with pytest.raises(OutputError) as info:
        export(model_dir=model_dir)
    assert info.value.code == "LW331"
    with pytest.raises(OutputError) as info:
        export(model_dir=model_dir, output_dir=model_dir, overwrite=True)
    assert info.value.code == "LW362"
    assert (model_dir / "model.safetensors").exists()
    assert (done.output_dir / "model.onnx").read_bytes() == before


def test_a_failure_during_export_leaves_no_half_export_dir(exported, tmp_path, monkeypatch):
    model_dir, done = exported["binary"]

    def fail(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(export_module, "_write_manifest", fail)
    with pytest.raises(RuntimeError, match="exporter failed"):
        export(model_dir=model_dir, output_dir=tmp_path / "new")
    assert _listing(tmp_path) == []  # no export dir, no partial dir, no lock
    before = _listing(done.output_dir)
    onnx = (done.output_dir / "model.onnx").read_bytes()
    with pytest.raises(RuntimeError, match="exporter failed"):
        export(model_dir=model_dir, output_dir=done.output_dir, overwrite=True)
    assert _listing(done.output_dir) == before  # the old export, whole
    assert (done.output_dir / "model.onnx").read_bytes() == onnx
    assert not list(done.output_dir.parent.glob(f".{done.output_dir.name}*"))


def test_a_missing_serve_extra_names_the_pip_line(exported, tmp_path, monkeypatch):
    model_dir, done = exported["binary"]
    from labelwise.training import predict as predict_module

    predict_module._load.cache_clear()
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match="serve") as info:
        export(model_dir=model_dir, output_dir=tmp_path / "out")
    assert "pip install 'labelwise[serve]'" in _one_line(info.value)
    with pytest.raises(MissingDependencyError, match=r"labelwise\[serve\]"):
        predict(done.output_dir, ["good"])
    assert _listing(tmp_path) == []
    predict_module._load.cache_clear()


# --- the command line -------------------------------------------------------------------------
def test_cli_export_and_predict_runtime_onnx_write_the_torch_predictions(exported, tmp_path):
    model_dir, _ = exported["multiclass"]
    out = tmp_path / "served"
    result = runner.invoke(app, ["export", str(model_dir), "--format", "onnx", "--output",
                                 str(out)])
    assert result.exit_code == 0, result.output
    assert "exported onnx fp32" in result.output
    _frame("multiclass", 30, 200).drop(columns="label").to_csv(tmp_path / "in.csv",
                                                               index=False)
    for runtime, target, name in (("onnx", out, "a.csv"), ("torch", model_dir, "b.csv")):
        result = runner.invoke(app, ["predict", str(target), str(tmp_path / "in.csv"),
                                     "--output", str(tmp_path / name), "--runtime", runtime])
        assert result.exit_code == 0, result.output
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert a["label"].tolist() == b["label"].tolist()
    np.testing.assert_allclose(a.filter(like="score_"), b.filter(like="score_"), atol=1e-5)


@pytest.mark.parametrize("args, code", [
    (["--format", "tflite"], "LW343"),
    (["--quantize", "fp8"], "LW343"),
])
def test_cli_export_user_mistakes_exit_2_with_one_line(exported, tmp_path, args, code):
    model_dir, _ = exported["binary"]
    result = runner.invoke(app, ["export", str(model_dir), *args, "--output",
                                 str(tmp_path / "x")])
    assert result.exit_code == 2
    assert code in result.output and "Traceback" not in result.output
    assert _listing(tmp_path) == []


def test_cli_predict_runtime_mistakes_exit_2(exported, tmp_path):
    model_dir, done = exported["binary"]
    pd.DataFrame({"text": ["good film"]}).to_csv(tmp_path / "in.csv", index=False)
    for target, runtime in ((model_dir, "onnx"), (done.output_dir, "torch"),
                            (done.output_dir, "tvm")):
        result = runner.invoke(app, ["predict", str(target), str(tmp_path / "in.csv"),
                                     "--output", str(tmp_path / "o.csv"), "--runtime",
                                     runtime])
        assert result.exit_code == 2, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "o.csv").exists()

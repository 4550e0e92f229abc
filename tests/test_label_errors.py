"""Wrong labels: cleanlab on out-of-fold outputs, exclude_rows, and `inspect --label-errors`."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from labelwise.cli.app import app
from labelwise.data.loading import load_splits
from labelwise.errors import ConfigError, DataError
from labelwise.labels.schema import infer_schema
from labelwise.scoring.label_errors import issues_from_predictions

pytest.importorskip("cleanlab")

runner = CliRunner()


def _planted(n: int, k: int, flips: int, seed: int = 0):
    """Confident out-of-fold probabilities that agree with the true class; ``flips`` rows
    get another label, so the model contradicts exactly those."""
    rng = np.random.default_rng(seed)
    true = np.arange(n) % k
    probs = np.full((n, k), 0.05 / (k - 1))
    probs[np.arange(n), true] = 0.95
    probs = probs * rng.uniform(0.9, 1.1, probs.shape)
    probs /= probs.sum(axis=1, keepdims=True)
    given = true.copy()
    flipped = rng.choice(n, size=flips, replace=False)
    given[flipped] = (true[flipped] + rng.integers(1, k, flips)) % k
    return given, probs, set(flipped.tolist())


@pytest.mark.parametrize("k", [2, 4])
def test_planted_flips_are_found_from_single_label_probabilities(k):
    given, probs, flipped = _planted(400, k, 20)
    names = [f"c{i}" for i in range(k)]
    schema = infer_schema([names[i] for i in given])
    found = issues_from_predictions(schema=schema, targets=given, predictions=probs,
                                    rows=range(100, 500), texts=[f"t{i}" for i in range(400)])
    got = {r - 100 for r in found.rows_flagged}
    assert got == flipped  # every flip, and nothing else
    s = found.suspects[0]
    assert s.given == names[given[s.row - 100]] and s.suggested == names[probs[s.row - 100].argmax()]
    assert s.text == f"t{s.row - 100}" and 0 <= s.score <= 1
    assert [x.score for x in found.suspects] == sorted(x.score for x in found.suspects)
    assert found.findings.codes() == ["LW140"]
    assert sum(found.per_class.values()) == 20


@settings(max_examples=25, deadline=None)
@given(k=st.integers(2, 5), seed=st.integers(0, 2**16), concentration=st.floats(0.3, 3.0))
def test_single_label_suspects_are_the_lowest_quality_rows_cleanlab_counts(k, seed,
                                                                           concentration):
    """Whatever the probabilities, the suspects are the rows of lowest self-confidence, as
    many as cleanlab's confident joint counts as mislabelled (not the confident joint's own
    off-diagonal rows, which rank worse on planted noise)."""
    from cleanlab.count import num_label_issues

    rng = np.random.default_rng(seed)
    n = 120
    labels = np.arange(n) % k
    probs = rng.dirichlet(np.full(k, concentration), size=n)
    schema = infer_schema([f"c{i}" for i in labels])
    found = issues_from_predictions(schema=schema, targets=labels, predictions=probs,
                                    rows=range(n))
    quality = probs[np.arange(n), labels]
    count = num_label_issues(labels, probs)
    assert len(found.suspects) == count
    if count:
        got = np.array(found.rows_flagged)
        assert quality[got].max() <= np.sort(quality)[count - 1] + 1e-9
        np.testing.assert_allclose([s.score for s in found.suspects],
                                   np.sort(quality[got]), rtol=1e-6, atol=1e-9)


def test_multilabel_planted_flips():
    rng = np.random.default_rng(1)
    n, k = 300, 4
    true = (rng.uniform(size=(n, k)) < 0.3).astype(np.float32)
    true[true.sum(1) == 0, 0] = 1
    probs = np.where(true > 0, 0.95, 0.03)
    given = true.copy()
    flipped = rng.choice(n, size=15, replace=False)
    given[flipped, 1] = 1 - given[flipped, 1]
    names = ["a", "b", "c", "d"]
    schema = infer_schema([[names[j] for j in np.flatnonzero(r)] for r in given])
    found = issues_from_predictions(schema=schema, targets=given, predictions=probs,
                                    rows=range(n))
    got = set(found.rows_flagged)
    assert len(got & set(flipped.tolist())) >= 14 and len(got - set(flipped.tolist())) <= 2
    row = found.suspects[0].row
    assert set(found.suspects[0].suggested) == {names[j] for j in np.flatnonzero(true[row])}


def test_multilabel_suggestion_is_never_empty_when_every_row_has_a_label():
    """A flagged row where no label reaches 0.5 is suggested its most likely label, as long as
    the file has no empty rows; where empty rows are part of the data, empty stays a
    suggestion."""
    rng = np.random.default_rng(3)
    n, k = 300, 3
    true = np.zeros((n, k), dtype=np.float32)
    true[np.arange(n), np.arange(n) % k] = 1
    probs = np.where(true > 0, 0.95, 0.03) * rng.uniform(0.9, 1.05, (n, k))
    flipped = rng.choice(n, size=15, replace=False)
    given = true.copy()
    given[flipped] = np.roll(true[flipped], 1, axis=1)  # another single label
    probs[flipped] = np.where(true[flipped] > 0, 0.4, 0.03)  # the true one, under 0.5
    names = ["a", "b", "c"]

    def suspects(targets):
        schema = infer_schema([[names[j] for j in np.flatnonzero(r)] for r in targets])
        return issues_from_predictions(schema=schema, targets=targets, predictions=probs,
                                       rows=range(n)).suspects

    found = suspects(given)
    assert {s.row for s in found} == set(flipped.tolist())
    for s in found:
        assert s.suggested == (names[int(true[s.row].argmax())],) != s.given

    with_empty = given.copy()
    with_empty[[r for r in range(n) if r not in set(flipped.tolist())][:3]] = 0
    assert any(s.suggested == () for s in suspects(with_empty))


def test_regression_outliers_are_flagged():
    rng = np.random.default_rng(2)
    y = rng.normal(size=200)
    pred = y + rng.normal(scale=0.1, size=200)
    bad = [3, 50, 120]
    y_given = y.copy()
    y_given[bad] += 3.0
    schema = infer_schema(list(y_given + 0.001))
    found = issues_from_predictions(schema=schema, targets=y_given.reshape(-1, 1),
                                    predictions=pred.reshape(-1, 1), rows=range(200))
    assert set(found.rows_flagged) == set(bad)
    assert found.per_class == {"rows": 3}


def test_no_suspects_means_no_finding():
    given, probs, _ = _planted(100, 3, 0)
    schema = infer_schema([f"c{i}" for i in given])
    found = issues_from_predictions(schema=schema, targets=given, predictions=probs,
                                    rows=range(100))
    assert found.suspects == () and list(found.findings) == []


def test_mismatched_lengths_are_refused():
    schema = infer_schema(["a", "b"])
    with pytest.raises(ValueError, match="one entry per row"):
        issues_from_predictions(schema=schema, targets=np.array([0, 1]),
                                predictions=np.ones((3, 2)) / 2, rows=[0, 1])


# --- data.exclude_rows ------------------------------------------------------------------


def _frame(n=40):
    return pd.DataFrame({"text": [f"good film {i}" if i % 2 else f"bad film {i}"
                                  for i in range(n)],
                         "label": ["pos" if i % 2 else "neg" for i in range(n)]})


def test_exclude_rows_drops_the_rows_and_changes_the_fingerprint(tmp_path):
    df = _frame()
    path = tmp_path / "review.csv"
    pd.DataFrame({"row": [3, 7], "given": ["pos", "pos"]}).to_csv(path, index=False)
    plain = load_splits(train=df, valid=df.iloc[:10])
    cut = load_splits(train=df, valid=df.iloc[:10], exclude_rows=str(path))
    assert 3 not in cut.frames["train"].index and 7 not in cut.frames["train"].index
    assert len(cut.frames["train"]) == len(plain.frames["train"]) - 2
    assert cut.fingerprint("train") != plain.fingerprint("train")
    assert "2 row(s) excluded" in cut.sources["train"]
    assert load_splits(train=df, valid=df.iloc[:10], exclude_rows=[3, 7]).fingerprint(
        "train") == cut.fingerprint("train")


def test_exclude_rows_before_the_carve_keeps_them_out_of_validation():
    df = _frame(100)
    data = load_splits(train=df, exclude_rows=list(range(0, 100, 3)))
    seen = set(data.frames["train"].index) | set(data.frames["valid"].index)
    assert seen.isdisjoint(range(0, 100, 3)) and len(seen) == 100 - 34


@pytest.mark.parametrize(("rows", "message"), [
    (pd.DataFrame({"row": [500]}), "row 500 is not in the train data (40 rows)"),
    (pd.DataFrame({"line": [1]}), "no 'row' column among ['line']"),
    (pd.DataFrame({"row": ["x"]}), "row 'x' is not a 0-based row number"),
    (pd.DataFrame({"row": [1], "split": ["test"]}), "rows of split 'test' cannot be excluded"),
])
def test_bad_exclude_rows_are_refused(rows, message):
    with pytest.raises(DataError, match=re.escape(message)) as err:
        load_splits(train=_frame(), valid=_frame(10), exclude_rows=rows)
    assert err.value.code == "LW143"


def test_exclude_rows_file_missing(tmp_path):
    with pytest.raises(DataError, match="the exclude_rows file does not exist"):
        load_splits(train=_frame(), exclude_rows=str(tmp_path / "nope.csv"))


# --- find_label_errors with a model -----------------------------------------------------


def _separable(n_per=30, seed=0):
    """Texts whose words decide the class, with a few labels flipped."""
    rng = np.random.default_rng(seed)
    words = {"pos": "good great love happy fun", "neg": "bad awful hate sad boring"}
    rows = []
    for i in range(2 * n_per):
        label = "pos" if i % 2 else "neg"
        picks = rng.choice(words[label].split(), size=4)
        rows.append({"text": " ".join(picks), "label": label})
    df = pd.DataFrame(rows)
    flipped = [i for i in (4, 11, 30, 47) if i < len(df)]
    df.loc[flipped, "label"] = df.loc[flipped, "label"].map({"pos": "neg", "neg": "pos"})
    return df, set(flipped)


def test_fast_finds_planted_flips_with_a_tiny_encoder(tiny_model):
    from labelwise import find_label_errors

    df, flipped = _separable()
    found = find_label_errors(train=df, valid=df.iloc[:6], model=str(tiny_model), folds=4,
                              progress=False)
    got = set(found.rows_flagged)
    assert len(got & flipped) >= 3, (got, flipped)
    assert len(got - flipped) <= 4
    assert found.method == "fast" and found.folds == 4 and found.rows == len(df)


def test_thorough_runs_k_fine_tunes(tiny_model, tmp_path):
    from labelwise import find_label_errors
    from labelwise.plan.config import RunConfig

    df, _ = _separable(20)
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    config = RunConfig.model_validate({
        "data": {"train": str(path), "valid": str(path)},
        "model": {"name_or_path": str(tiny_model), "max_length": 16},
        "train": {"max_steps": 2, "batch_size": 8},
        "output_dir": str(tmp_path / "out")})
    found = find_label_errors(config=config, method="thorough", folds=2, progress=False)
    assert found.method == "thorough" and found.rows == len(df)
    assert all(0 <= s.score <= 1 for s in found.suspects)
    assert not (tmp_path / "out").exists()  # nothing written to the run's output dir


@pytest.mark.parametrize("labels", [["pos", "neg", "mid"], ["pos", "neg"]])
def test_thorough_fold_outputs_are_the_last_evaluation_in_row_order(tiny_model, tmp_path,
                                                                    monkeypatch, labels):
    """Each fold's outputs are its fine-tune's last evaluation (run longest text first),
    put back in row order: the same numbers as predicting the held-out rows again, with no
    second pass over them."""
    from labelwise.data.loading import load_splits
    from labelwise.plan.config import RunConfig
    from labelwise.training import label_errors as module

    rng = np.random.default_rng(1)
    df = pd.DataFrame({
        "text": [" ".join(rng.choice(["good", "bad", "film", "plot"], size=1 + i % 7))
                 for i in range(36)],
        "label": [labels[i % len(labels)] for i in range(36)]})
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    config = RunConfig.model_validate({
        "data": {"train": str(path), "valid": str(path)},
        "model": {"name_or_path": str(tiny_model), "max_length": 16},
        "train": {"epochs": 1, "batch_size": 8, "evals_per_epoch": 3},
        "output_dir": str(tmp_path / "out")})
    data = load_splits(train=str(path), valid=str(path))
    texts, y, _ = module._training_file(data)
    fold = module._folds(data.schema.task, y, 2, 0)
    calls = []
    from labelwise.training import forward

    real_predict = forward.predict_logits

    def counted(*args, **kwargs):
        calls.append(1)
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(forward, "predict_logits", counted)
    reused = module._finetune_oof(config, data, texts, y, fold, False)
    assert calls == []  # the last evaluations were used
    monkeypatch.setattr(module, "_last_eval_in_row_order", lambda *a: None)
    again = module._finetune_oof(config, data, texts, y, fold, False)
    assert len(calls) == 2  # one prediction pass per fold
    np.testing.assert_allclose(reused, again, atol=1e-5)


def test_thorough_averages_the_fine_tunes_with_the_linear_model(tiny_model, tmp_path,
                                                                 monkeypatch):
    from labelwise import find_label_errors
    from labelwise.plan.config import RunConfig
    from labelwise.training import label_errors as module

    df, _ = _separable(20)
    path = tmp_path / "train.csv"
    df.to_csv(path, index=False)
    config = RunConfig.model_validate({
        "data": {"train": str(path), "valid": str(path)},
        "model": {"name_or_path": str(tiny_model), "max_length": 16},
        "train": {"max_steps": 1, "batch_size": 8}, "output_dir": str(tmp_path / "out")})
    n = len(df)
    linear = np.tile([0.9, 0.1], (n, 1))
    tuned = np.tile([0.3, 0.7], (n, 1))
    seen = {}

    def fake_finetunes(config_, data, texts, y, fold, progress):
        seen["folds"] = fold.copy()
        return tuned

    def fake_linear(task, emb, y, fold, seed, progress):
        seen["linear_folds"] = fold.copy()
        return linear

    def spy_issues(**kwargs):
        seen["predictions"] = kwargs["predictions"]
        return issues_from_predictions(**kwargs)

    monkeypatch.setattr(module, "_finetune_oof", fake_finetunes)
    monkeypatch.setattr(module, "_linear_oof", fake_linear)
    monkeypatch.setattr(module, "issues_from_predictions", spy_issues)
    found = find_label_errors(config=config, method="thorough", folds=2, progress=False)
    np.testing.assert_allclose(seen["predictions"], (linear + tuned) / 2)
    np.testing.assert_array_equal(seen["folds"], seen["linear_folds"])  # the same folds
    assert found.method == "thorough"
    # fast is the linear model's outputs alone
    find_label_errors(config=config, method="fast", folds=2, progress=False)
    np.testing.assert_allclose(seen["predictions"], linear)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"method": "quick"}, "unknown label-error method 'quick'"),
    ({"folds": 1}, "folds must be an integer of at least 2. Got 1 instead"),
    ({"method": "thorough"}, "the thorough method trains with a run config"),
])
def test_bad_arguments(kwargs, message):
    from labelwise import find_label_errors

    with pytest.raises(ConfigError, match=re.escape(message)):
        find_label_errors(train=_frame(), **kwargs)


def test_a_class_rarer_than_the_folds_is_refused():
    from labelwise import find_label_errors

    df = _frame(20)
    df.loc[0, "label"] = "meh"
    with pytest.raises(ConfigError, match=re.escape("has 1 row(s), fewer than the 5 folds")):
        find_label_errors(train=df, valid=df, task="multiclass", progress=False)


# --- the CLI ----------------------------------------------------------------------------


def test_inspect_label_errors_json_and_csv(tiny_model, tmp_path):
    df, flipped = _separable()
    path, out = tmp_path / "train.csv", tmp_path / "suspects.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["inspect", str(path), "--label-errors", "fast", "--model",
                              str(tiny_model), "--folds", "4", "--format", "json",
                              "--label-errors-out", str(out)])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["label_errors_method"] == "fast"
    first = payload["label_errors"][0]
    assert set(first) >= {"row", "given", "suggested", "score"}
    assert "LW140" in [f["code"] for f in payload["findings"]]
    review = pd.read_csv(out)
    assert list(review.columns[:5]) == ["row", "split", "given", "suggested", "score"]
    assert review["row"].tolist() == [e["row"] for e in payload["label_errors"]]
    assert review["text"].iloc[0] == df["text"].iloc[first["row"]]
    # the reviewed file excludes those rows in the next run
    again = runner.invoke(app, ["inspect", str(path), "--exclude-rows", str(out),
                                "--format", "json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["sizes"]["train"] + json.loads(
        again.stdout)["sizes"]["valid"] == len(df) - len(review)


@pytest.mark.parametrize(("args", "message"), [
    (["--label-errors", "quick"], "unknown --label-errors method 'quick'"),
    (["--label-errors", "thorough"], "--label-errors thorough trains with a run config"),
    (["--label-errors", "fast", "--folds", "1"],
     "folds must be an integer of at least 2. Got 1 instead. Fix: pass --folds 2 or more"),
])
def test_inspect_label_errors_mistakes_exit_2(tmp_path, args, message):
    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    res = runner.invoke(app, ["inspect", str(path), *args])
    assert res.exit_code == 2
    assert message in res.output and "Traceback" not in res.output


def test_plain_inspect_loads_no_encoder(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "train.csv"
    _frame().to_csv(path, index=False)
    code = ("import sys\nfrom labelwise.cli.app import app\n"
            f"try:\n    app(['inspect', {str(path)!r}])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY=' + ','.join(m for m in ('torch', 'cleanlab') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


@pytest.mark.smoke
def test_minilm_fast_finds_most_flips_on_ag_news(shared_data):
    from labelwise import find_label_errors

    df = pd.read_csv(shared_data / "ag_news" / "train.csv").iloc[:600].reset_index(drop=True)
    rng = np.random.default_rng(0)
    flipped = rng.choice(len(df), size=30, replace=False)
    classes = sorted(df["label"].unique())
    for i in flipped:
        df.loc[i, "label"] = rng.choice([c for c in classes if c != df.loc[i, "label"]])
    found = find_label_errors(train=df, valid=df.iloc[:40], folds=5, progress=False)
    got, truth = set(found.rows_flagged), set(flipped.tolist())
    recall = len(got & truth) / len(truth)
    precision = len(got & truth) / max(len(got), 1)
    # 5% of rows flipped: flagging at random would give precision 0.05. Measured here:
    # precision 0.52, recall 0.80 (600 rows, seeded; 0.41 and 0.63 with cleanlab's
    # confident_learning filter; the full numbers are in BENCHMARKS.md)
    assert recall >= 0.7 and precision >= 0.45, (precision, recall)

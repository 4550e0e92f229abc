"""What ``predict`` accepts: one string, lists, Series, DataFrames, Datasets; what it refuses."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labelwise.errors import ConfigError, DataError
from labelwise.plan.config import config_from_dict
from labelwise.training.predict import predict
from labelwise.training.train import train

WORDS = "good bad great awful fine film movie plot story funny boring sad happy".split()


def _frame(n: int, offset: int = 0) -> pd.DataFrame:
    rows = [" ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(2 + i % 5))
            for i in range(offset, offset + n)]
    return pd.DataFrame({"review": rows, "label": [["neg", "pos"][i % 2] for i in range(n)]})


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("predict")
    cfg = config_from_dict({
        "data": {"train": str(_write(tmp / "train.csv", _frame(32))),
                 "valid": str(_write(tmp / "valid.csv", _frame(16, 32))),
                 "text_column": "review"},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 2, "batch_size": 8}, "output_dir": str(tmp / "out")})
    return train(cfg).output_dir


@pytest.fixture(scope="module")
def pair_model_dir(tmp_path_factory, tiny_model):
    tmp = tmp_path_factory.mktemp("predict_pairs")
    frame = _frame(32).assign(other=lambda f: f["review"].str.upper())
    cfg = config_from_dict({
        "data": {"train": str(_write(tmp / "train.csv", frame)),
                 "text_column": "review", "text_pair_column": "other"},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"max_steps": 2, "batch_size": 8}, "output_dir": str(tmp / "out")})
    return train(cfg).output_dir


def _write(path, frame):
    frame.to_csv(path, index=False)
    return path


def test_a_single_string_is_one_prediction(model_dir):
    text = "what a charming film"
    one = predict(model_dir, text)
    assert len(one) == 1 and one.scores.shape == (1, 2)
    assert np.allclose(one.scores, predict(model_dir, [text]).scores)


@pytest.mark.parametrize("kind", ["list", "tuple", "series", "array", "generator"])
def test_sequences_of_strings(model_dir, kind):
    texts = ["good film", "bad plot", "sad story"]
    given_texts = {"list": texts, "tuple": tuple(texts), "series": pd.Series(texts, index=[7, 3, 5]),
                   "array": np.array(texts), "generator": (t for t in texts)}[kind]
    preds = predict(model_dir, given_texts)
    assert np.allclose(preds.scores, predict(model_dir, texts).scores)


def test_a_dataframe_uses_the_models_text_column(model_dir):
    frame = _frame(6)  # has a label column too: it must not reach the text
    preds = predict(model_dir, frame)
    assert np.allclose(preds.scores, predict(model_dir, frame["review"].tolist()).scores)
    renamed = frame.rename(columns={"review": "body"})
    with pytest.raises(DataError, match="text column 'review' not found") as err:
        predict(model_dir, renamed)
    assert "body" in err.value.where and err.value.code == "LW402"
    again = predict(model_dir, renamed, text_column="body")
    assert np.allclose(again.scores, preds.scores)


def test_a_dataset_uses_the_text_column_not_the_row(model_dir):
    from datasets import Dataset

    frame = _frame(6)
    preds = predict(model_dir, Dataset.from_pandas(frame))
    assert np.allclose(preds.scores, predict(model_dir, frame["review"].tolist()).scores)


def test_sentence_pairs_from_a_frame_or_two_lists(pair_model_dir):
    frame = _frame(5).assign(other=lambda f: f["review"].str.upper())
    from_frame = predict(pair_model_dir, frame)
    from_lists = predict(pair_model_dir, frame["review"].tolist(),
                         text_pairs=frame["other"].tolist())
    assert np.allclose(from_frame.scores, from_lists.scores)
    with pytest.raises(DataError, match="trained on sentence pairs"):
        predict(pair_model_dir, ["good film"])
    with pytest.raises(DataError, match="differ in length"):
        predict(pair_model_dir, ["a", "b"], text_pairs=["c"])


def test_pairs_for_a_single_text_model_are_refused(model_dir):
    with pytest.raises(DataError, match="trained on single texts"):
        predict(model_dir, ["good"], text_pairs=["bad"])


@pytest.mark.parametrize("bad, why", [(None, "missing"), (math.nan, "missing"), (pd.NA, "missing"), ("", "empty"),
                                      ("   ", "empty"), (3, "a int"), (b"x", "a bytes")])
def test_values_that_are_not_texts_raise_with_their_positions(model_dir, bad, why):
    with pytest.raises(DataError) as err:
        predict(model_dir, ["good film", bad, "sad"])
    assert err.value.code == "LW408"
    assert f"1 ({why})" in err.value.where and "1 of 3" in err.value.what
    assert "on_invalid='skip'" in str(err.value)
    assert "--on-invalid skip" in err.value.render("cli")


def test_nan_in_a_frame_is_refused_not_predicted_as_nan(model_dir):
    frame = pd.DataFrame({"review": ["good", None, "bad", float("nan")]})
    with pytest.raises(DataError, match="2 of 4") as err:
        predict(model_dir, frame)
    assert err.value.where == "positions 1 (missing), 3 (missing)"


def test_skip_keeps_rows_in_place(model_dir):
    texts = ["good film", None, "", "sad story"]
    preds = predict(model_dir, texts, on_invalid="skip")
    assert len(preds) == 4 and preds.labels[1] is None and preds.labels[2] is None
    assert np.isnan(preds.scores[1:3]).all()
    clean = predict(model_dir, ["good film", "sad story"])
    assert np.allclose(preds.scores[[0, 3]], clean.scores)
    assert [preds.labels[0], preds.labels[3]] == clean.labels
    nothing = predict(model_dir, [None], on_invalid="skip")
    assert nothing.labels == [None] and nothing.scores.shape == (1, 2)
    assert len(predict(model_dir, [])) == 0


@pytest.mark.parametrize("value", [{"text": "a"}, 42])
def test_unreadable_inputs(model_dir, value):
    with pytest.raises(DataError, match="cannot predict on"):
        predict(model_dir, value)


def test_bad_options(model_dir):
    with pytest.raises(ConfigError, match="on_invalid"):
        predict(model_dir, ["a"], on_invalid="drop")
    with pytest.raises(ConfigError, match="batch_size"):
        predict(model_dir, ["a"], batch_size=0)


TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=60).map(" ".join)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.one_of(TEXT, st.just(None)), min_size=1, max_size=30),
       batch_size=st.integers(1, 9))
def test_output_rows_align_with_input_rows(model_dir, rows, batch_size):
    preds = predict(model_dir, rows, batch_size=batch_size, on_invalid="skip")
    assert len(preds) == len(rows) and preds.scores.shape[0] == len(rows)
    for i, row in enumerate(rows):
        if row is None:
            assert preds.labels[i] is None and np.isnan(preds.scores[i]).all()
        else:
            alone = predict(model_dir, row)
            assert np.allclose(preds.scores[i], alone.scores[0], atol=1e-5)
            assert preds.labels[i] == alone.labels[0]


def test_the_report_scores_every_row_of_a_split_as_training_did(model_dir):
    from labelwise.training.predict import predict_split

    preds = predict_split(model_dir, ["good film", "", "sad"])
    assert len(preds) == 3 and np.isfinite(preds.scores).all()
    assert np.allclose(preds.scores[[0, 2]], predict(model_dir, ["good film", "sad"]).scores)


def test_an_empty_split_loads_the_model_once_and_has_no_rows(model_dir, monkeypatch):
    from labelwise.training import predict as module

    loads = []
    real = module.load_model
    monkeypatch.setattr(module, "load_model", lambda *a, **k: loads.append(a) or real(*a, **k))
    preds = module.predict_split(model_dir, [])
    assert len(loads) == 1
    assert len(preds) == 0 and preds.scores.shape == (0, len(preds.class_names))
    assert preds.class_names == predict(model_dir, "good film").class_names


def test_a_skipped_row_keeps_class_ids_whole_in_the_frame():
    from labelwise.training.predict import Predictions

    scores = np.array([[0.2, 0.8], [np.nan, np.nan], [0.9, 0.1]], dtype=np.float32)
    frame = Predictions([1, None, 0], scores, ("0", "1"), None, "binary").to_frame()
    assert frame["label"].tolist() == [1, None, 0]  # not 1.0, nan, 0.0
    assert frame.to_csv(index=False).splitlines()[1].startswith("1,")
    multi = Predictions([("a",), None], scores[:2], ("a", "b"), (0.5, 0.5), "multilabel")
    assert multi.to_frame()["label"].tolist() == ['["a"]', None]

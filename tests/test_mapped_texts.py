"""A large split's texts are held memory-mapped from an Arrow file for the run: the same
values, index and dtype as read, a stale or broken file is never used, and training on
mapped texts trains the model it trains on texts in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.numpy import load_file

from labelwise.data.io import mapped_column
from labelwise.data.loading import load_splits
from labelwise.plan.config import config_from_dict
from labelwise.training import train as train_module
from labelwise.training.train import train
from test_training import make_config


def _column(values, *, chunked):
    series = pd.Series(pd.array(values, dtype="str"), name="text",
                       index=pd.RangeIndex(len(values)) * 2 + 5)
    if chunked and len(values) > 2:  # several Arrow chunks, as read_csv makes them
        series = pd.concat([series.iloc[:2], series.iloc[2:]])
    return series


@settings(max_examples=40, deadline=None)
@given(values=st.lists(st.one_of(st.none(), st.text(max_size=8)), max_size=30),
       chunked=st.booleans())
def test_a_mapped_column_is_the_column_as_read(tmp_path_factory, values, chunked):
    path = tmp_path_factory.mktemp("texts") / "split.arrow"
    series = _column(values, chunked=chunked)
    mapped = mapped_column(series, path)
    pd.testing.assert_series_equal(mapped, series)
    assert path.is_file() and not list(path.parent.glob(".*"))  # no temporary file left
    again = mapped_column(series, path)  # the file is reused, not written again
    pd.testing.assert_series_equal(again, series)


def test_a_file_with_other_values_is_written_again_not_used(tmp_path):
    path = tmp_path / "split.arrow"
    mapped_column(_column(["a", "b", "c"], chunked=False), path)
    other = _column(["a", "b", "d"], chunked=False)  # same rows, one text differs
    pd.testing.assert_series_equal(mapped_column(other, path), other)
    path.write_bytes(path.read_bytes()[:40])  # a file cut short
    pd.testing.assert_series_equal(mapped_column(other, path), other)
    assert mapped_column(other, path).tolist() == ["a", "b", "d"]


def test_columns_that_cannot_be_mapped_are_left_to_the_caller(tmp_path):
    assert mapped_column(pd.Series(["a", 1], dtype=object), tmp_path / "x.arrow") is None
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert mapped_column(_column(["a"], chunked=False), blocked / "x.arrow") is None


def test_only_splits_of_the_minimum_rows_are_mapped(tmp_path):
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(40)],
                          "label": ["a", "b"] * 20})
    data = load_splits(train=frame, valid=frame.iloc[:6].copy())
    before = {s: data.frames[s].copy() for s in data.splits}
    assert data.map_texts(tmp_path, min_rows=10) == ("train",)
    assert data.map_texts(tmp_path, min_rows=10) == ()  # once per split
    assert [p.name for p in tmp_path.iterdir()] == [f"{data.fingerprint('train')}-0.arrow"]
    for split in data.splits:
        pd.testing.assert_frame_equal(data.frames[split], before[split])
    assert frame["text"].tolist()[0] == "text 0"  # the caller's frame is its own


def test_training_on_mapped_texts_trains_the_same_model(tmp_path, tiny_model, monkeypatch):
    config = make_config(tmp_path, tiny_model, "multiclass", train={"max_steps": 4})

    def weights(name, rows):
        monkeypatch.setattr(train_module, "MAP_TEXTS_ROWS", rows)
        raw = config.model_dump()
        raw["output_dir"] = f"{raw['output_dir']}-{name}"
        result = train(config_from_dict(raw))
        return load_file(str(result.output_dir / "model.safetensors")), result

    cache = tmp_path / "cache"
    monkeypatch.setenv("LABELWISE_CACHE", str(cache))
    in_memory, first = weights("memory", 10**9)
    assert not (cache / "texts").exists()
    mapped, second = weights("mapped", 1)
    assert sorted(p.name.split("-")[0] for p in (cache / "texts").iterdir()) == sorted(
        second.plan.data.fingerprint(s) for s in second.plan.data.splits)
    assert in_memory.keys() == mapped.keys()
    for key in in_memory:
        np.testing.assert_array_equal(in_memory[key], mapped[key], err_msg=key)
    assert first.metrics == second.metrics

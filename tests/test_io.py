"""Loading every supported input, and clear errors for unusable input."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from labelwise import load_splits
from labelwise.errors import DataError

ROWS = {"text": ["good film", "bad film", "fine film", "dull film"] * 5,
        "label": ["pos", "neg", "pos", "neg"] * 5}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".json", ".parquet"])
def test_every_file_format(tmp_path, suffix):
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"train{suffix}"
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        df.to_json(path, orient="records")
    else:
        df.to_parquet(path)
    data = load_splits(train=path, valid=path)
    assert data.schema.classes == ("neg", "pos")
    assert len(data.frames["train"]) == 20


def test_text_reading_none_stays_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\nNone,a\nNA,b\nnull,a\n")
    data = load_splits(train=path, valid=path)
    assert data.texts("train") == ["None", "NA", "null"]


def test_dataframe_dataset_and_dataset_dict():
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    df = pd.DataFrame(ROWS)
    assert load_splits(train=df, valid=df).schema.task.value == "binary"
    features = Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])})
    ds = Dataset.from_dict({"text": ROWS["text"], "label": [1, 0, 1, 0] * 5}, features=features)
    dd = DatasetDict({"train": ds, "validation": ds, "test": ds})
    data = load_splits(train=dd)
    assert data.schema.classes == ("neg", "pos")  # ClassLabel ids read as their names
    assert data.splits == ("train", "valid", "test")
    assert data.carve is None


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=re.escape(f"train file not found (file {tmp_path}/nope.csv)"
                                                  ". Fix: check the path")):
        load_splits(train=tmp_path / "nope.csv")


def test_unknown_suffix_and_unreadable_file(tmp_path):
    odd = tmp_path / "train.xlsx"
    odd.write_text("x")
    with pytest.raises(DataError, match="unknown file type '.xlsx'"):
        load_splits(train=odd)
    bad = tmp_path / "train.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(DataError, match="cannot read train file as JSONL"):
        load_splits(train=bad)


def test_wrong_column_lists_columns_that_exist(tmp_path):
    path = tmp_path / "train.csv"
    pd.DataFrame(ROWS).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        load_splits(train=path, label_columns=["labels"])
    assert str(info.value) == (f"label column 'labels' not found in the train split (file {path};"
                               " columns: text, label). Fix: did you mean 'label'? pass "
                               "--label-column with one of the columns")
    assert info.value.code == "LW402"


def test_bad_valid_size():
    from labelwise.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("valid_size must be a float in (0, 1). Got "
                                                    "1.5 instead")):
        load_splits(train=pd.DataFrame(ROWS), valid_size=1.5)

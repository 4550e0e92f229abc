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
                               "label_columns= with one of the columns")
    assert info.value.code == "LW402"


def test_bad_valid_size():
    from labelwise.errors import ConfigError

    with pytest.raises(ConfigError, match=re.escape("valid_size must be a float in (0, 1). Got "
                                                    "1.5 instead")):
        load_splits(train=pd.DataFrame(ROWS), valid_size=1.5)


# -- hostile files: each refused with a code, the file and the place, nothing half-read ----

def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


@pytest.mark.parametrize(("name", "text"), [
    ("t.csv", "text,label,label\na,0,1\nb,1,0\n"),
    ("t.tsv", "text\tlabel\tlabel\na\t0\t1\nb\t1\t0\n"),
    ("t.jsonl", '{"text": "a", "label": 0}\n{"text": "b", "label": 1, "label": 0}\n'),
    ("t.json", '[{"text": "a", "label": 0, "label": 1}]'),
])
def test_duplicate_column_names_are_refused(tmp_path, name, text):
    path = _write(tmp_path / name, text)
    with pytest.raises(DataError) as info:
        load_splits(train=path, valid=path)
    assert info.value.code == "LW410"
    assert "'label'" in str(info.value) and str(path) in str(info.value)
    assert "twice" in str(info.value) or "two columns" in str(info.value)
    if name.endswith("jsonl"):
        assert "line 2" in str(info.value)


def test_duplicate_columns_in_parquet_and_dataframe(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "t.parquet"
    pq.write_table(pa.Table.from_arrays([pa.array(["a", "b"]), pa.array([0, 1]),
                                         pa.array([1, 0])], names=["text", "label", "label"]),
                   path)
    with pytest.raises(DataError, match=r"two columns named 'label' \(columns 2 and 3\)"):
        load_splits(train=path, valid=path)
    frame = pd.DataFrame([["a", 0, 1], ["b", 1, 0]], columns=["text", "label", "label"])
    with pytest.raises(DataError, match="two columns named 'label'"):
        load_splits(train=frame, valid=frame)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_ints_next_to_words_get_one_verdict_in_every_format(tmp_path, suffix):
    from labelwise.errors import LabelError

    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "label": [0, 1, "neutral", 1]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_csv(path, sep="," if suffix == ".csv" else "\t", index=False)
    with pytest.raises(LabelError) as info:
        load_splits(train=path, valid=path)
    assert info.value.code == "LW118"
    assert "mixes label forms: 3 ints (rows 0, 1, 3); 1 strings (row 2)" in str(info.value)


def test_csv_label_typing_leaves_texts_and_word_labels_alone(tmp_path):
    path = _write(tmp_path / "t.csv", "text,label\n007,pos\n1.50,neg\n42,pos\n")
    data = load_splits(train=path, valid=path)
    assert data.texts("train") == ["007", "1.50", "42"]
    assert data.schema.classes == ("neg", "pos")


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
@pytest.mark.parametrize("texts", [
    ["True", "False", "true"],  # pandas' bools
    [" 1", "2 ", "1e3"],  # numbers with spaces and exponents
    ["", "", "7"],  # empty cells next to a number
], ids=["bools", "numbers", "empty"])
def test_text_cells_that_look_typed_are_read_as_written(tmp_path, suffix, texts):
    sep = "," if suffix == ".csv" else "\t"
    body = "".join(f"{t}{sep}{i % 2}\n" for i, t in enumerate(texts))
    path = _write(tmp_path / f"t{suffix}", f"text{sep}label\n{body}")
    column = load_splits(train=path, valid=path).frames["train"]["text"]
    assert [None if pd.isna(t) else t for t in column] == [t or None for t in texts]
    assert all(isinstance(t, str) for t in column.dropna())


def test_a_text_column_typed_differently_in_two_chunks_is_read_as_written(tmp_path, recwarn):
    # pandas' C parser types a column per block of rows: ints in the first block, a word in
    # a later one, and the column comes back mixed (with a DtypeWarning) unless read again
    rows = [f"{i:03d},{i % 2}" for i in range(300_000)] + ["a word,1"]
    path = _write(tmp_path / "t.csv", "text,label\n" + "\n".join(rows) + "\n")
    data = load_splits(train=path, valid=path)
    texts = data.texts("train")
    assert texts[:3] == ["000", "001", "002"] and texts[-1] == "a word"
    assert len(texts) == 300_001
    assert not [w for w in recwarn if issubclass(w.category, pd.errors.DtypeWarning)]


def test_latin1_file_names_line_and_asks_for_utf8(tmp_path):
    path = _write(tmp_path / "t.csv", "text,label\ngood,pos\ncafé,neg\n", encoding="latin-1")
    with pytest.raises(DataError) as info:
        load_splits(train=path, valid=path)
    assert info.value.code == "LW412"
    assert "line 3, column 4, byte 0xe9" in str(info.value)
    assert "re-save it as UTF-8" in str(info.value)


def test_malformed_jsonl_line_by_number(tmp_path):
    path = _write(tmp_path / "t.jsonl", '{"text": "a", "label": 0}\n\n{"text": "b", label: 1}\n')
    with pytest.raises(DataError) as info:
        load_splits(train=path, valid=path)
    assert info.value.code == "LW413"
    assert "line 3 is not JSON" in str(info.value) and "position" not in str(info.value)


def test_symlink_loop_and_dangling_link_say_so(tmp_path):
    (tmp_path / "a.csv").symlink_to(tmp_path / "b.csv")
    (tmp_path / "b.csv").symlink_to(tmp_path / "a.csv")
    with pytest.raises(DataError, match="train path is a symlink loop") as info:
        load_splits(train=tmp_path / "a.csv")
    assert info.value.code == "LW411" and "not found" not in str(info.value)
    (tmp_path / "c.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(DataError, match="symlink to a missing file"):
        load_splits(train=tmp_path / "c.csv")

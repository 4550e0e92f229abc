"""The label core works on whole columns; the row-by-row code it replaced is the oracle.

Every table hypothesis draws goes through both: task inference, encoding and every audit
finding must come out the same, message for message and row for row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rowwise_reference import (ref_audit_frames, ref_canonical_rows, ref_content_sha,
                               ref_parse, ref_parse_column, ref_parse_columns)

from labelwise.data.auditing import audit_frames, text_codes, text_key
from labelwise.errors import LabelError
from labelwise.labels._cells import CellColumn, parse_column, parse_columns
from labelwise.labels.inference import _Inferrer, infer_task
from labelwise.labels.schema import LabelSchema

TEXTS = ["a b", "a  b", " a b", "a\tb", "a\nb ", "Café", "Cafe\u0301", "x", "", "   ", None,
         "y z", "a\u00a0b", "NA", "1", "a\x1cb", "x\u3000"]
SCALARS = {
    "strings": ["pos", "neg", "Pos", "neutral", " pos", "café", "cafe\u0301", "", None],
    "ints": [0, 1, 2, 1, 0, None],
    "floats": [0.0, 1.0, 2.0, 2.5, float("nan")],
    "bools": [True, False, True, None],
    "mixed": ["pos", 1, 1.0, True, "neg", None, "[1, 0]", ["pos"]],
    "lists": [["a"], ["a", "b"], [], ["b"], ["c", "a"], None, '["a"]', "[]", "b"],
    "rows": [[1, 0], [0, 1], [1, 1], [0, 0], [1, 0, 0], None, "[0, 1]"],
    "one number": [[0], [1], [2], "[1]", None],
}
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _frame(texts, labels, column="label"):
    return pd.DataFrame({"text": pd.Series(texts, dtype=object), column: labels})


@st.composite
def tables(draw):
    """{split: frame} with a label column drawn from one family (sometimes mixed)."""
    kind = draw(st.sampled_from(sorted(SCALARS)))
    pool = SCALARS[kind]
    frames = {}
    for split in draw(st.sampled_from([("train",), ("train", "valid"),
                                       ("train", "valid", "test"), ("train", "test")])):
        n = draw(st.integers(1 if split != "train" else 2, 25))
        texts = draw(st.lists(st.sampled_from(TEXTS), min_size=n, max_size=n))
        labels = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        series = pd.Series(labels, dtype=object)
        if kind in ("strings", "ints", "floats") and draw(st.booleans()):
            series = pd.Series(labels)  # pandas' own dtype (str, Int-like float, float)
        frames[split] = _frame(texts, series)
        frames[split].index = frames[split].index + draw(st.integers(0, 3))
    return frames, draw(st.sampled_from(["auto", "multiclass", "multilabel", "binary"]))


def _outcome(fn):
    try:
        return ("ok", fn())
    except LabelError as err:
        return ("error", err.code, str(err))


def _dicts(findings):
    return [f.to_dict() for f in findings]


@SETTINGS
@given(tables())
def test_inference_encoding_and_audit_agree_with_the_row_by_row_code(case):
    frames, task = case
    train = frames["train"]["label"]
    new = _outcome(lambda: infer_task(train, column="label", task=task))
    ref = _outcome(lambda: _Inferrer(ref_parse_column(train), ["label"],
                                     None if task == "auto" else _task(task), None, None,
                                     None, "train").run())
    assert new == ref
    if new[0] != "ok":
        found = audit_frames(frames, text_column="text", label_columns=["label"])
        assert _dicts(found) == _dicts(ref_audit_frames(frames, text_column="text",
                                                        label_columns=["label"]))
        return
    schema = LabelSchema.from_inference(new[1], columns=["label"])
    for frame in frames.values():
        cells, canon = schema.canonical_rows(frame["label"])
        ref_cells, ref_canon = ref_canonical_rows(schema, frame["label"])
        assert list(cells) == ref_cells
        assert [repr(v) for v in canon] == [repr(v) for v in ref_canon]
        values, ok = schema.encode_lenient(frame["label"])
        assert ok.tolist() == [not isinstance(v, Exception) for v in ref_canon]
        assert _outcome(lambda f=frame: schema.encode(f["label"]).tolist()) == _outcome(
            lambda f=frame: _ref_encode(schema, f["label"]))
    found = audit_frames(frames, text_column="text", label_columns=["label"], schema=schema)
    assert _dicts(found) == _dicts(ref_audit_frames(frames, text_column="text",
                                                    label_columns=["label"], schema=schema))


def _task(name):
    from labelwise.labels.inference import Task

    return Task(name)


def _ref_encode(schema, values):
    cells, canon = ref_canonical_rows(schema, values)
    for row, (cell, value) in enumerate(zip(cells, canon, strict=True)):
        if isinstance(value, Exception):
            raise schema._encode_error(CellColumn(np.arange(len(cells)), cells), cells[row],
                                       value, "data")
    return schema._to_array(canon).tolist()


@SETTINGS
@given(st.integers(2, 20).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.sampled_from([0, 1, 1.0, 0.0, None, 2, 0.5]), min_size=3,
                      max_size=3), min_size=n, max_size=n),
    st.lists(st.sampled_from(TEXTS), min_size=n, max_size=n))))
def test_several_label_columns_agree_with_the_row_by_row_code(case):
    rows, texts = case
    frame = pd.DataFrame({"text": pd.Series(texts, dtype=object),
                          **{c: [r[i] for r in rows] for i, c in enumerate("abc")}})
    columns = {c: frame[c] for c in "abc"}
    assert list(parse_columns(columns)) == ref_parse_columns(columns)
    new = _outcome(lambda: infer_task(frame[list("abc")], column=list("abc")))
    if new[0] != "ok":
        return
    schema = LabelSchema.from_inference(new[1], columns=list("abc"))
    assert list(schema.parse(frame)) == ref_parse(schema, frame)
    found = audit_frames({"train": frame}, text_column="text", label_columns=list("abc"),
                         schema=schema)
    assert _dicts(found) == _dicts(ref_audit_frames({"train": frame}, text_column="text",
                                                    label_columns=list("abc"), schema=schema))


WHITESPACE = " \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2028\u3000"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(
    list("ab") + list(WHITESPACE) + ["é", "e\u0301", "\u212b", "A\u030a"]), max_size=8
    ).map("".join)), max_size=30), st.integers(1, 4), st.sampled_from([2, 7, 65536]),
    st.booleans())
def test_text_codes_group_rows_exactly_as_text_key_does(texts, n_chunks, scan_rows,
                                                        other_in_arrow):
    import pyarrow as pa

    # as pandas holds a column read by pyarrow: in several chunks
    bounds = np.linspace(0, len(texts), n_chunks + 1).astype(int)
    chunked = pa.chunked_array([pa.array(texts[a:b], type=pa.large_string())
                                for a, b in zip(bounds[:-1], bounds[1:])],
                               type=pa.large_string())
    series = pd.Series(pd.arrays.ArrowStringArray(chunked)) if texts else pd.Series(
        [], dtype="str")
    half = len(texts) // 2
    # another split: an object column, or in Arrow too
    other = pd.Series(texts[:half], dtype="str" if other_in_arrow else object)
    from unittest import mock

    from labelwise.data import auditing

    with mock.patch.object(auditing, "_SCAN_ROWS", scan_rows):  # pieces of a chunk
        codes = text_codes({"train": series, "test": other})
        # the same numbers whether the strings are held in Arrow or as Python objects
        as_objects = text_codes({"train": series.astype(object), "test": other.astype(object)})
    for split in codes:
        np.testing.assert_array_equal(codes[split], as_objects[split])
    got = np.concatenate([codes["train"], codes["test"]])
    keys = [text_key(t) for t in [*texts, *texts[:half]]]
    assert [c < 0 for c in got] == [k is None for k in keys]
    for i in range(len(keys)):
        for j in range(len(keys)):
            if keys[i] is not None and keys[j] is not None:
                assert (got[i] == got[j]) == (keys[i] == keys[j]), (keys[i], keys[j])


def test_text_codes_leave_the_callers_column_as_it_was():
    # keys are written over texts that are not their own key: into a copy, never into
    # the caller's object array (a DataFrame's column is handed over without a copy)
    texts = ["a  b", " a b", "a b", "caf\u00e9 ", "caf\u00e9", None, ""]
    frame = pd.DataFrame({"text": pd.Series(texts, dtype=object)})
    before = frame["text"].to_numpy(dtype=object).copy()
    codes = text_codes({"train": frame["text"]})["train"]
    assert codes.tolist()[:3] == [codes[0]] * 3 and codes[3] == codes[4] != codes[0]
    assert codes[5] == codes[6] == -1
    assert frame["text"].tolist() == before.tolist()
    arrow = pd.Series(texts, dtype="str")
    text_codes({"train": arrow, "test": frame["text"]})
    assert arrow.tolist()[:5] == texts[:5] and frame["text"].tolist() == before.tolist()


def test_a_column_reads_like_the_list_of_its_cells():
    values = pd.Series(["pos", None, "neg", "pos", float("nan"), ""], dtype=object)
    cells = parse_column(values)
    assert isinstance(cells, CellColumn)
    assert list(cells) == ref_parse_column(values) and cells == ref_parse_column(values)
    # None and NaN are one missing value to pandas; "" is missing once parsed
    assert len(cells.uniques) == 4 and cells.codes.tolist() == [0, 1, 2, 0, 1, 3]
    assert cells[2].value == "neg" and [c.value for c in cells[:2]] == ["pos", None]
    assert cells.counts().tolist() == [2, 2, 1, 1]


def test_a_million_row_column_is_parsed_once_per_distinct_value(monkeypatch):
    from labelwise.labels import _cells

    calls = []
    real = _cells.parse_cell
    monkeypatch.setattr(_cells, "parse_cell", lambda v, **k: calls.append(v) or real(v, **k))
    column = pd.Series(np.array(["World", "Sports", "Business", "Sci/Tech"])[
        np.arange(1_000_000) % 4])
    cells = parse_column(column)
    assert len(cells) == 1_000_000 and len(calls) == 4
    assert cells.counts().tolist() == [250_000] * 4


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_targets_are_found_column_wise(value):
    frame = _frame(["a", "b", "c"], [1.5, value, 2.5])
    schema = LabelSchema.from_inference(infer_task(frame["label"], task="regression"),
                                        columns=["label"])
    found = audit_frames({"train": frame}, text_column="text", label_columns=["label"],
                         schema=schema)
    assert _dicts(found) == _dicts(ref_audit_frames({"train": frame}, text_column="text",
                                                    label_columns=["label"], schema=schema))
    assert [f.code for f in found] == ["LW125"]


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=6),  # and quotes,
                                         # backslashes, control and non-ASCII characters
                                         st.text("ab '\"\\\n\x7f\xe9\u2028", max_size=6)),
                               st.one_of(st.none(), st.integers(-3, 3)),
                               st.floats(allow_nan=True, allow_infinity=False)),
                     max_size=30),
       keep=st.lists(st.booleans(), min_size=30, max_size=30),
       chunked=st.booleans())
def test_rows_where_is_boolean_indexing_for_every_column_kind(rows, keep, chunked):
    import pandas as pd

    from labelwise.data.io import rows_where

    frame = pd.DataFrame({"text": pd.array([r[0] for r in rows], dtype="str"),
                          "obj": pd.Series([r[0] for r in rows], dtype=object),
                          "n": pd.array([r[1] for r in rows], dtype="Int64"),
                          "x": [r[2] for r in rows],
                          "cat": pd.Categorical([str(r[1]) for r in rows])},
                         index=pd.RangeIndex(len(rows)) * 3 + 7)
    if chunked and len(rows) > 2:  # several Arrow chunks, as read_csv makes them
        frame = pd.concat([frame.iloc[:2], frame.iloc[2:]])
    mask = np.array(keep[:len(rows)], dtype=bool)
    got, want = rows_where(frame, mask), frame[mask]
    pd.testing.assert_frame_equal(got, want)
    assert list(got.dtypes) == list(want.dtypes)


@settings(max_examples=40, deadline=None)
@given(cells=st.lists(st.one_of(st.none(), st.text(max_size=5), st.integers(),
                                st.lists(st.integers(0, 3), max_size=2)), max_size=25),
       rows=st.integers(1, 6))
def test_content_sha_read_a_slice_at_a_time_is_the_whole_columns(cells, rows):
    from labelwise.data import io

    frame = pd.DataFrame({"text": [str(c) for c in cells], "label": pd.Series(cells,
                                                                              dtype=object)})
    whole = io.content_sha(frame)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io, "_SHA_ROWS", rows)
        assert io.content_sha(frame) == whole
    if len(cells) > 1:  # and it still sees every row
        changed = frame.copy()
        changed.loc[changed.index[-1], "text"] = changed["text"].iloc[-1] + "!"
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(io, "_SHA_ROWS", rows)
            assert io.content_sha(changed) != whole


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(st.one_of(st.none(), st.text(max_size=6),  # and the
                                         # characters that change how Python writes a repr
                                         st.text("ab '\"\\\n\x7f\xe9\u2028", max_size=6)),
                               st.one_of(st.none(), st.integers(-3, 3)),
                               st.sampled_from([0.0, -0.0, 0.5, 1e20, float("nan")]),
                               st.booleans()), max_size=20),
       slice_rows=st.integers(1, 7))
def test_content_sha_is_the_recorded_fingerprint_for_every_column_kind(rows, slice_rows):
    """Saved models, runs and studies hold fingerprints of the cell-by-cell hash: the
    column-wise one must give the same value for every dtype a caller's frame can have."""
    from labelwise.data import io

    texts = [r[0] for r in rows]
    frame = pd.DataFrame({
        "str": pd.array(texts, dtype="str"), "string": pd.array(texts, dtype="string"),
        "obj": pd.Series(texts, dtype=object),
        "Int64": pd.array([r[1] for r in rows], dtype="Int64"),
        "int": [0 if r[1] is None else r[1] for r in rows],
        "float": [r[2] for r in rows], "bool": [r[3] for r in rows],
        "cat": pd.Categorical([str(r[1]) for r in rows]),
        "lists": pd.Series([[r[1], r[3]] if r[3] else np.array([r[2]]) for r in rows],
                           dtype=object),
        "mixed": pd.Series([r[i % 4] for i, r in enumerate(rows)], dtype=object)},
        index=pd.RangeIndex(len(rows)) * 2 + 1)
    want = ref_content_sha(frame)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(io, "_SHA_ROWS", slice_rows)
        assert io.content_sha(frame) == want
    for column in frame.columns:
        assert io.content_sha(frame, [column]) == ref_content_sha(frame, [column]), column


_ITEMS = st.one_of(st.sampled_from(["joy", "anger", "Joy", "", " joy"]),
                   st.integers(-2, 2), st.booleans(),
                   st.sampled_from([0.0, -0.0, 1.0, 0.5, float("nan")]), st.none())


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_ITEMS, max_size=4), min_size=1, max_size=30),
       st.sampled_from(["lists", "arrays", "names in lists", "names in arrays"]))
def test_list_cells_hashed_by_column_as_row_by_row(cells, form):
    """The column-wise hashing of list cells gives _hash_codes' own codes and first cells
    (or declines, and _hash_codes reads the column)."""
    from labelwise.labels._cells import _factorize_lists, _hash_codes

    if form.startswith("names"):  # the common case, as JSON lists and Parquet give it
        cells = [[str(i) for i in cell if i is not None] for cell in cells]
    if form == "names in arrays":
        column = [np.array(c, dtype=object) for c in cells]  # pyarrow's to_pandas
    elif form == "arrays":
        column = [np.array(c) for c in cells]
    else:
        column = cells
    series = pd.Series(column, dtype=object)
    got = _factorize_lists(series)
    if form.startswith("names"):
        assert got is not None
    if got is None:
        return
    codes, firsts = _hash_codes(list(series))
    np.testing.assert_array_equal(got[0], codes)
    assert [id(c) for c in got[1]] == [id(c) for c in firsts]


def test_a_list_column_with_a_missing_cell_is_hashed_row_by_row():
    from labelwise.labels._cells import _factorize_lists

    assert _factorize_lists(pd.Series([["joy"], None, ["joy"]], dtype=object)) is None
    assert _factorize_lists(pd.Series([["joy"], ["joy", None]], dtype=object)) is None
    wide = pd.Series([list(range(65)), [1]], dtype=object)
    assert _factorize_lists(wide) is None
    two_types = pd.Series([np.array([1]), np.array(["1"])], dtype=object)
    assert _factorize_lists(two_types) is None  # one array of strings would merge them
    matrices = pd.Series([np.zeros((1, 2)), np.zeros((1, 2))], dtype=object)
    assert _factorize_lists(matrices) is None
    ranks = pd.Series([np.zeros(2), np.zeros((1, 2))], dtype=object)
    assert _factorize_lists(ranks) is None
    scalars = pd.Series([np.array(1), np.array(2)], dtype=object)
    assert _factorize_lists(scalars) is None


@SETTINGS
@given(tables(), st.data())
def test_rows_taken_from_a_parsed_column_read_as_that_part_alone(case, data):
    frames, task = case
    train = frames["train"]["label"]
    try:
        inference = infer_task(train, column="label", task=task)
    except LabelError:
        return
    schema = LabelSchema.from_inference(inference, columns=["label"])
    whole = schema.code_cells(inference.cells)
    assert list(whole.cells) == list(schema.code(train).cells)  # the one parse, reused
    rows = np.asarray(data.draw(st.lists(st.integers(0, len(train) - 1), max_size=30)),
                      dtype=np.int64)
    part = whole.take(rows)
    assert list(part.cells) == [whole.cells[int(i)] for i in rows]
    assert [repr(v) for v in part.rows()] == [repr(whole.rows()[int(i)]) for i in rows]
    assert part.fits().tolist() == whole.fits()[rows].tolist()
    # the distinct cells in order of first appearance, each used, as a column parsed alone
    firsts = list(dict.fromkeys(whole.codes[rows].tolist()))
    assert part.uniques == tuple(whole.uniques[c] for c in firsts)
    if "one number" not in repr(frames):  # a column vector is read by all its rows
        alone = schema.code(train.iloc[rows])
        assert list(part.cells) == list(alone.cells)
        assert [repr(v) for v in part.canon] == [repr(v) for v in alone.canon]


@pytest.mark.parametrize("label, suffix", [("label", "csv"), ("labels", "jsonl")])
def test_inspect_parses_the_training_labels_once_for_carving_audit_and_counts(
        tmp_path, monkeypatch, label, suffix):
    from labelwise.data.inspection import inspect_data
    from labelwise.labels import _cells, inference, schema as schema_module

    n = 400
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(n)],
                          label: [["a", "b", "c", "d"][i % 4] if label == "label"
                                  else [["a"], ["b", "c"], ["d"], []][i % 4]
                                  for i in range(n)]})
    path = tmp_path / f"train.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)
    calls = []
    for module in (inference, schema_module):
        real = module.parse_column
        monkeypatch.setattr(module, "parse_column",
                            lambda v, _real=real, **k: calls.append(len(v)) or _real(v, **k))
    result = inspect_data(train=path, label_columns=label)
    assert calls == [n]  # inference's parse, read again by the carve, audit and distribution
    assert result.sizes == {"train": 360, "valid": 40}
    assert set(result.distribution) == {"train", "valid"}


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT])
def test_missing_cells_hashed_row_by_row_share_one_distinct_cell(missing):
    # a list column with a missing cell is hashed row by row: its missing cells are one
    # distinct cell, as in the rows of a larger column taken from it
    column = parse_column(pd.Series([missing, missing, [0], missing], dtype=object))
    assert len(column.uniques) == 2
    assert column.codes.tolist() == [0, 0, 1, 0]

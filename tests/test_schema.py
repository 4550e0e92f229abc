"""LabelSchema: encode/decode round trips, stable order and fingerprint, persistence."""

from __future__ import annotations

import random
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise import LabelSchema, infer_schema
from labelwise.errors import LabelError, SchemaMismatchError
from labelwise.labels.inference import Task

names = st.text(alphabet="abcdefghij:/ _-", min_size=1, max_size=8).filter(
    lambda s: s.strip() == s and s.strip() != "" and not s.startswith("["))
scalar_labels = st.one_of(
    st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=2, max_size=40),
    st.lists(st.integers(min_value=0, max_value=6), min_size=2, max_size=40),
    st.lists(names, min_size=2, max_size=40),
).filter(lambda v: len(set(v)) >= 2)
name_sets = st.lists(st.lists(st.sampled_from(["x", "y", "z", "w"]), max_size=3, unique=True),
                     min_size=2, max_size=30).filter(lambda rows: len({n for r in rows for n in r}) >= 2)


@given(scalar_labels)
@settings(max_examples=60, deadline=None)
def test_single_label_round_trip(values):
    schema = infer_schema(values)
    encoded = schema.encode(values)
    assert encoded.dtype == np.int64 and encoded.shape == (len(values),)
    assert schema.decode(encoded) == values


@given(name_sets)
@settings(max_examples=60, deadline=None)
def test_multilabel_round_trip(rows):
    schema = infer_schema(rows)
    assert schema.task is Task.MULTILABEL
    encoded = schema.encode(rows)
    assert encoded.dtype == np.float32 and encoded.shape == (len(rows), len(schema.classes))
    assert [set(r) for r in schema.decode(encoded)] == [set(r) for r in rows]


@given(st.lists(st.floats(min_value=-5, max_value=5, allow_nan=False).filter(
    lambda x: not float(x).is_integer()), min_size=2, max_size=30))
@settings(max_examples=40, deadline=None)
def test_regression_round_trip(values):
    schema = infer_schema(values)
    decoded = schema.decode(schema.encode(values))
    assert np.allclose(decoded, values, atol=1e-5 * (1 + np.abs(values)).max())


@given(st.one_of(scalar_labels, name_sets), st.randoms())
@settings(max_examples=60, deadline=None)
def test_class_order_and_fingerprint_stable_under_shuffles(values, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)
    a, b = infer_schema(values), infer_schema(shuffled)
    assert a.classes == b.classes
    assert a.fingerprint == b.fingerprint


@given(scalar_labels)
@settings(max_examples=30, deadline=None)
def test_json_round_trip(values):
    schema = infer_schema(values)
    again = LabelSchema.from_json(schema.to_json())
    assert again == schema and again.fingerprint == schema.fingerprint


def test_fingerprint_stable_across_processes():
    code = ("from labelwise import infer_schema;"
            "print(infer_schema(['b','a','c',1.5] and ['b','a','c']).fingerprint)")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={"PYTHONHASHSEED": str(seed), "PATH": ""}
                           ).stdout.strip() for seed in (1, 2, 3)}
    assert outs == {infer_schema(["b", "a", "c"]).fingerprint}


def test_fingerprint_changes_with_what_decides_encoding():
    base = infer_schema(["a", "b"])
    assert base.fingerprint != infer_schema(["a", "b"], classes=["b", "a"]).fingerprint
    assert base.fingerprint != infer_schema(["a", "b"], columns="y").fingerprint
    assert base.fingerprint != infer_schema([0, 1]).fingerprint
    assert infer_schema(["0", "1"]).fingerprint != infer_schema([0, 1]).fingerprint


def test_id2label_label2id_for_hf_config():
    schema = infer_schema(["neg", "pos"])
    assert schema.id2label == {0: "neg", 1: "pos"}
    assert schema.label2id == {"neg": 0, "pos": 1}
    data = schema.to_dict()
    assert data["id2label"] == {"0": "neg", "1": "pos"}
    assert data["num_labels"] == 2 and data["positive"] == "pos"


def test_encode_unknown_value_names_rows():
    schema = infer_schema(["neg", "pos"])
    with pytest.raises(LabelError, match=re.escape(
            "label 'neutral' is not one of the schema's 2 classes (split 'valid', column "
            "'label', rows 1, 2, value 'neutral')")) as info:
        schema.encode(["pos", "neutral", "neutral"], split="valid")
    assert info.value.code == "LW102"


def test_encode_missing_and_wrong_form():
    schema = infer_schema([0, 1])
    with pytest.raises(LabelError) as info:
        schema.encode([0, None])
    assert info.value.code == "LW107"
    with pytest.raises(LabelError) as info:
        schema.encode(["1"])
    assert info.value.code == "LW111"


def test_int_and_bool_classes_stay_distinct():
    schema = infer_schema([0, 1])
    with pytest.raises(LabelError):
        schema.encode([True])


def test_edited_schema_file_is_refused(tmp_path):
    schema = infer_schema(["neg", "pos"])
    path = tmp_path / "schema.json"
    schema.save(path)
    assert LabelSchema.load(path) == schema
    path.write_text(path.read_text().replace('"pos"', '"POS"', 1))
    with pytest.raises(SchemaMismatchError, match="does not match its content"):
        LabelSchema.load(path)


def test_require_same_shows_difference():
    a, b = infer_schema(["neg", "pos"]), infer_schema(["neg", "neutral", "pos"])
    with pytest.raises(SchemaMismatchError, match=re.escape(
            "resume: label schema differs (task: <Task.BINARY: 'binary'> -> <Task.MULTICLASS: "
            "'multiclass'>; classes: ['neg', 'pos'] -> ['neg', 'neutral', 'pos'])")):
        a.require_same(b, what="resume", fix="use the same data")


def test_one_hot_decode_gives_positions():
    rows = [[0, 1, 0], [1, 0, 0], [0, 0, 1]]
    schema = infer_schema(rows)
    assert schema.decode(schema.encode(rows)) == [1, 0, 2]


def test_shuffle_helper_is_deterministic():
    values = ["c", "a", "b"] * 3
    random.Random(0).shuffle(values)
    assert infer_schema(values).classes == ("a", "b", "c")

"""Task inference: an examples table crossed with containers, explicit tasks, errors."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from labelwise import infer_schema, infer_task
from labelwise.errors import AmbiguousTaskError, LabelError
from labelwise.labels.inference import Task

# values -> (task, classes or targets, label_format). The sklearn-style examples table.
EXAMPLES = [
    (["neg", "pos", "pos", "neg"], "binary", ("neg", "pos"), "strings"),
    (["b", "a", "c", "a"], "multiclass", ("a", "b", "c"), "strings"),
    ([0, 1, 1, 0], "binary", (0, 1), "ints"),
    ([2, 0, 1, 10], "multiclass", (0, 1, 2, 10), "ints"),
    ([True, False, True], "binary", (False, True), "bools"),
    ([0.0, 1.0, 1.0], "binary", (0, 1), "integral_floats"),
    ([0.5, 1.25, 3.0], "regression", ("label",), "floats"),
    ([3, 2.5, 1], "regression", ("label",), "floats"),
    (["yes", "no", "no"], "binary", ("no", "yes"), "strings"),
    (["positive", "negative"], "binary", ("negative", "positive"), "strings"),
    (["Sci/Tech", "World", "Sports"], "multiclass", ("Sci/Tech", "Sports", "World"), "strings"),
    ([["joy", "anger"], ["joy"], []], "multilabel", ("anger", "joy"), "name_lists"),
    ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], "multiclass", (0, 1, 2), "one_hot_rows"),
    ([[1, 0], [0, 1], [0, 1]], "binary", (0, 1), "one_hot_rows"),
    ([[1, 0, 1], [0, 0, 0], [0, 1, 0]], "multilabel", (0, 1, 2), "multi_hot_rows"),
    ([[1.5, 2.0], [3.25, 4.0]], "regression", ("0", "1"), "float_vectors"),
]
CONTAINERS = ["list", "numpy", "pandas", "dataset", "jsonl"]


def _wrap(values, container, tmp_path):
    if container == "list":
        return values
    if container == "numpy":
        if values and isinstance(values[0], list):
            if len({len(v) for v in values}) == 1 and values[0]:
                return np.array(values)
            return [np.array(v) for v in values]
        return np.array(values, dtype=object if isinstance(values[0], str) else None)
    if container == "pandas":
        return pd.Series(values)
    if container == "dataset":
        from datasets import Dataset

        return Dataset.from_dict({"label": values})["label"]
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"label": v}) + "\n" for v in values))
    return pd.read_json(path, lines=True, dtype=False)["label"]


@pytest.mark.parametrize("container", CONTAINERS)
@pytest.mark.parametrize(("values", "task", "classes", "fmt"), EXAMPLES)
def test_examples_table(values, task, classes, fmt, container, tmp_path):
    if container == "dataset" and any(v == [] for v in values):
        pytest.skip("datasets cannot type a column whose first list is empty next to others")
    wrapped = _wrap(values, container, tmp_path)
    schema = infer_schema(wrapped, columns="label")
    assert schema.task.value == task
    names = schema.targets if task == "regression" else schema.classes
    assert names == classes
    if not (container == "dataset" and fmt == "integral_floats"):
        assert schema.label_format == fmt


def test_json_list_in_csv_cell(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["a", "b"], "labels": ['["joy", "anger"]', '["joy"]']}).to_csv(
        path, index=False)
    schema = infer_schema(pd.read_csv(path)["labels"], columns="labels")
    assert (schema.task, schema.classes, schema.container) == (
        Task.MULTILABEL, ("anger", "joy"), "json")


def test_json_one_hot_in_csv_cell():
    schema = infer_schema(["[0, 1, 0]", "[1, 0, 0]", "[0, 0, 1]"])
    assert schema.task is Task.MULTICLASS and schema.label_format == "one_hot_rows"


def test_delimited_strings():
    schema = infer_schema(["joy|anger", "joy", "fear|joy"], label_sep="|")
    assert schema.task is Task.MULTILABEL
    assert schema.classes == ("anger", "fear", "joy")
    assert schema.label_format == "delimited_strings"
    assert schema.encode(["anger|fear"]).tolist() == [[1.0, 1.0, 0.0]]


def test_several_binary_columns_are_multilabel():
    frame = pd.DataFrame({"toxic": [1, 0, 1], "insult": [1, 0, 0]})
    schema = infer_schema(frame, columns=["toxic", "insult"])
    assert schema.task is Task.MULTILABEL
    assert schema.classes == ("toxic", "insult")
    assert schema.label_format == "binary_columns"
    assert schema.decode(schema.encode(frame)) == [("toxic", "insult"), (), ("toxic",)]


def test_several_float_columns_are_multi_output_regression():
    frame = pd.DataFrame({"V": [3.0, 2.5], "A": [3.1, 2.9], "D": [2.0, 3.3]})
    schema = infer_schema(frame, columns=["V", "A", "D"])
    assert (schema.task, schema.targets, schema.num_labels) == (
        Task.REGRESSION, ("V", "A", "D"), 3)
    assert schema.encode(frame).shape == (2, 3)


def test_positive_class_rules():
    assert infer_schema(["pos", "neg"]).positive == "pos"
    assert infer_schema(["spam", "ham"]).positive == "spam"  # second in sorted order
    assert infer_schema(["spam", "ham"], positive="ham").classes == ("spam", "ham")


def test_explicit_classes_order_and_string_ints():
    assert infer_schema(["b", "a", "c"], classes=["c", "b", "a"]).classes == ("c", "b", "a")
    schema = infer_schema([0, 1, 2, 1], classes=["2", "1", "0"])
    assert schema.classes == (2, 1, 0)
    assert schema.encode([2, 0]).tolist() == [0, 2]


def test_explicit_task_overrides():
    assert infer_schema([0, 1, 2], task="regression").task is Task.REGRESSION
    assert infer_schema([1.0, 2.0, 3.0], task="multiclass").classes == (1, 2, 3)
    assert infer_schema(["a", "b", "a"], task="multiclass").task is Task.MULTICLASS
    ml = infer_schema(["a", "b", "a"], task="multilabel")
    assert ml.task is Task.MULTILABEL and ml.encode(["b"]).tolist() == [[0.0, 1.0]]
    one = infer_schema([["a"], ["b"], ["a"]], task="multiclass")
    assert one.task is Task.MULTICLASS and one.encode([["b"]]).tolist() == [1]
    assert infer_schema([[1, 0, 0], [0, 1, 0]], task="multilabel").task is Task.MULTILABEL


def _raises(cls, code, message, func, *args, **kwargs):
    with pytest.raises(cls, match=re.escape(message)) as info:
        func(*args, **kwargs)
    assert info.value.code == code
    return info.value


def test_single_class_is_an_error():
    _raises(LabelError, "LW101", "column 'label' has a single class 'pos' in all 3 labelled "
            "rows", infer_task, ["pos", "pos", "pos"])


def test_integral_floats_are_ambiguous():
    err = _raises(AmbiguousTaskError, "LW119", "column 'stars' holds integral floats (1.0, "
                  "2.0, 5.0): class ids or a regression target", infer_task, [1.0, 2.0, 5.0],
                  column="stars")
    assert "pass task='multiclass' if they are class ids, or task='regression'" in str(err)


def test_stray_value_in_binary_names_value_count_and_rows():
    values = ["pos", "neg"] * 10 + ["neutral", "pos", "neutral"]
    err = _raises(LabelError, "LW115", "task 'binary' was asked, but column 'label' has 3 "
                  "classes: stray value 'neutral' (2 row(s)) next to 'pos' and 'neg'",
                  infer_task, values, task="binary")
    assert "rows 20, 22" in str(err)
    assert "pass task='multiclass'" in str(err)


def test_one_hot_width_3_with_binary_task():
    rows = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 1, 0]]
    err = _raises(LabelError, "LW115", "task 'binary' was asked, but the one-hot rows of "
                  "column 'label' have width 3, i.e. 3 classes (1 row(s) hot beyond position 1)",
                  infer_task, rows, task="binary")
    assert "row 2" in str(err)


def test_one_hot_rows_with_several_ones_when_single_label_asked():
    _raises(LabelError, "LW112", "task 'multiclass' was asked, but 2 one-hot row(s) of "
            "column 'label' have zero or several 1s", infer_task,
            [[1, 0, 0], [1, 1, 0], [0, 0, 0]], task="multiclass")


def test_rows_of_different_width():
    err = _raises(LabelError, "LW113", "rows of column 'label' have different widths [2, 3]; "
                  "most have width 3", infer_task, [[1, 0, 0], [0, 1], [0, 0, 1]])
    assert "row 1" in str(err)


def test_value_outside_explicit_class_list():
    _raises(LabelError, "LW114", "value 'maybe' is not in the class list ['no', 'yes'] (1 "
            "such value(s))", infer_task, ["yes", "no", "maybe"], classes=["no", "yes"])


def test_mixed_forms_in_one_column():
    err = _raises(LabelError, "LW118", "column 'label' mixes label forms: 3 strings (rows 0, "
                  "1, 3); 1 ints (row 2)", infer_task, ["a", "b", 1, "a"])
    assert err.fix == "write every label in the same form"


def test_regression_asked_on_strings():
    _raises(LabelError, "LW120", "task 'regression' was asked, but column 'label' holds "
            "strings", infer_task, ["a", "b"], task="regression")


def test_unreadable_values():
    _raises(LabelError, "LW127", "unreadable label values", infer_task, [{"a": 1}, {"b": 2}])


def test_no_labels_at_all():
    _raises(LabelError, "LW124", "column 'label' has no label values", infer_task,
            [None, float("nan"), ""])


def test_unknown_task_name():
    _raises(LabelError, "LW120", "unknown task 'binray'", infer_task, ["a", "b"],
            task="binray")


def test_info_findings_carry_evidence():
    inf = infer_task([["a"], ["b"], ["a"]])
    assert [f.code for f in inf.findings] == ["LW123"]
    inf = infer_task([[1, 0], [0, 1]])
    assert [f.code for f in inf.findings] == ["LW128"]
    assert "one-hot rows of width 2 -> binary" in inf.evidence


def test_many_distinct_values_look_like_ids():
    inf = infer_task(list(range(30)))
    assert [f.code for f in inf.findings] == ["LW116"]
    assert inf.findings[0].message == ("30 distinct labels in 30 rows: more than half the "
                                       "rows, which looks like ids or a regression target")


def test_explicit_class_absent_is_a_warning():
    inf = infer_task(["a", "b"], classes=["a", "b", "c"])
    assert [f.code for f in inf.findings] == ["LW122"]

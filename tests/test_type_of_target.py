"""Task inference next to scikit-learn's ``type_of_target``: same reading, or a clear refusal.

Every sklearn target type maps to the outcomes labelwise may give for it. An outcome is
the task (with the width of the label space), or the error code of an explicit refusal;
``AmbiguousTaskError`` names the ``--task`` choices. An integer matrix is never regression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.utils.multiclass import type_of_target

from labelwise import infer_schema, infer_task
from labelwise.errors import AmbiguousTaskError, LabelError
from labelwise.labels.inference import Task

# sklearn type -> the outcomes labelwise may give: a task, or the code of a refusal.
ALLOWED = {
    "binary": {"binary", "LW101", "LW119"},  # one value: nothing to learn; 1.0/2.0: ambiguous
    "multiclass": {"multiclass", "LW119"},  # integral floats beyond 0/1: ids or a rating?
    "multilabel-indicator": {"multilabel", "binary", "multiclass", "LW119"},  # one-hot: LW128
    "multiclass-multioutput": {"LW129"},
    "continuous": {"regression"},
    "continuous-multioutput": {"regression"},
    "unknown": {"LW118", "LW124", "LW127"},
}


def outcome(values, column="label"):
    """The task, or the code of the refusal; a refusal of LW119 must be AmbiguousTaskError."""
    try:
        result = infer_task(values, column=column)
    except LabelError as err:
        assert err.code != "LW119" or isinstance(err, AmbiguousTaskError)
        assert str(err).strip() and "\n" not in str(err)
        return err.code, err
    return result.task.value, result


def check(values):
    expected = type_of_target(values)
    got, result = outcome(values)
    assert got in ALLOWED[expected], (expected, got, values)
    arr = np.asarray(values)
    if got in ("binary", "multiclass") and expected == "multilabel-indicator":
        # one-hot rows read as single-label: said so, with the way back to multilabel
        assert any(f.code == "LW128" for f in result.findings)
    if got == "regression":
        width = arr.shape[1] if arr.ndim == 2 else 1
        assert len(result.targets) == width
    if got == "multiclass" and expected == "multiclass":
        assert len(result.classes) == len(np.unique(arr))
    return expected, got


# values -> sklearn's type, labelwise's outcome (task or refusal code). The table.
TABLE = [
    ([0, 1, 1, 0], "binary", "binary"),
    (["neg", "pos"], "binary", "binary"),
    ([True, False, True], "binary", "binary"),
    ([0.0, 1.0, 1.0], "binary", "binary"),
    ([3, 7, 7], "binary", "binary"),
    ([1.0, 2.0, 2.0], "binary", "LW119"),
    ([5, 5, 5], "binary", "LW101"),
    (np.array([[0], [1], [1]]), "binary", "binary"),
    (np.array([[True], [False]]), "binary", "binary"),
    ([2, 0, 1, 10], "multiclass", "multiclass"),
    (["b", "a", "c"], "multiclass", "multiclass"),
    ([-1, 0, 1], "multiclass", "multiclass"),
    (np.array([[0], [1], [2], [1]]), "multiclass", "multiclass"),  # the [N, 1] class-id trap
    (np.array([[0], [1], [2]], dtype=np.int8), "multiclass", "multiclass"),
    (np.array([["a"], ["b"], ["c"]], dtype=object), "multiclass", "multiclass"),
    ([1.0, 2.0, 5.0], "multiclass", "LW119"),
    (np.array([[1.0], [2.0], [5.0]]), "multiclass", "LW119"),
    (np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]]), "multilabel-indicator", "multilabel"),
    (np.array([[1.0, 0.0], [1.0, 1.0]]), "multilabel-indicator", "multilabel"),
    (np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]]), "multilabel-indicator", "multiclass"),
    (np.array([[1, 0], [0, 1]]), "multilabel-indicator", "binary"),
    (np.array([[1, 2], [2, 1], [2, 2]]), "multilabel-indicator", "LW119"),
    (np.array([[-1, 1], [1, -1]]), "multilabel-indicator", "LW119"),
    (np.array([[0, 2], [1, 0], [2, 1]]), "multiclass-multioutput", "LW129"),
    (np.array([[1.0, 3.0], [2.0, 5.0]]), "multiclass-multioutput", "LW129"),
    (np.array([["a", "b"], ["c", "a"]], dtype=object), "multiclass-multioutput", "LW129"),
    ([0.5, 1.25, 3.0], "continuous", "regression"),
    (np.array([[0.5], [1.5], [2.0]]), "continuous", "regression"),
    (np.array([[1.5, 2.0], [3.25, 4.0]]), "continuous-multioutput", "regression"),
    (np.array([[0.5, 1.0], [1.0, 0.0]]), "continuous-multioutput", "regression"),
    (np.zeros((3, 2, 2)), "unknown", "LW127"),
    (np.zeros((3, 0)), "unknown", "LW124"),
    (np.array([{"a": 1}, {"b": 2}], dtype=object), "unknown", "LW127"),
    (np.array([1, "a", 2], dtype=object), "unknown", "LW118"),
]


@pytest.mark.parametrize(("values", "sk", "expected"), TABLE)
def test_table_against_type_of_target(values, sk, expected):
    assert type_of_target(values) == sk  # the table says what sklearn says
    got, _ = outcome(values)
    assert got == expected
    assert got in ALLOWED[sk]


def test_multiclass_multioutput_is_refused_even_as_columns():
    frame = pd.DataFrame({"a": [0, 1, 2, 1], "b": [2, 2, 0, 1]})
    assert type_of_target(frame.to_numpy()) == "multiclass-multioutput"
    with pytest.raises(LabelError) as err:
        infer_task(frame)
    assert err.value.code == "LW129"
    assert "multiclass-multioutput" in str(err.value) and "label_columns=" in str(err.value)


def test_integer_matrix_is_regression_only_when_asked():
    counts = np.array([[0, 3], [2, 7], [5, 1]])
    with pytest.raises(LabelError, match="class ids"):
        infer_task(counts)
    result = infer_task(counts, task="regression")
    assert result.task is Task.REGRESSION and len(result.targets) == 2


def test_column_vector_of_class_ids_encodes_as_ids():
    ids = np.array([[2], [0], [1], [2]])
    schema = infer_schema(ids)
    assert (schema.task, schema.classes, schema.label_format) == (
        Task.MULTICLASS, (0, 1, 2), "ints")
    assert schema.encode(ids).tolist() == [2, 0, 1, 2]
    assert schema.encode([[1], [0]]).tolist() == [1, 0]  # nested lists read the same way


def test_ambiguous_two_valued_matrix_names_the_choices():
    with pytest.raises(AmbiguousTaskError) as err:
        infer_task(np.array([[1, 2], [2, 1], [2, 2]]))
    text = str(err.value)
    for choice in ("multilabel", "multiclass-multioutput", "regression", "task='regression'"):
        assert choice in text


_elements = st.one_of(
    st.integers(-2, 4).map(float),
    st.floats(-3, 3, allow_nan=False, allow_infinity=False, width=32),
)


@st.composite
def targets(draw):
    n = draw(st.integers(2, 12))
    shape = draw(st.sampled_from([(n,), (n, 1), (n, draw(st.integers(2, 4)))]))
    kind = draw(st.sampled_from(["int", "bool", "integral", "float", "binary01"]))
    if kind == "int":
        return draw(hnp.arrays(np.int64, shape, elements=st.integers(-2, 4)))
    if kind == "bool":
        return draw(hnp.arrays(np.bool_, shape))
    if kind == "binary01":
        return draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0])))
    if kind == "integral":
        return draw(hnp.arrays(np.float64, shape, elements=st.integers(-2, 4).map(float)))
    return draw(hnp.arrays(np.float64, shape, elements=_elements))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(targets())
def test_any_numeric_target_agrees_with_type_of_target(values):
    expected, got = check(values)
    if values.dtype.kind in "iub" and values.ndim == 2 and values.shape[1] > 1:
        assert got != "regression"  # an integer matrix is never silently regression
    # the same values as Python lists read the same way
    assert outcome(values.tolist())[0] == got

"""Every audit finding: feed the bad input, check the code, level, exact message and where."""

from __future__ import annotations

import pandas as pd
import pytest

from labelwise import inspect_data


def frame(labels, texts=None, column="label"):
    texts = texts if texts is not None else [f"text number {i}" for i in range(len(labels))]
    return pd.DataFrame({"text": texts, column: labels})


def run(train, valid=None, test=None, **kwargs):
    if valid is None:
        kwargs.setdefault("valid_size", 0.25)
    return inspect_data(train=train, valid=valid, test=test, **kwargs)


def only(result, code):
    hits = result.findings.by_code(code)
    assert len(hits) == 1, [f.render() for f in result.findings]
    return hits[0]


BALANCED = ["neg", "pos"] * 20


def test_clean_data_has_no_findings():
    result = run(frame(BALANCED), frame(["neg", "pos"] * 5, [f"v{i}" for i in range(10)]))
    assert list(result.findings) == []
    assert result.ok


def test_lw101_single_class():
    result = run(frame(["pos"] * 10))
    f = only(result, "LW101")
    assert (f.level, f.message) == ("error", "column 'label' has a single class 'pos' in all "
                                    "10 labelled rows")
    assert result.schema is None and not result.ok


def test_lw102_class_in_valid_that_train_lacks():
    valid = frame(["neg", "pos", "neutral", "neutral"], ["a", "b", "c", "d"])
    f = only(run(frame(BALANCED), valid), "LW102")
    assert f.level == "error"
    assert f.message == "label 'neutral' occurs in validation (2 row(s)) but not in train"
    assert (f.where.split, f.where.rows, f.where.value) == ("valid", (2, 3), "neutral")


def test_lw103_train_class_missing_from_validation_and_lw104_from_test():
    train = frame(["a", "b", "c"] * 10)
    valid = frame(["a", "b"] * 3, [f"v{i}" for i in range(6)])
    test = frame(["a", "c"] * 3, [f"t{i}" for i in range(6)])
    result = run(train, valid, test)
    f = only(result, "LW103")
    assert (f.level, f.message) == ("warning", "1 train class(es) never occur in validation: 'c'")
    f = only(result, "LW104")
    assert (f.level, f.message) == ("info", "1 train class(es) never occur in test: 'b'")


def test_lw105_rare_classes():
    labels = ["a"] * 30 + ["b"] * 30 + ["c"] * 3
    valid = frame(["a", "b", "c"], ["x", "y", "z"])
    f = only(run(frame(labels), valid), "LW105")
    assert f.message == "1 rare class(es) in train, with fewer than 10 rows: 'c' (3)"


def test_lw106_case_and_whitespace_variants():
    labels = ["positive", "negative"] * 10 + ["Positive", "positive "]
    f = only(run(frame(labels), frame(["positive", "negative"], ["x", "y"])), "LW106")
    assert f.level == "error"
    assert f.message == ("labels differ only by case, whitespace or Unicode form: 'positive' "
                         "(11), 'Positive' (1), 'positive ' (1)")
    assert "map them to one spelling, e.g. 'positive'" in f.fix


def test_lw106_unicode_forms():
    nfc, nfd = "caf\u00e9", "cafe\u0301"
    labels = [nfc, "tea"] * 10 + [nfd]
    f = only(run(frame(labels), frame([nfc, "tea"], ["x", "y"])), "LW106")
    assert f.message.endswith(f"'{nfc}' (11), '{nfd}' [not NFC] (1)")


def test_lw107_missing_label_cells():
    labels = BALANCED + [None, float("nan"), ""]
    f = only(run(frame(labels), frame(["neg", "pos"], ["x", "y"])), "LW107")
    assert f.message == "3 row(s) have no label (NaN, None or empty)"
    assert f.where.rows == (40, 41, 42)


def test_lw108_empty_label_sets_counted():
    labels = [["a"], ["b"], []] * 10
    f = only(run(frame(labels), frame([["a"], ["b"]], ["x", "y"])), "LW108")
    assert (f.level, f.message) == ("info", "10 row(s) (33.3%) have an empty label set; they "
                                    "train as 'no label applies'")


def test_lw109_conflicting_labels_for_the_same_text():
    texts = [f"t{i}" for i in range(40)]
    texts[5] = texts[6] = "same words"
    train = frame(BALANCED, texts)
    f = only(run(train, frame(["neg", "pos"], ["x", "y"])), "LW109")
    assert f.message == ("1 text(s) carry conflicting labels, e.g. 'same words' labelled "
                         "'neg' and 'pos'")
    assert f.where.rows == (5, 6)


def test_lw110_leakage_between_splits():
    valid = frame(["neg", "pos"], ["text number 3", "fresh"])
    f = only(run(frame(BALANCED), valid), "LW110")
    assert f.message == ("1 text(s) of validation also occur in train (leakage inflates "
                         "validation scores)")
    assert f.where.rows == (0,)


def test_lw111_form_differs_between_splits():
    train = frame([0, 1] * 10)
    valid = frame(["0", "1", "neutral"], ["a", "b", "c"])
    f = only(run(train, valid), "LW111")
    assert f.message == "labels in validation are strings, but the schema from train reads ints"
    assert f.where.rows == (0, 1, 2)


def test_lw112_one_hot_rows_with_zero_or_several_ones_in_valid():
    train = frame([[1, 0, 0], [0, 1, 0], [0, 0, 1]] * 5)
    valid = frame([[1, 0, 0], [1, 1, 0], [0, 0, 0]], ["a", "b", "c"])
    f = only(run(train, valid), "LW112")
    assert f.message == ("2 row(s) hold zero or several labels, but the task is single-label "
                         "multiclass")


def test_lw112_when_single_label_is_asked_on_train():
    train = frame([[1, 0, 0], [1, 1, 0], [0, 0, 1]] * 5)
    f = only(run(train, task="multiclass"), "LW112")
    assert f.message == ("task 'multiclass' was asked, but 5 one-hot row(s) of column 'label' "
                         "have zero or several 1s")


def test_lw113_rows_of_different_width_in_valid():
    train = frame([[1, 0, 1], [0, 1, 0]] * 5)
    valid = frame([[1, 0, 1], [0, 1]], ["a", "b"])
    f = only(run(train, valid), "LW113")
    assert f.message == "1 row(s) have a width other than the schema's 3"


def test_lw114_value_outside_class_list():
    f = only(run(frame(BALANCED + ["maybe"]), classes=["neg", "pos"]), "LW114")
    assert f.message == "value 'maybe' is not in the class list ['neg', 'pos'] (1 such value(s))"
    assert f.where.rows == (40,)


def test_lw115_stray_value_turns_binary_into_three_classes():
    labels = BALANCED + ["neutral"] * 3
    f = only(run(frame(labels), task="binary"), "LW115")
    assert f.message == ("task 'binary' was asked, but column 'label' has 3 classes: stray "
                         "value 'neutral' (3 row(s)) next to 'neg' and 'pos'")
    assert (f.where.rows, f.where.count, f.where.value) == ((40, 41, 42), 3, "neutral")
    assert f.fix == "fix or drop the rows with 'neutral', or pass --task multiclass"


def test_lw116_more_distinct_values_than_half_the_rows():
    f = only(run(frame(list(range(40)))), "LW116")
    assert f.level == "warning"


def test_lw117_empty_or_missing_texts():
    texts = [f"t{i}" for i in range(40)]
    texts[3], texts[9] = "  ", None
    f = only(run(frame(BALANCED, texts), frame(["neg", "pos"], ["x", "y"])), "LW117")
    assert f.message == "2 row(s) have an empty or missing text"
    assert f.where.rows == (3, 9)


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, pd.NaT])
def test_lw117_every_missing_value_pandas_knows_in_an_object_text_column(missing):
    # a DataFrame built in Python: pd.NA in an object column is no text, not the text "<NA>"
    texts = pd.Series([f"t{i}" for i in range(40)], dtype=object)
    texts[5] = missing
    f = only(run(frame(BALANCED, texts), frame(["neg", "pos"], ["x", "y"])), "LW117")
    assert f.message == "1 row(s) have an empty or missing text"
    assert f.where.rows == (5,)


def test_lw118_mixed_forms():
    f = only(run(frame(BALANCED + [1])), "LW118")
    assert f.message.startswith("column 'label' mixes label forms: 40 strings")


def test_lw119_ambiguous_integral_floats():
    f = only(run(frame([1.0, 2.0, 3.0] * 10)), "LW119")
    assert "pass --task multiclass if they are class ids, or --task regression" in f.fix


def test_lw121_class_too_rare_for_both_parts_of_carved_split():
    labels = ["a"] * 30 + ["b"] * 30 + ["c"]
    result = run(frame(labels), valid_size=0.2)
    f = only(result, "LW121")
    assert f.message == ("class 'c' has 1 row(s): too rare to appear in both parts of the "
                         "carved split; it is only in train")
    assert result.data.carve.method == "stratified"


def test_lw125_and_lw126_regression_targets():
    train = frame([1.5, float("inf"), 2.25] * 5)
    f = only(run(train, frame([1.5, 2.5], ["x", "y"])), "LW125")
    assert f.message == "5 regression target(s) are infinite"
    const = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "V": [2.5] * 10,
                          "A": [1.5, 2.5] * 5})
    valid = pd.DataFrame({"text": ["x"], "V": [2.5], "A": [1.5]})
    f = only(run(const, valid, label_columns=["V", "A"]), "LW126")
    assert f.message == "regression target 'V' is constant (2.5) in train"


def test_lw124_empty_split():
    valid = frame([], [])
    f = only(run(frame(BALANCED), valid), "LW124")
    assert f.message == "the validation split has no rows"


def test_carving_is_seeded_recorded_and_keeps_row_numbers():
    train = frame(["a", "b", "c"] * 30)
    a = run(train, seed=7).data
    b = run(train, seed=7).data
    assert a.carve == b.carve and a.carve.seed == 7
    assert set(a.frames["valid"].index) == set(a.carve.valid_rows)
    assert set(a.frames["train"].index).isdisjoint(a.carve.valid_rows)
    counts = a.frames["valid"]["label"].value_counts().to_dict()
    assert counts == {"a": 7, "b": 7, "c": 7} or sum(counts.values()) == 22


def test_multilabel_carve_uses_iterative_stratification():
    labels = [["a"], ["b"], ["a", "b"], ["c"]] * 10
    data = run(frame(labels)).data
    assert data.carve.method == "iterative_stratification"


def test_regression_carve_is_random():
    data = run(frame([0.5 + i / 7 for i in range(40)])).data
    assert data.carve.method == "random" and data.carve.n_valid == 10


@pytest.mark.parametrize("bad", [[None], ["  "]])
def test_missing_labels_never_reach_carved_validation(bad):
    data = run(frame(BALANCED + bad * 4)).data
    assert data.frames["valid"]["label"].notna().all()


def test_lw108_mostly_empty_split_is_a_warning_with_count_and_share():
    train = [["a"], ["b"], ["a", "b"], []] * 10
    valid = frame([[], [], ["a"], [], ["b"]], [f"v{i}" for i in range(5)])
    result = run(frame(train), valid)
    by_split = {f.where.split: f for f in result.findings.by_code("LW108")}
    assert by_split["train"].level == "info"
    assert by_split["train"].message.startswith("10 row(s) (25.0%) have an empty label set")
    assert by_split["valid"].level == "warning"
    assert by_split["valid"].message == ("3 of 5 rows (60.0%) of validation have an empty "
                                         "label set: most of the split says 'no label "
                                         "applies'")
    assert by_split["valid"].where.rows == (0, 1, 3)


def test_lw110_test_rows_whose_text_occurs_in_train():
    test = frame(["neg", "pos", "neg"], ["text number 7", "unseen", "  text  number 9 "])
    valid = frame(["neg", "pos"], ["v1", "v2"])
    f = only(run(frame(BALANCED), valid, test), "LW110")
    assert (f.level, f.where.split) == ("warning", "test")
    assert f.message == "2 text(s) of test also occur in train (leakage inflates test scores)"
    assert f.where.rows == (0, 2)  # whitespace runs do not hide a copy


def _leak_texts(n_groups=30, copies=3):
    # every text occurs `copies` times with one label: a carve by rows splits most groups
    texts = [f"sentence {g}" for g in range(n_groups) for _ in range(copies)]
    labels = [["neg", "pos"][g % 2] for g in range(n_groups) for _ in range(copies)]
    return texts, labels


@pytest.mark.parametrize("task", ["single", "multilabel", "regression"])
def test_carve_keeps_each_text_on_one_side_and_reports_no_leak_it_made(task):
    texts, labels = _leak_texts()
    if task == "multilabel":
        labels = [[lab] if i % 4 else [lab, "extra"] for i, lab in enumerate(labels)]
    if task == "regression":
        labels = [0.5 + (i // 3) / 7 for i in range(len(labels))]
    result = run(frame(labels, texts), valid_size=0.2, seed=3)
    data = result.data
    train_texts = set(data.frames["train"]["text"])
    valid_texts = set(data.frames["valid"]["text"])
    assert valid_texts and not train_texts & valid_texts
    assert not result.findings.by_code("LW110"), [f.render() for f in result.findings]
    assert len(data.frames["valid"]) % 3 == 0  # whole groups
    assert 12 <= len(data.frames["valid"]) <= 24  # about 20% of 90 rows
    assert set(data.carve.valid_rows) == set(data.frames["valid"].index)


def test_carve_without_duplicates_is_unchanged_by_grouping():
    from labelwise.data.split import carve_validation
    from labelwise.labels.schema import infer_schema

    labels = ["a", "b", "c"] * 30
    df = frame(labels)
    schema = infer_schema(df["label"])
    targets = schema.encode(df["label"])
    by_rows = carve_validation(df, targets, schema=schema, valid_size=0.2, seed=5)
    by_text = carve_validation(df, targets, schema=schema, valid_size=0.2, seed=5,
                               texts=list(df["text"]))
    assert by_rows[2] == by_text[2]


def test_carve_keeps_a_group_with_an_unfit_row_in_train():
    texts = ["dup"] * 3 + [f"t{i}" for i in range(37)]
    labels = [None, "neg", "pos"] + ["neg", "pos"] * 18 + ["neg"]
    data = run(frame(labels, texts), valid_size=0.25).data
    assert "dup" not in set(data.frames["valid"]["text"])

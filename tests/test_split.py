"""The stratified carve is scikit-learn's ``train_test_split``, row for row, without
importing scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.data.split import iterative_stratification_split, stratified_shuffle_split


@st.composite
def _labels_and_size(draw):
    counts = draw(st.lists(st.integers(2, 40), min_size=1, max_size=8))
    y = np.repeat(np.arange(len(counts)), counts)
    y = draw(st.permutations(y.tolist()))
    n = len(y)
    n_test = draw(st.integers(len(counts), n - len(counts)))
    labels = draw(st.sampled_from(["ints", "strings", "sparse ints"]))
    y = np.asarray(y)
    if labels == "strings":
        y = np.array([f"class {v}" for v in y])
    elif labels == "sparse ints":
        y = y * 7 + 3
    return y, n_test


@settings(max_examples=300, deadline=None)
@given(_labels_and_size(), st.integers(0, 2**31 - 1))
def test_the_split_is_scikit_learns_own(case, seed):
    from sklearn.model_selection import train_test_split

    y, n_test = case
    _, expected = train_test_split(np.arange(len(y)), test_size=n_test, random_state=seed,
                                   stratify=y)
    got = stratified_shuffle_split(y, n_test, seed)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("seed", [0, 42])
def test_a_large_split_with_ties_is_scikit_learns_own(seed):
    from sklearn.model_selection import train_test_split

    rng = np.random.default_rng(seed)
    y = rng.choice(4, size=100_000, p=[0.25, 0.25, 0.25, 0.25])
    _, expected = train_test_split(np.arange(len(y)), test_size=10_000, random_state=seed,
                                   stratify=y)
    np.testing.assert_array_equal(stratified_shuffle_split(y, 10_000, seed), expected)


def test_carving_a_split_does_not_import_scikit_learn(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{'ab'[i % 2]}\n" for i in range(50)))
    code = ("import sys; from labelwise import load_splits; "
            f"d = load_splits(train={str(path)!r}); "
            "assert d.carve.method == 'stratified', d.carve; "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


@st.composite
def _label_matrix(draw):
    n_labels = draw(st.integers(2, 6))
    n = draw(st.integers(2, 60))
    # sparse and dense rows, rows with no label, repeated rows (ties)
    density = draw(st.sampled_from([0.05, 0.3, 0.7]))
    seed = draw(st.integers(0, 2**31 - 1))
    y = np.random.default_rng(seed).random((n, n_labels)) < density
    n_test = draw(st.integers(1, n - 1))
    return y, n_test


@settings(max_examples=300, deadline=None)
@given(_label_matrix(), st.integers(0, 2**31 - 1))
def test_the_multilabel_split_is_iterstrats_own(case, seed):
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    y, n_test = case
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=n_test, random_state=seed)
    _, expected = next(splitter.split(np.zeros(len(y)), y))
    np.testing.assert_array_equal(iterative_stratification_split(y, n_test, seed), expected)


def test_a_large_multilabel_split_is_iterstrats_own():
    from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit

    rng = np.random.default_rng(3)
    y = rng.random((20_000, 28)) < rng.random(28) * 0.1  # rare and common labels
    splitter = MultilabelStratifiedShuffleSplit(n_splits=1, test_size=2_000, random_state=7)
    _, expected = next(splitter.split(np.zeros(len(y)), y.astype(float)))
    np.testing.assert_array_equal(iterative_stratification_split(y.astype(float), 2_000, 7),
                                  expected)

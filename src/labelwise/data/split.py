"""Carve a validation split from the training data: seeded, recorded, stratified, and by
groups of identical text, so the carve never makes the leakage the audit warns about.

Single-label tasks are stratified by class (scikit-learn's split, without its import),
multilabel tasks by iterative stratification (the ``iterative-stratification`` package's,
at the speed of plain Python), regression is split at random.
A class too rare to reach both parts is a finding (LW121), never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from labelwise.data.io import rows_where
from labelwise.findings import Finding, Where, format_value
from labelwise.labels.inference import Task
from labelwise.labels.schema import LabelSchema

__all__ = ["CarveRecord", "carve_validation"]


@dataclass(frozen=True)
class CarveRecord:
    """How the validation split was carved, saved with every run."""

    method: str  # stratified | iterative_stratification | random
    valid_size: float
    seed: int
    n_train: int
    n_valid: int
    valid_rows: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        # asdict would deep-copy each of the rows (0.4 s for 100,000)
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["valid_rows"] = list(self.valid_rows)
        return out


def carve_validation(
    frame: Any,
    targets: np.ndarray,
    *,
    schema: LabelSchema,
    valid_size: float,
    seed: int,
    eligible: np.ndarray | None = None,
    texts: Any = None,
) -> tuple[Any, Any, CarveRecord, list[Finding]]:
    """Split ``frame`` into train and validation parts.

    Args:
        frame: The training DataFrame (its index is kept in both parts).
        targets: ``schema.encode`` of the frame's labels, one row per frame row.
        schema: The schema (decides the method).
        valid_size: Share of rows for validation, in (0, 1).
        seed: Seed of the split.
        eligible: Rows that may go to validation (rows whose label does not fit the schema
            stay in train, where the audit reports them).
        texts: Each row's text code (:func:`~labelwise.data.auditing.text_codes`, -1 for no
            text) or key (:func:`~labelwise.data.auditing.text_key`, ``None`` for none);
            rows of one text are carved together, so no text lands on both sides.

    Returns:
        ``(train, valid, record, findings)``.
    """
    n = len(frame)
    ok = np.asarray(eligible, dtype=bool) if eligible is not None else np.ones(n, dtype=bool)
    # One representative row per group of identical text; a group with a row that must
    # stay in train stays in train whole.
    group = _groups(texts, n)
    group_ok = np.ones(int(group.max()) + 1 if n else 0, dtype=bool)
    np.logical_and.at(group_ok, group, ok)
    first = np.unique(group, return_index=True)[1]
    reps = first[group_ok[group[first]]]
    rows_per_group = np.bincount(group)
    n_pool = int(rows_per_group[group[reps]].sum())
    n_valid = min(max(1, int(round(n * valid_size))), max(n_pool - 1, 0))
    # as many groups as keep the share of rows: groups are mostly single rows
    k = min(int(round(len(reps) * n_valid / n_pool)) if n_pool else 0, len(reps) - 1)
    if n_valid and len(reps) > 1:
        k = max(k, 1)
    rep_targets = _group_targets(targets, group, reps, schema)
    rng = np.random.default_rng(seed)
    findings: list[Finding] = []
    if k <= 0:
        method, picked = "none", np.array([], dtype=int)
    elif schema.task.single_label:
        method = "stratified"
        picked = reps[_stratified(rep_targets, k, seed)]
    elif schema.task is Task.MULTILABEL:
        method = "iterative_stratification"
        picked = reps[iterative_stratification_split(rep_targets, k, seed)]
    else:
        method = "random"
        picked = rng.permutation(reps)[:k]
    chosen_groups = np.zeros(len(group_ok), dtype=bool)
    chosen_groups[group[np.asarray(picked, dtype=int)]] = True
    mask = chosen_groups[group] if n else np.zeros(0, dtype=bool)
    keep = eligible if eligible is not None else np.ones(n, dtype=bool)
    train, valid = rows_where(frame, ~mask), rows_where(frame, mask)
    if schema.task is not Task.REGRESSION:
        findings.extend(_unreached(targets[keep], mask[keep], schema))
    record = CarveRecord(method, valid_size, seed, int((~mask).sum()), int(mask.sum()),
                         tuple(int(i) for i in frame.index[mask]))
    return train, valid, record, findings


def _groups(texts: Any, n: int) -> np.ndarray:
    """Group id per row: rows of one text share an id; a row without text is alone.

    ``texts`` holds a key per row (``None`` for no text) or a code per row (-1 for none).
    """
    if texts is None:
        return np.arange(n)
    import pandas as pd

    values = np.asarray(texts) if not isinstance(texts, np.ndarray) else texts
    none = values < 0 if values.dtype.kind in "iu" else pd.isna(values)
    ids = pd.factorize(values)[0]  # in order of first appearance
    # a row without text gets an id of its own above every text's
    out = np.where(none, n + np.arange(n), ids).astype(np.int64)
    return np.unique(out, return_inverse=True)[1].reshape(n)


def _group_targets(targets: np.ndarray, group: np.ndarray, reps: np.ndarray,
                   schema: LabelSchema) -> np.ndarray:
    """The stratification target of each group: its first row's, or for multilabel the
    union of its rows' labels."""
    if schema.task is not Task.MULTILABEL or len(reps) == len(group):
        return targets[reps]
    union = np.zeros((group.max() + 1, targets.shape[1]), dtype=targets.dtype)
    np.maximum.at(union, group, targets)
    return union[group[reps]]


def _stratified(ids: np.ndarray, n_valid: int, seed: int) -> np.ndarray:
    """Stratified sample of ``n_valid`` positions; classes with one row stay in train."""
    counts = np.bincount(ids)
    splittable = counts[ids] >= 2
    positions = np.flatnonzero(splittable)
    n_classes = int((counts >= 2).sum())
    if len(positions) <= n_classes or n_valid < n_classes:
        rng = np.random.default_rng(seed)
        return rng.permutation(positions)[:n_valid]
    n_valid = min(n_valid, len(positions) - n_classes)
    return positions[stratified_shuffle_split(ids[positions], n_valid, seed)]


def stratified_shuffle_split(y: np.ndarray, n_test: int, seed: int) -> np.ndarray:
    """The test positions of ``sklearn.model_selection.train_test_split(range(len(y)),
    test_size=n_test, random_state=seed, stratify=y)``, draw for draw.

    scikit-learn's own split, with its tie-breaking and its random stream, in a few numpy
    calls: importing scikit-learn takes 1.5 s (it loads ``scipy.stats``), three times what
    reading and checking a shared dataset takes. ``tests/test_split.py`` checks that both
    give the same rows. Every class needs two rows, and each part one row per class.
    """
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    n_train = len(y) - n_test
    by_class = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train, test = [], []
    for rows, count, n_tr, n_te in zip(by_class, class_counts, n_i, t_i, strict=True):
        shuffled = rows.take(rng.permutation(count), mode="clip")
        train.append(shuffled[:n_tr])
        test.append(shuffled[n_tr:n_tr + n_te])
    rng.permutation(np.concatenate(train))  # the train part's draws come first
    return rng.permutation(np.concatenate(test))


def iterative_stratification_split(y: np.ndarray, n_test: int, seed: int) -> np.ndarray:
    """The test positions of ``iterstrat.ml_stratifiers.MultilabelStratifiedShuffleSplit(
    n_splits=1, test_size=n_test, random_state=seed)`` on the label matrix ``y``, draw for
    draw.

    The package's iterative stratification (Sechidis et al., 2011) with two folds, its
    tie-breaking and its random stream, with the per-row work in plain Python on counters
    instead of numpy calls on whole matrices: 29 s became 2.5 s on a million rows
    of 28 labels, and scikit-learn (which the package imports) is not loaded.
    ``tests/test_split.py`` checks that both give the same rows.
    """
    y = np.asarray(y, dtype=bool)
    n = len(y)
    rng = np.random.RandomState(seed)
    r = np.array([n - n_test, n_test]) / n
    order = np.arange(n)
    rng.shuffle(order)
    folds = _iterative_stratification(y[order], r, rng)
    return np.flatnonzero(folds[np.argsort(order)] == 1)


def _iterative_stratification(labels: np.ndarray, r: np.ndarray,
                              rng: np.random.RandomState) -> np.ndarray:
    """``iterstrat``'s ``IterativeStratification(labels, r, rng)`` for two folds: each
    round takes the label with the fewest rows left (ties at random) and gives each of its
    rows, in order, to the fold that wants that label most, then the fold that wants most
    rows, then a coin; rows with no label left go to the fold that wants most rows."""
    n, n_labels = labels.shape
    folds = np.zeros(n, dtype=int)
    wanted = (r * n).tolist()  # rows each fold still wants
    wanted_label = np.outer(r, labels.sum(axis=0)).tolist()  # per fold and label
    left = labels.sum(axis=0).tolist()  # rows not yet placed, per label
    rows, cols = np.nonzero(labels)  # row by row
    ends = np.cumsum(np.bincount(rows, minlength=n)).tolist()
    label_lists = cols.tolist()
    rows_of = [np.flatnonzero(labels[:, j]) for j in range(n_labels)]
    placed = np.zeros(n, dtype=bool)
    while not placed.all():
        present = [v for v in left if v]
        if not present:
            todo = np.flatnonzero(~placed)
            out = []
            for _ in todo:
                if wanted[0] == wanted[1]:
                    f = int(rng.choice(2))
                else:
                    f = 0 if wanted[0] > wanted[1] else 1
                out.append(f)
                wanted[f] -= 1
            folds[todo] = out
            break
        fewest = min(present)
        ties = [j for j, v in enumerate(left) if v == fewest]
        label = ties[rng.choice(len(ties))] if len(ties) > 1 else ties[0]
        todo = rows_of[label][~placed[rows_of[label]]]
        want0, want1 = wanted_label
        out = []
        for row in todo.tolist():
            if want0[label] != want1[label]:
                f = 0 if want0[label] > want1[label] else 1
            elif wanted[0] != wanted[1]:
                f = 0 if wanted[0] > wanted[1] else 1
            else:
                f = int(rng.choice(2))
            out.append(f)
            mine = want0 if f == 0 else want1
            for j in label_lists[ends[row - 1] if row else 0:ends[row]]:
                mine[j] -= 1
                left[j] -= 1
            wanted[f] -= 1
        folds[todo] = out
        placed[todo] = True
    return folds


def _approximate_mode(class_counts: np.ndarray, n_draws: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """Rows drawn per class (scikit-learn's ``_approximate_mode``): the floor of each
    class's share, then one more to the largest remainders, ties broken at random."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (tied,) = np.where(remainder == value)
            now = min(len(tied), need)
            floored[rng.choice(tied, size=now, replace=False)] += 1
            need -= now
            if need == 0:
                break
    return floored.astype(int)


def _unreached(targets: np.ndarray, mask: np.ndarray, schema: LabelSchema) -> list[Finding]:
    if schema.task.single_label:
        onehot = np.zeros((len(targets), len(schema.classes)), dtype=bool)
        onehot[np.arange(len(targets)), targets] = True
    else:
        onehot = targets > 0.5
    in_train = onehot[~mask].any(axis=0)
    in_valid = onehot[mask].any(axis=0)
    out = []
    for i, cls in enumerate(schema.classes):
        total = int(onehot[:, i].sum())
        if total and not (in_train[i] and in_valid[i]):
            part = "validation" if not in_valid[i] else "train"
            out.append(Finding(
                "LW121", "warning",
                f"class {format_value(cls)} has {total} row(s): too rare to appear in both "
                f"parts of the carved split; it is only in {'train' if part == 'validation' else 'validation'}",
                Where.at(split="train", column=",".join(schema.columns), value=cls),
                "add examples of it, or pass a validation file",
            ))
    return out

"""The label core as it was written row by row: the reference the column-wise code in
``labelwise.labels`` and ``labelwise.data.auditing`` must agree with, finding for finding.

Kept only as a test oracle (slow: per-row Python). Do not import it from the package.
"""

from __future__ import annotations

import json
import math
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labelwise.data.auditing import SPLIT_WORDS, rare_threshold, text_key
from labelwise.findings import Finding, Where, format_value
from labelwise.labels._cells import (MISSING, Cell, Form, _is_nan, _list_cell, _number_cell,
                                     column_values, parse_cell)
from labelwise.labels.inference import Task, form_word


def ref_parse(schema: Any, values: Any) -> list[Cell]:
    if len(schema.columns) > 1:
        if isinstance(values, Mapping) or type(values).__name__ == "DataFrame":
            return ref_parse_columns({c: values[c] for c in schema.columns})
        return [parse_cell(row) for row in np.asarray(values)]
    if isinstance(values, Mapping) or type(values).__name__ == "DataFrame":
        values = values[schema.columns[0]]
    return ref_parse_column(values, label_sep=schema.label_sep)


def ref_canonical_rows(schema: Any, values: Any) -> tuple[list[Cell], list[Any]]:
    cells = ref_parse(schema, values)
    out: list[Any] = []
    for cell in cells:
        try:
            out.append(schema.canonical(cell))
        except (KeyError, ValueError) as exc:
            out.append(exc)
    return cells, out


_HASHABLE = (str, int, float, bool)


def ref_parse_column(values: Any, *, label_sep: str | None = None) -> list[Cell]:
    """Parse every cell of one label column (scalar cells are parsed once per distinct value).

    A column whose every row is a one-number list (``[[0], [2], [1]]``, ``"[3]"``) is a
    column vector: its cells are the numbers themselves, as scikit-learn reads shape [n, 1].
    """
    cache: dict[tuple[type, Any], Cell] = {}
    out: list[Cell] = []
    raw = column_values(values)
    for value in raw:
        if isinstance(value, _HASHABLE) and not _is_nan(value):
            key = (type(value), value)
            cell = cache.get(key)
            if cell is None:
                cell = cache[key] = parse_cell(value, label_sep=label_sep)
            out.append(cell)
        else:
            out.append(parse_cell(value, label_sep=label_sep))
    present = [c for c in out if c.form is not Form.MISSING]
    if present and all(c.form in (Form.INDICATOR, Form.VECTOR) and len(c.value) == 1
                       for c in present):
        return [c if c.form is Form.MISSING else _number_cell(_only_item(r))
                for c, r in zip(out, raw, strict=True)]
    return out


def _only_item(raw: Any) -> Any:
    """The one number of a one-number row, with its own type (int stays int)."""
    if isinstance(raw, str):
        return json.loads(raw.strip())[0]
    if type(raw).__name__ == "ndarray":
        return raw.tolist()[0]
    return raw[0]


def ref_parse_columns(columns: Mapping[str, Any]) -> list[Cell]:
    """Parse several scalar label columns into one row cell each.

    ``{"anger": [0, 1], "joy": [1, 1]}`` gives indicator rows ``(0, 1)`` and ``(1, 1)``;
    float columns give vectors. A row with a missing cell in any column is missing; a row
    whose cells are not all numbers is unreadable.
    """
    names = list(columns)
    parsed = [ref_parse_column(columns[name]) for name in names]
    lengths = {len(p) for p in parsed}
    if len(lengths) > 1:
        raise ValueError(f"label columns have different lengths: {sorted(lengths)}")
    rows: list[Cell] = []
    numeric = (Form.BOOL, Form.INT, Form.INTEGRAL_FLOAT, Form.FLOAT)
    for cells in zip(*parsed, strict=True):
        if any(c.form is Form.MISSING for c in cells):
            rows.append(MISSING)
        elif all(c.form in numeric for c in cells):
            rows.append(_list_cell([float(c.value) for c in cells], "columns"))
        else:
            rows.append(Cell(Form.UNREADABLE, tuple(c.value for c in cells), "columns"))
    return rows


def ref_audit_frames(
    frames: Mapping[str, Any],
    *,
    text_column: str,
    label_columns: Sequence[str],
    schema: Any = None,
    text_pair_column: str | None = None,
) -> list[Finding]:
    """Run every check on DataFrames; label checks need ``schema`` (text checks do not)."""
    out: list[Finding] = []
    texts = {s: [text_key(t) for t in f[text_column].tolist()] for s, f in frames.items()}
    indexes = {s: [int(i) for i in f.index] for s, f in frames.items()}
    for split, frame in frames.items():
        for column in [text_column, *([text_pair_column] if text_pair_column else [])]:
            out.extend(_empty_texts(frame, column, split))
    out.extend(_leakage(texts, indexes, text_column))
    if schema is None:
        return out
    column = ",".join(label_columns)
    canon: dict[str, list[Any]] = {}
    for split, frame in frames.items():
        values = frame[label_columns[0]] if len(label_columns) == 1 else frame[list(label_columns)]
        cells, rows = ref_canonical_rows(schema, values)
        canon[split] = rows
        ctx = _Ctx(split, column, indexes[split], cells, rows, schema)
        if not len(frame):
            out.append(Finding("LW124", "error", f"the {SPLIT_WORDS[split]} split has no rows",
                               Where(split=split), "give it rows, or leave it out"))
            continue
        out.extend(ctx.missing())
        out.extend(ctx.forms())
        out.extend(ctx.unfit())
        if schema.task is Task.MULTILABEL:
            out.extend(ctx.empty_sets())
        if schema.task is Task.REGRESSION:
            out.extend(ctx.regression())
        out.extend(_conflicts(texts[split], ctx))
    if schema.task is not Task.REGRESSION:
        out.extend(_coverage(canon, schema, column))
        out.extend(_variants(frames, label_columns, schema, column))
    return out


class _Ctx:
    """One split's parsed labels, with the checks that read only that split."""

    def __init__(self, split: str, column: str, index: list[int], cells: list[Cell],
                 canon: list[Any], schema: Any) -> None:
        self.split, self.column, self.index = split, column, index
        self.cells, self.canon, self.schema = cells, canon, schema

    def where(self, positions: Sequence[int], value: Any = None) -> Where:
        return Where.at(split=self.split, column=self.column,
                        rows=[self.index[p] for p in positions], value=value)

    def missing(self) -> list[Finding]:
        # [None, "pos", NaN, ""] -> missing label cells
        rows = [i for i, c in enumerate(self.cells) if c.form is Form.MISSING]
        if not rows:
            return []
        return [Finding("LW107", "error", f"{len(rows)} row(s) have no label (NaN, None or "
                        "empty)", self.where(rows), "fill in the labels or drop those rows")]

    def forms(self) -> list[Finding]:
        # ints in train, strings in validation -> the form differs between splits
        wrong = [i for i, c in enumerate(self.cells)
                 if not self.schema.accepts(c.form) and c.form is not Form.MISSING]
        if not wrong:
            return []
        kinds = Counter(self.cells[i].form for i in wrong)
        form = kinds.most_common(1)[0][0]
        return [Finding("LW111", "error", f"labels in {SPLIT_WORDS[self.split]} are "
                        f"{form_word(form)}, but the schema from train reads "
                        f"{self.schema.label_format.replace('_', ' ')}",
                        self.where(wrong, self.cells[wrong[0]].value),
                        "write the labels of every split in one form")]

    def unfit(self) -> list[Finding]:
        """Cells of a compatible form that still do not fit: unseen classes, bad rows."""
        unseen: dict[Any, list[int]] = defaultdict(list)
        not_one: list[int] = []
        width: list[int] = []
        for i, (cell, value) in enumerate(zip(self.cells, self.canon, strict=True)):
            if not isinstance(value, Exception) or cell.form is Form.MISSING:
                continue
            if not self.schema.accepts(cell.form):
                continue  # reported by forms()
            if isinstance(value, KeyError):
                unseen[value.args[0]].append(i)
            elif str(value) == "width":
                width.append(i)
            else:
                not_one.append(i)
        out = []
        for label, rows in sorted(unseen.items(), key=lambda kv: -len(kv[1])):
            level = "error"
            word = SPLIT_WORDS[self.split]
            out.append(Finding("LW102", level, f"label {format_value(label)} occurs in {word} "
                               f"({len(rows)} row(s)) but not in train",
                               self.where(rows, label), "fix the label (a typo?), or add "
                               "training examples of it, or drop those rows"))
        if not_one:
            out.append(Finding("LW112", "error", f"{len(not_one)} row(s) hold zero or several "
                               f"labels, but the task is single-label {self.schema.task}",
                               self.where(not_one, self.cells[not_one[0]].value),
                               "pass --task multilabel, or give each row exactly one label"))
        if width:
            out.append(Finding("LW113", "error", f"{len(width)} row(s) have a width other "
                               f"than the schema's {self.schema.num_labels}",
                               self.where(width, self.cells[width[0]].value),
                               "give every row one position per class"))
        return out

    def empty_sets(self) -> list[Finding]:
        # [] in a multilabel column -> allowed, counted
        rows = [i for i, v in enumerate(self.canon) if v == ()]
        if not rows:
            return []
        share = len(rows) / max(len(self.canon), 1)
        if share > 0.5:
            # most rows say "no label applies": a model that predicts nothing scores well
            return [Finding("LW108", "warning", f"{len(rows)} of {len(self.canon)} rows "
                            f"({share:.1%}) of {SPLIT_WORDS[self.split]} have an empty label "
                            "set: most of the split says 'no label applies'",
                            self.where(rows), "check the label column and the label "
                            "separator; drop or label those rows if they are not meant")]
        return [Finding("LW108", "info", f"{len(rows)} row(s) ({share:.1%}) have an empty "
                        "label set; they train as 'no label applies'", self.where(rows),
                        "nothing to do if that is meant; otherwise add their labels")]

    def regression(self) -> list[Finding]:
        out = []
        good = [v for v in self.canon if not isinstance(v, Exception)]
        bad = [i for i, v in enumerate(self.canon)
               if not isinstance(v, Exception) and not all(math.isfinite(x) for x in v)]
        if bad:
            out.append(Finding("LW125", "error", f"{len(bad)} regression target(s) are "
                               "infinite", self.where(bad, self.cells[bad[0]].value),
                               "fix or drop those rows"))
        if self.split == "train" and len(good) >= 2:
            for t, name in enumerate(self.schema.targets):
                if len({v[t] for v in good}) == 1:
                    out.append(Finding("LW126", "error", f"regression target '{name}' is "
                                       f"constant ({good[0][t]}) in train",
                                       Where(split="train", column=name),
                                       "check the column; a constant cannot be learned"))
        return out


def _conflicts(texts: list[str | None], ctx: _Ctx) -> list[Finding]:
    # the same text labelled 'pos' in one row and 'neg' in another
    if ctx.schema.task is Task.REGRESSION:
        return []
    labels: dict[str, set[Any]] = defaultdict(set)
    rows: dict[str, list[int]] = defaultdict(list)
    for i, (text, value) in enumerate(zip(texts, ctx.canon, strict=True)):
        if text is None or isinstance(value, Exception):
            continue
        labels[text].add(value)
        rows[text].append(i)
    clashes = [t for t, ls in labels.items() if len(ls) > 1]
    if not clashes:
        return []
    positions = [p for t in clashes for p in rows[t]]
    first = clashes[0]
    shown = sorted(labels[first], key=str)
    return [Finding("LW109", "warning", f"{len(clashes)} text(s) carry conflicting labels, "
                    f"e.g. {format_value(first[:60])} labelled "
                    + " and ".join(format_value(v) for v in shown),
                    ctx.where(sorted(positions)), "relabel or drop the conflicting rows")]


def _leakage(texts: dict[str, list[str | None]], indexes: dict[str, list[int]],
             column: str) -> list[Finding]:
    # a test text that also occurs in train -> leakage
    out = []
    order = [s for s in ("train", "valid", "test") if s in texts]
    for a_i, a in enumerate(order):
        seen = {t for t in texts[a] if t is not None}
        for b in order[a_i + 1:]:
            rows = [indexes[b][i] for i, t in enumerate(texts[b]) if t is not None and t in seen]
            if rows:
                out.append(Finding(
                    "LW110", "warning", f"{len(rows)} text(s) of {SPLIT_WORDS[b]} also occur "
                    f"in {SPLIT_WORDS[a]} (leakage inflates {SPLIT_WORDS[b]} scores)",
                    Where.at(split=b, column=column, rows=rows),
                    f"drop those rows from {SPLIT_WORDS[b]}"))
    return out


def _empty_texts(frame: Any, column: str, split: str) -> list[Finding]:
    rows = [int(i) for i, t in zip(frame.index, frame[column].tolist(), strict=True)
            if text_key(t) is None]
    if not rows:
        return []
    return [Finding("LW117", "error", f"{len(rows)} row(s) have an empty or missing text",
                    Where.at(split=split, column=column, rows=rows),
                    "fill in the texts or drop those rows")]


def _coverage(canon: dict[str, list[Any]], schema: Any, column: str) -> list[Finding]:
    counts: dict[str, Counter] = {}
    for split, values in canon.items():
        c: Counter = Counter()
        for v in values:
            if isinstance(v, Exception):
                continue
            c.update(v if schema.task is Task.MULTILABEL else [v])
        counts[split] = c
    out = []
    train = counts.get("train", Counter())
    n_train = len(canon.get("train", []))
    limit = rare_threshold(n_train)
    rare = sorted((c for c in schema.classes if 0 < train[c] < limit), key=lambda c: train[c])
    if rare:
        listed = ", ".join(f"{format_value(c)} ({train[c]})" for c in rare[:5])
        more = f", … ({len(rare)} in all)" if len(rare) > 5 else ""
        out.append(Finding("LW105", "warning", f"{len(rare)} rare class(es) in train, with "
                           f"fewer than {limit} rows: {listed}{more}",
                           Where(split="train", column=column, value=rare[0], count=len(rare)),
                           "add examples, merge them, or expect unstable scores for them"))
    for split, level, code in (("valid", "warning", "LW103"), ("test", "info", "LW104")):
        if split not in counts:
            continue
        absent = [c for c in schema.classes if train[c] and not counts[split][c]]
        if absent:
            listed = ", ".join(format_value(c) for c in absent[:5])
            more = f", … ({len(absent)} in all)" if len(absent) > 5 else ""
            out.append(Finding(code, level, f"{len(absent)} train class(es) never occur in "
                               f"{SPLIT_WORDS[split]}: {listed}{more}",
                               Where(split=split, column=column, value=absent[0],
                                     count=len(absent)),
                               f"their {SPLIT_WORDS[split]} scores cannot be measured; add "
                               "examples if they matter"))
    return out


def _norm(label: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", label).casefold().split())


def _spelling(label: str) -> str:
    """A label as quoted in LW106, marked where its Unicode form is not NFC."""
    text = format_value(label)
    return text if unicodedata.normalize("NFC", label) == label else text + " [not NFC]"


def _variants(frames: Mapping[str, Any], label_columns: Sequence[str], schema: Any,
              column: str) -> list[Finding]:
    # "Positive" next to "positive", "pos " next to "pos", "café" in two Unicode forms
    spellings: dict[str, Counter] = defaultdict(Counter)
    for frame in frames.values():
        if len(label_columns) > 1:
            continue
        for cell in ref_parse(schema, frame[label_columns[0]]):
            names = (cell.value,) if cell.form is Form.STRING else (
                cell.value if cell.form is Form.NAMES else ())
            for name in names:
                spellings[_norm(name)][name] += 1
    out = []
    for group in spellings.values():
        if len(group) > 1:
            ranked = group.most_common()
            listed = ", ".join(f"{_spelling(v)} ({n})" for v, n in ranked)
            out.append(Finding("LW106", "error", f"labels differ only by case, whitespace or "
                               f"Unicode form: {listed}",
                               Where(column=column, value=ranked[-1][0]),
                               f"map them to one spelling, e.g. {format_value(ranked[0][0])}"))
    return out


def ref_content_sha(frame: Any, columns: Sequence[str] | None = None) -> str:
    """``labelwise.data.io.content_sha`` as it was: pandas' hash of every cell's repr,
    through ``Series.map``. Saved models, runs and studies hold these values."""
    import hashlib

    import pandas as pd

    def cell(value: Any) -> str:
        if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
            value = value.tolist()
        return repr(value)

    columns = [str(c) for c in frame.columns] if columns is None else list(columns)
    digest = hashlib.sha256()
    digest.update(repr(list(columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.index.to_frame(), index=False).values.tobytes())
    for column in columns:
        text = frame[column].map(cell)
        digest.update(pd.util.hash_pandas_object(text, index=False).values.tobytes())
    return digest.hexdigest()[:16]

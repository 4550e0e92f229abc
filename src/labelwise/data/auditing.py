"""Audit every label problem before any weight is loaded.

Each check returns :class:`~labelwise.findings.Finding` objects with a stable code. The
codes are listed in the README's table of findings; a test feeds the bad input for each.
"""

from __future__ import annotations

import math
import os
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from labelwise.findings import Finding, Findings, Where, format_value
from labelwise.labels._cells import Form
from labelwise.labels.inference import Task, form_word
from labelwise.labels.schema import CodedLabels

__all__ = ["audit", "audit_frames", "rare_threshold", "SPLIT_WORDS", "text_key", "text_codes"]

SPLIT_WORDS = {"train": "train", "valid": "validation", "test": "test"}


def rare_threshold(n_rows: int) -> int:
    """A class is rare in train below ``max(10, ceil(0.5% of rows))`` rows."""
    return max(10, math.ceil(0.005 * n_rows))


def audit(data: Any) -> Findings:
    """Audit a :class:`~labelwise.data.loading.LoadedData`: every split, against its schema.

    Returns:
        :class:`Findings` (errors first). The findings noticed while loading (inference,
        carving) are included.
    """
    found = audit_frames(data.frames, text_column=data.text_column,
                         text_pair_column=data.text_pair_column,
                         label_columns=data.label_columns, schema=data.schema,
                         texts=data.text_codes,
                         labels={s: data.coded(s) for s in data.splits})
    return Findings([*data.findings, *found])


def audit_frames(
    frames: Mapping[str, Any],
    *,
    text_column: str,
    label_columns: Sequence[str],
    schema: Any = None,
    text_pair_column: str | None = None,
    texts: Mapping[str, np.ndarray] | None = None,
    labels: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Run every check on DataFrames; label checks need ``schema`` (text checks do not).

    ``texts`` holds the splits' :func:`text_codes` of the text column when already
    computed (one code space for all splits); ``labels`` their labels read through
    ``schema`` (``CodedLabels``), likewise."""
    out: list[Finding] = []
    indexes = {s: frame.index.to_numpy() for s, frame in frames.items()}
    if not texts or any(s not in texts or len(texts[s]) != len(f) for s, f in frames.items()):
        texts = text_codes({s: f[text_column] for s, f in frames.items()})
    for split, frame in frames.items():
        out.extend(_empty_texts(texts[split], indexes[split], text_column, split))
        if text_pair_column:
            pairs = text_codes({split: frame[text_pair_column]})[split]
            out.extend(_empty_texts(pairs, indexes[split], text_pair_column, split))
    out.extend(_leakage(texts, indexes, text_column))
    if schema is None:
        return out
    column = ",".join(label_columns)
    coded: dict[str, CodedLabels] = {}
    for split, frame in frames.items():
        given = (labels or {}).get(split)
        if given is not None and len(given.codes) == len(frame):
            coded[split] = given
        else:
            values = (frame[label_columns[0]] if len(label_columns) == 1
                      else frame[list(label_columns)])
            coded[split] = schema.code(values)
        ctx = _Ctx(split, column, indexes[split], coded[split], schema)
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
        out.extend(_conflicts(texts[split], frame[text_column], ctx))
    if schema.task is not Task.REGRESSION:
        out.extend(_coverage(coded, schema, column))
        if len(label_columns) == 1:
            out.extend(_variants(coded, column))
    return out


def text_key(value: Any) -> str | None:
    """The key two texts share when they are the same text: NFC Unicode form, runs of
    whitespace as one space, ends stripped (no tokenizer tells them apart). ``None`` for a
    missing or blank text. The conflict (LW109) and leakage (LW110) checks and the carving
    of validation all group texts by this key."""
    if not isinstance(value, str) and _missing(value):
        return None
    text = " ".join(unicodedata.normalize("NFC", str(value)).split())
    return text or None




def _missing(value: Any) -> bool:
    """A missing cell as pandas counts one: None, NaN, ``pd.NA``, ``NaT``."""
    import pandas as pd

    missing = pd.isna(value)
    return bool(missing) if isinstance(missing, bool | np.bool_) else False


# What str.split() splits on among ASCII characters; other texts take the exact path. Only
# a run of two or more, or one that is not a space, is replaced: a pattern that matched
# every single space would rewrite every word boundary (8x slower on ag_news).
_ASCII_SPACE = r"[\t\n\x0b\x0c\r\x1c-\x1f ]{2,}|[\t\n\x0b\x0c\r\x1c-\x1f]"
_RESPACE = _ASCII_SPACE + r"|^ | $"


# Rows per pyarrow pass when looking for texts that are not their own key: one chunk of
# Arrow copies is in memory at a time, not a copy of the whole column.
_SCAN_ROWS = 65536


def _text_values(values: Any) -> np.ndarray:
    """A text column as an object array of its strings (None/NaN for no text), without a
    copy of the strings. A column that is not all strings is keyed here (keys are their
    own key)."""
    import pandas as pd

    series = values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
    if len(series) and pd.api.types.infer_dtype(series, skipna=True) == "string":
        return series.to_numpy(dtype=object, na_value=None)
    return np.array([text_key(t) for t in series.tolist()] or [], dtype=object)


def _ascii_keys(arr: Any) -> Any:
    """:func:`text_key` of ASCII texts, on a whole array (null for a blank text)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    spaced = pc.utf8_trim(pc.replace_substring_regex(arr, _ASCII_SPACE, " "), characters=" ")
    return pc.if_else(pc.equal(spaced, ""), pa.scalar(None, pa.large_string()), spaced)


def _arrow_pieces(series: Any) -> list[Any] | None:
    """A text column as pandas holds it in Arrow, in pieces of at most ``_SCAN_ROWS`` rows
    (no copy), or ``None`` for a column held otherwise."""
    import pyarrow as pa

    to_arrow = getattr(getattr(series, "array", None), "__arrow_array__", None)
    native = to_arrow() if to_arrow is not None else None
    if native is None or not (pa.types.is_string(native.type)
                              or pa.types.is_large_string(native.type)):
        return None
    pieces: list[Any] = []
    for chunk in native.chunks:
        chunk = chunk.cast(pa.large_string())
        pieces += [chunk.slice(i, _SCAN_ROWS) for i in range(0, len(chunk), _SCAN_ROWS)]
    return pieces


def _copied_pieces(values: np.ndarray) -> list[Any]:
    import pyarrow as pa

    return [pa.array(values[i:i + _SCAN_ROWS], type=pa.large_string(), from_pandas=True)
            for i in range(0, len(values), _SCAN_ROWS)]


def _scan(arr: Any) -> tuple[np.ndarray, Any, np.ndarray]:
    """One piece's rows whose text is not its own key: ASCII ones with their keys (made by
    pyarrow, whole pieces at a time), and the others. pyarrow works without the GIL."""
    import pyarrow.compute as pc

    fix = pc.fill_null(pc.or_(pc.match_substring_regex(arr, _RESPACE), pc.equal(arr, "")),
                       False)
    other = pc.fill_null(pc.invert(pc.string_is_ascii(arr)), False)
    plain = pc.and_not(fix, other)
    return (np.flatnonzero(plain.to_numpy(zero_copy_only=False)),
            _ascii_keys(pc.filter(arr, plain)),
            np.flatnonzero(other.to_numpy(zero_copy_only=False)))


def text_codes(columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A code per row of each text column: two rows share a code exactly when
    :func:`text_key` calls them the same text, across all the columns given; -1 is a row
    without text.

    The conflict (LW109) and leakage (LW110) checks and the carving of validation read
    these codes (only which rows share one matters, not its number). Most texts are their
    own key (ASCII, single spaces, nothing at the ends). pyarrow finds, in threads, the
    texts that are not and writes the keys of the ASCII ones while pandas takes the texts
    out as Python strings; the others go through :func:`text_key`. Each such row's text is
    replaced by its key, and one ``pandas.factorize`` over all the columns gives the codes.
    """
    from concurrent.futures import ThreadPoolExecutor

    import pandas as pd

    if not columns:
        return {}
    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        parts: dict[str, Any] = dict.fromkeys(columns)  # in the columns' order
        pieces: list[Any] = []
        for name, series in columns.items():
            arrow = _arrow_pieces(series)
            if arrow is None:
                parts[name] = _text_values(series)
                arrow = _copied_pieces(parts[name])
            pieces += arrow
        scans = [pool.submit(_scan, p) for p in pieces]  # pyarrow, beside the copying out
        for name, series in columns.items():
            if parts[name] is None:
                parts[name] = _text_values(series)
        # a copy of the pointers: the keys go in below, and the column's own array is
        # the caller's
        values = np.concatenate(list(parts.values()))
        starts = np.cumsum([0] + [len(p) for p in pieces])
        for (plain, keys, other), at in zip((s.result() for s in scans), starts,
                                            strict=False):
            if len(plain):
                values[plain + at] = keys.to_numpy(zero_copy_only=False)
            if len(other):
                rows = other + at
                values[rows] = [text_key(t) for t in values[rows]]
    codes = pd.factorize(values, use_na_sentinel=True)[0].astype(np.int64, copy=False)
    out, start = {}, 0
    for name, part in parts.items():
        out[name] = codes[start:start + len(part)]
        start += len(part)
    return out


class _Ctx:
    """One split's labels read through the schema, with the checks that read only that
    split. Each check decides per distinct cell and finds its rows with numpy."""

    def __init__(self, split: str, column: str, index: np.ndarray, coded: CodedLabels,
                 schema: Any) -> None:
        self.split, self.column, self.index = split, column, index
        self.coded, self.schema = coded, schema
        self.cells = coded.cells

    def where(self, positions: Sequence[int], value: Any = None) -> Where:
        return Where.at(split=self.split, column=self.column,
                        rows=self.index[np.asarray(positions, dtype=np.int64)].tolist(),
                        value=value)

    def value_at(self, position: int) -> Any:
        return self.cells.uniques[self.cells.codes[position]].value

    def missing(self) -> list[Finding]:
        # [None, "pos", NaN, ""] -> missing label cells
        rows = self.cells.rows(lambda c: c.form is Form.MISSING)
        if not rows:
            return []
        return [Finding("LW107", "error", f"{len(rows)} row(s) have no label (NaN, None or "
                        "empty)", self.where(rows), "fill in the labels or drop those rows")]

    def forms(self) -> list[Finding]:
        # ints in train, strings in validation -> the form differs between splits
        wrong_u = [not self.schema.accepts(c.form) and c.form is not Form.MISSING
                   for c in self.cells.uniques]
        wrong = np.flatnonzero(self.cells.mask(wrong_u)).tolist()
        if not wrong:
            return []
        kinds: Counter = Counter()
        for cell, bad, rows in zip(self.cells.uniques, wrong_u, self.cells.counts().tolist(),
                                   strict=True):
            if bad:
                kinds[cell.form] += rows
        form = kinds.most_common(1)[0][0]
        return [Finding("LW111", "error", f"labels in {SPLIT_WORDS[self.split]} are "
                        f"{form_word(form)}, but the schema from train reads "
                        f"{self.schema.label_format.replace('_', ' ')}",
                        self.where(wrong, self.value_at(wrong[0])),
                        "write the labels of every split in one form")]

    def unfit(self) -> list[Finding]:
        """Cells of a compatible form that still do not fit: unseen classes, bad rows."""
        unseen: dict[Any, list[int]] = defaultdict(list)  # label -> unique cells
        not_one: list[bool] = []
        width: list[bool] = []
        for u, (cell, value) in enumerate(zip(self.cells.uniques, self.coded.canon,
                                              strict=True)):
            skip = (not isinstance(value, Exception) or cell.form is Form.MISSING
                    or not self.schema.accepts(cell.form))  # the last: reported by forms()
            if not skip and isinstance(value, KeyError):
                unseen[value.args[0]].append(u)
            other = not skip and not isinstance(value, KeyError)
            width.append(other and str(value) == "width")
            not_one.append(other and str(value) != "width")
        found = {label: self._rows_of(cells) for label, cells in unseen.items()}
        out = []
        for label, rows in sorted(found.items(), key=lambda kv: -len(kv[1])):
            level = "error"
            word = SPLIT_WORDS[self.split]
            out.append(Finding("LW102", level, f"label {format_value(label)} occurs in {word} "
                               f"({len(rows)} row(s)) but not in train",
                               self.where(rows, label), "fix the label (a typo?), or add "
                               "training examples of it, or drop those rows"))
        not_one_rows = np.flatnonzero(self.cells.mask(not_one)).tolist()
        if not_one_rows:
            out.append(Finding("LW112", "error", f"{len(not_one_rows)} row(s) hold zero or "
                               f"several labels, but the task is single-label "
                               f"{self.schema.task}",
                               self.where(not_one_rows, self.value_at(not_one_rows[0])),
                               "pass --task multilabel, or give each row exactly one label"))
        width_rows = np.flatnonzero(self.cells.mask(width)).tolist()
        if width_rows:
            out.append(Finding("LW113", "error", f"{len(width_rows)} row(s) have a width other "
                               f"than the schema's {self.schema.num_labels}",
                               self.where(width_rows, self.value_at(width_rows[0])),
                               "give every row one position per class"))
        return out

    def _rows_of(self, uniques: Sequence[int]) -> list[int]:
        return np.flatnonzero(np.isin(self.cells.codes, np.asarray(uniques))).tolist()

    def empty_sets(self) -> list[Finding]:
        # [] in a multilabel column -> allowed, counted
        rows = self.coded.rows_where(lambda _c, v: not isinstance(v, Exception) and v == ())
        if not rows:
            return []
        n = len(self.cells)
        share = len(rows) / max(n, 1)
        if share > 0.5:
            # most rows say "no label applies": a model that predicts nothing scores well
            return [Finding("LW108", "warning", f"{len(rows)} of {n} rows "
                            f"({share:.1%}) of {SPLIT_WORDS[self.split]} have an empty label "
                            "set: most of the split says 'no label applies'",
                            self.where(rows), "check the label column and the label "
                            "separator; drop or label those rows if they are not meant")]
        return [Finding("LW108", "info", f"{len(rows)} row(s) ({share:.1%}) have an empty "
                        "label set; they train as 'no label applies'", self.where(rows),
                        "nothing to do if that is meant; otherwise add their labels")]

    def regression(self) -> list[Finding]:
        out = []
        bad = self.coded.rows_where(lambda _c, v: not isinstance(v, Exception)
                                    and not all(math.isfinite(x) for x in v))
        if bad:
            out.append(Finding("LW125", "error", f"{len(bad)} regression target(s) are "
                               "infinite", self.where(bad, self.value_at(bad[0])),
                               "fix or drop those rows"))
        good = [v for v in self.coded.canon if not isinstance(v, Exception)]  # per unique
        if self.split == "train" and int(self.coded.fits().sum()) >= 2:
            for t, name in enumerate(self.schema.targets):
                if len({v[t] for v in good}) == 1:
                    out.append(Finding("LW126", "error", f"regression target '{name}' is "
                                       f"constant ({good[0][t]}) in train",
                                       Where(split="train", column=name),
                                       "check the column; a constant cannot be learned"))
        return out


def _conflicts(texts: np.ndarray, column: Any, ctx: _Ctx) -> list[Finding]:
    # the same text labelled 'pos' in one row and 'neg' in another
    if ctx.schema.task is Task.REGRESSION:
        return []
    label_ids: dict[Any, int] = {}  # equal labels (as a set sees them) share an id
    per_unique = np.array([-1 if isinstance(v, Exception) else
                           label_ids.setdefault(v, len(label_ids)) for v in ctx.coded.canon],
                          dtype=np.int64)
    labels = per_unique[ctx.cells.codes] if len(texts) else np.zeros(0, dtype=np.int64)
    ok = (texts >= 0) & (labels >= 0)
    if not ok.any():
        return []
    import pandas as pd

    pairs = pd.unique(texts[ok] * max(len(label_ids), 1) + labels[ok])
    per_text = np.bincount(pairs // max(len(label_ids), 1), minlength=int(texts.max()) + 1)
    clash = ok & (per_text[np.maximum(texts, 0)] > 1)
    positions = np.flatnonzero(clash)
    if not len(positions):
        return []
    n_clashes = len(pd.unique(texts[positions]))
    first_row = int(positions[0])
    first = text_key(column.iloc[first_row])
    mine = set(labels[positions[texts[positions] == texts[first_row]]].tolist())
    shown = sorted((v for v in label_ids if label_ids[v] in mine), key=str)
    return [Finding("LW109", "warning", f"{n_clashes} text(s) carry conflicting labels, "
                    f"e.g. {format_value(first[:60])} labelled "
                    + " and ".join(format_value(v) for v in shown),
                    ctx.where(positions.tolist()), "relabel or drop the conflicting rows")]


def _leakage(texts: Mapping[str, np.ndarray], indexes: Mapping[str, np.ndarray],
             column: str) -> list[Finding]:
    # a test text that also occurs in train -> leakage
    out = []
    order = [s for s in ("train", "valid", "test") if s in texts]
    for a_i, a in enumerate(order):
        for b in order[a_i + 1:]:
            size = int(max(texts[a].max(initial=-1), texts[b].max(initial=-1))) + 2
            seen = np.zeros(size, dtype=bool)  # by code; the slot -1 (no text) stays False
            seen[texts[a][texts[a] >= 0]] = True
            hit = seen[texts[b]]
            rows = indexes[b][hit].tolist()
            if rows:
                out.append(Finding(
                    "LW110", "warning", f"{len(rows)} text(s) of {SPLIT_WORDS[b]} also occur "
                    f"in {SPLIT_WORDS[a]} (leakage inflates {SPLIT_WORDS[b]} scores)",
                    Where.at(split=b, column=column, rows=rows),
                    f"drop those rows from {SPLIT_WORDS[b]}"))
    return out


def _empty_texts(codes: np.ndarray, index: np.ndarray, column: str, split: str
                 ) -> list[Finding]:
    rows = index[codes < 0].tolist()
    if not rows:
        return []
    return [Finding("LW117", "error", f"{len(rows)} row(s) have an empty or missing text",
                    Where.at(split=split, column=column, rows=rows),
                    "fill in the texts or drop those rows")]


def _coverage(coded: Mapping[str, CodedLabels], schema: Any, column: str) -> list[Finding]:
    multilabel = schema.task is Task.MULTILABEL
    counts = {split: c.class_counts(multilabel)[0] for split, c in coded.items()}
    out = []
    train = counts.get("train", Counter())
    n_train = len(coded["train"].cells) if "train" in coded else 0
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


def _variants(coded: Mapping[str, CodedLabels], column: str) -> list[Finding]:
    # "Positive" next to "positive", "pos " next to "pos", "café" in two Unicode forms
    spellings: dict[str, Counter] = defaultdict(Counter)
    for labels in coded.values():
        for cell, rows in zip(labels.uniques, labels.cells.counts().tolist(), strict=True):
            names = (cell.value,) if cell.form is Form.STRING else (
                cell.value if cell.form is Form.NAMES else ())
            for name in names:
                spellings[_norm(name)][name] += rows
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

"""From user inputs to labelled splits with one schema: ``load_splits``.

Order of work: read every split and check its columns; infer the schema from the training
labels; carve a validation split when none was given. Nothing here knows of models.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

from labelwise.errors import ConfigError, DataError
from labelwise.findings import Finding
from labelwise.data.io import (Table, check_columns, content_sha, mapped_column, read_table,
                               split_dataset_dict, type_label_cells)
from labelwise.labels.inference import infer_task
from labelwise.labels.schema import CodedLabels, LabelSchema
from labelwise.data.auditing import text_codes
from labelwise.data.split import CarveRecord, carve_validation

__all__ = ["LoadedData", "RawSplits", "load_splits", "read_splits", "frame_fingerprint"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class RawSplits:
    """Splits as read, before any label is interpreted."""

    tables: dict[str, Table]
    text_column: str
    text_pair_column: str | None
    label_columns: tuple[str, ...]

    def frame(self, split: str) -> Any:
        return self.tables[split].frame

    def labels(self, split: str) -> Any:
        frame = self.frame(split)
        if len(self.label_columns) == 1:
            return frame[self.label_columns[0]]
        return frame[list(self.label_columns)]


@dataclass(frozen=True)
class LoadedData:
    """Labelled splits that share one :class:`LabelSchema`.

    Attributes:
        frames: ``{"train": df, "valid": df, "test": df}`` (test optional). Each frame keeps
            the row numbers of the file it came from as its index.
        sources: Where each split came from.
        schema: The schema inferred from the training labels (before any carving).
        carve: How the validation split was carved, or ``None`` when it was given.
        findings: Findings noticed while inferring and carving (warnings and info).
    """

    frames: dict[str, Any]
    sources: dict[str, str]
    text_column: str
    text_pair_column: str | None
    label_columns: tuple[str, ...]
    schema: LabelSchema
    carve: CarveRecord | None = None
    findings: tuple[Finding, ...] = field(default=())
    # each split's text_codes of the text column, row for row (computed once, read by audit)
    text_codes: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # each split's labels read through the schema (CodedLabels), parsed once: :meth:`coded`
    label_codes: dict[str, CodedLabels] = field(default_factory=dict, repr=False,
                                                compare=False)
    _fingerprints: dict[str, str] = field(default_factory=dict, init=False, repr=False,
                                          compare=False)
    _mapped: set[str] = field(default_factory=set, init=False, repr=False, compare=False)

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(s for s in SPLITS if s in self.frames)

    def labels(self, split: str) -> Any:
        frame = self.frames[split]
        if len(self.label_columns) == 1:
            return frame[self.label_columns[0]]
        return frame[list(self.label_columns)]

    def coded(self, split: str, schema: LabelSchema | None = None) -> CodedLabels:
        """The split's labels read through the schema: parsed once, then kept. A carved
        split's are the rows of the whole training column parsed when the schema was
        inferred. Another ``schema`` (a saved model's) reads them anew."""
        if schema is not None and schema != self.schema:
            return schema.code(self.labels(split))
        got = self.label_codes.get(split)
        if got is None or len(got.codes) != len(self.frames[split]):
            got = self.label_codes[split] = self.schema.code(self.labels(split))
        return got

    def texts(self, split: str) -> list[str]:
        return [str(t) for t in self.frames[split][self.text_column].tolist()]

    def text_slices(self, split: str, column: str | None = None) -> Texts:
        """:meth:`texts` (of ``column``, default the text column) read a slice at a time:
        what tokenizing a large split iterates, without a Python string per row at once."""
        return Texts(self.frames[split][column or self.text_column])

    def map_texts(self, folder: Path, *, min_rows: int) -> tuple[str, ...]:
        """Hold the text columns of each split of at least ``min_rows`` rows memory-mapped
        from an Arrow file in ``folder`` (named by the split's fingerprint) instead of in
        the process's memory: what a long run keeps of a large training set. The values,
        index and dtype are unchanged; a column that cannot be mapped stays as it is.
        Returns the splits mapped."""
        import pyarrow as pa

        done = []
        columns = [self.text_column, *([self.text_pair_column] if self.text_pair_column
                                       else [])]
        for split in self.splits:
            frame = self.frames[split]
            if split in self._mapped or len(frame) < min_rows:
                continue
            key = self.fingerprint(split)
            mapped = {}
            for i, column in enumerate(columns):
                series = mapped_column(frame[column], folder / f"{key}-{i}.arrow")
                if series is not None:
                    mapped[column] = series
            if mapped:
                self.frames[split] = frame.assign(**mapped)
                self._mapped.add(split)
                done.append(split)
        if done:
            pa.default_memory_pool().release_unused()
        return tuple(done)

    def fingerprint(self, split: str) -> str:
        """The split's content hash (computed once: the frames are not changed)."""
        if split not in self._fingerprints:
            cols = [self.text_column,
                    *([self.text_pair_column] if self.text_pair_column else []),
                    *self.label_columns]
            self._fingerprints[split] = frame_fingerprint(self.frames[split], cols)
        return self._fingerprints[split]


class Texts(Sequence[str]):
    """A text column as ``str`` values (``str(value)``, as :meth:`LoadedData.texts`), read
    from the frame a slice at a time."""

    CHUNK = 8192

    def __init__(self, series: Any) -> None:
        self._series = series

    def __len__(self) -> int:
        return len(self._series)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [str(t) for t in self._series.iloc[index].tolist()]
        return str(self._series.iloc[index])

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), self.CHUNK):
            yield from self[start:start + self.CHUNK]


def frame_fingerprint(frame: Any, columns: Sequence[str]) -> str:
    """Stable hash of the named columns' content and the row index (16 hex digits)."""
    return content_sha(frame, columns)


def read_splits(
    *,
    train: Any,
    valid: Any = None,
    test: Any = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_columns: str | Sequence[str] = ("label",),
) -> RawSplits:
    """Read each split and check that the text and label columns exist.

    Raises:
        DataError: A file is missing or unreadable, or a column does not exist (the message
            lists the columns that do).
    """
    label_columns = (label_columns,) if isinstance(label_columns, str) else tuple(label_columns)
    if not label_columns:
        raise ConfigError("no label column named", fix="pass --label-column (one or more)")
    sources = {"train": train, "valid": valid, "test": test}
    if valid is None and test is None and hasattr(train, "keys") and not hasattr(train, "columns"):
        sources = {**dict.fromkeys(SPLITS), **split_dataset_dict(train)}
    tables: dict[str, Table] = {}
    for split in SPLITS:
        if sources[split] is None:
            continue
        table = read_table(sources[split], split=split,
                           text_columns=[text_column, *([text_pair_column] if text_pair_column
                                                        else [])])
        check_columns(table, [text_column], split=split, role="text")
        if text_pair_column:
            check_columns(table, [text_pair_column], split=split, role="text pair")
        check_columns(table, label_columns, split=split, role="label")
        tables[split] = type_label_cells(table, label_columns)
    return RawSplits(tables, text_column, text_pair_column, label_columns)


def excluded_rows(source: Any) -> dict[str, list[int]]:
    """Rows to leave out per split, from a CSV path, a DataFrame or a list of train rows."""
    import pandas as pd

    where = "exclude_rows"
    if isinstance(source, (str, Path)):
        where = f"file {source}"
        path = Path(source)
        if not path.is_file():
            raise DataError("the exclude_rows file does not exist", where=where,
                            fix="pass the CSV written by --label-errors-out, or a CSV with a "
                            "'row' column", code="LW143")
        frame = pd.read_csv(path)
    elif hasattr(source, "columns"):
        frame = source
    else:
        frame = pd.DataFrame({"row": list(source)})
    if "row" not in frame.columns:
        raise DataError(f"no 'row' column among {list(frame.columns)[:8]}", where=where,
                        fix="name the column of 0-based data rows 'row'", code="LW143")
    rows = pd.to_numeric(frame["row"], errors="coerce")
    bad = frame.index[rows.isna() | (rows < 0) | (rows != rows.round())]
    if len(bad):
        raise DataError(f"row {frame['row'].iloc[int(bad[0])]!r} is not a 0-based row number",
                        where=where, fix="list whole numbers from 0", code="LW143")
    splits = frame["split"].astype(str) if "split" in frame.columns else \
        pd.Series(["train"] * len(frame), index=frame.index)
    wrong = sorted(set(splits) - {"train", "valid"})
    if wrong:
        raise DataError(f"rows of split {wrong[0]!r} cannot be excluded", where=where,
                        fix="exclude train or valid rows only: the test split measures the "
                        "model as its users will meet it", code="LW143")
    return {s: sorted({int(r) for r in rows[splits == s]}) for s in ("train", "valid")
            if (splits == s).any()}


def exclude(raw: RawSplits, source: Any) -> RawSplits:
    """``raw`` without the rows ``source`` names (:func:`excluded_rows`)."""
    tables = dict(raw.tables)
    for split, rows in excluded_rows(source).items():
        if split not in tables:
            if split == "valid" and rows:
                raise DataError("rows of split 'valid' are excluded but no validation file "
                                "was given", where="exclude_rows",
                                fix="list a carved validation row under split 'train'",
                                code="LW143")
            continue
        table = tables[split]
        missing = sorted(set(rows) - set(table.frame.index.tolist()))
        if missing:
            raise DataError(f"row {missing[0]} is not in the {split} data ({len(table.frame)} "
                            "rows)", where=f"split '{split}', {table.source}",
                            fix="exclude rows of this file only", code="LW143")
        frame = table.frame.drop(index=rows)
        tables[split] = Table(frame, f"{table.source} ({len(rows)} row(s) excluded)",
                              table.path)
    return RawSplits(tables, raw.text_column, raw.text_pair_column, raw.label_columns)


def infer_from_raw(
    raw: RawSplits,
    *,
    task: str = "auto",
    classes: Sequence[Any] | None = None,
    label_sep: str | None = None,
    positive: Any = None,
) -> tuple[LabelSchema, list[Finding], CodedLabels]:
    """The schema of the training labels, the findings noticed on the way, and the
    training labels read through the schema (from the one parse inference made)."""
    columns = raw.label_columns
    values = raw.labels("train")
    inference = infer_task(values, column=columns[0] if len(columns) == 1 else list(columns),
                           task=task, classes=classes, label_sep=label_sep, positive=positive)
    schema = LabelSchema.from_inference(inference, columns=columns, label_sep=label_sep)
    coded = (schema.code_cells(inference.cells) if inference.cells is not None
             else schema.code(values))
    return schema, list(inference.findings), coded


def load_splits(
    *,
    train: Any,
    valid: Any = None,
    test: Any = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_columns: str | Sequence[str] = ("label",),
    task: str = "auto",
    classes: Sequence[Any] | None = None,
    label_sep: str | None = None,
    positive: Any = None,
    valid_size: float = 0.1,
    seed: int = 42,
    exclude_rows: Any = None,
) -> LoadedData:
    """Read the splits, infer one schema from the training labels, carve validation if absent.

    Args:
        train: Path (CSV, TSV, JSON, JSONL, Parquet), DataFrame, ``datasets.Dataset``, or a
            ``DatasetDict`` holding every split.
        valid: Optional validation split; when absent, ``valid_size`` of train is carved
            (stratified, seeded, recorded).
        test: Optional test split.
        text_column: Column holding the text.
        text_pair_column: Optional second text column for sentence pairs.
        label_columns: One label column, or several 0/1 or float columns.
        task: ``"auto"`` or the task.
        classes: Explicit class order.
        label_sep: Separator of delimited multilabel strings.
        positive: Positive class for binary tasks.
        valid_size: Share of train carved for validation when ``valid`` is absent.
        seed: Seed of the carve.
        exclude_rows: Rows to leave out before anything else (e.g. labels reviewed as
            wrong): a CSV path with a ``row`` column (and optionally ``split``: ``train`` or
            ``valid``; default ``train``), a DataFrame like it, or a list of train rows.
            Row numbers are 0-based data rows of that split's file.

    Raises:
        DataError: Unreadable input or unknown column, or an excluded row that the file
            does not have.
        LabelError: The training labels cannot make a schema.
    """
    if not 0.0 < valid_size < 1.0:
        raise ConfigError(f"valid_size must be a float in (0, 1). Got {valid_size!r} instead",
                          fix="pass a share such as 0.1")
    raw = read_splits(train=train, valid=valid, test=test, text_column=text_column,
                      text_pair_column=text_pair_column, label_columns=label_columns)
    if exclude_rows is not None:
        raw = exclude(raw, exclude_rows)
    schema, findings, coded = infer_from_raw(raw, task=task, classes=classes,
                                             label_sep=label_sep, positive=positive)
    frames = {split: table.frame for split, table in raw.tables.items()}
    sources = {split: table.source for split, table in raw.tables.items()}
    carve = None
    codes = text_codes({s: f[text_column] for s, f in frames.items()})
    labels = {"train": coded}
    if "valid" not in frames:
        targets, fits = schema.encode_coded_lenient(coded)
        whole, texts = frames["train"], codes["train"]
        frames["train"], frames["valid"], carve, more = carve_validation(
            whole, targets, schema=schema, valid_size=valid_size, seed=seed,
            eligible=fits, texts=texts)
        for s in ("train", "valid"):
            rows = whole.index.get_indexer(frames[s].index)
            codes[s], labels[s] = texts[rows], coded.take(rows)
        sources["valid"] = f"{sources['train']} (carved, seed {seed})"
        findings.extend(more)
    ordered = {s: frames[s] for s in SPLITS if s in frames}
    sources = {s: sources[s] for s in SPLITS if s in sources}
    return LoadedData(ordered, sources, text_column, text_pair_column, raw.label_columns,
                      schema, carve, tuple(findings), codes, labels)

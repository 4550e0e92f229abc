"""Reading a file in chunks of rows, parsed exactly as :func:`labelwise.data.io.read_table`
reads it whole.

A chunk reader sees one chunk at a time, so its type inference sees one chunk at a time: a
column of numbers with one empty cell in row 90,000 is ``float64`` to ``read_table`` but
``int64`` in every chunk before it. :func:`scan` therefore reads the file once first (cheap:
parsing, no model) and merges each column's type over all chunks, the way pandas would over
the whole file; :func:`iter_chunks` then reads every chunk with those types. Text columns are
read as written (``"NA"``, ``"None"`` and ``"007"`` stay strings), and only an empty cell is
missing, as in ``read_table``.

CSV and TSV go through pandas' chunked reader with ``read_table``'s options, JSONL is decoded
line by line with ``read_table``'s decoder (a bad line named by its number, a key written
twice refused), Parquet through :meth:`pyarrow.parquet.ParquetFile.iter_batches`. A JSON file
(one list of records) cannot be read in parts: it is read whole and cut into chunks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.data.io import (
    _DECODER,
    _DuplicateKey,
    _header,
    path_kind,
    read_table,
    refuse_duplicate_columns,
    unreadable,
)
from labelwise.errors import DataError

__all__ = ["FileScan", "file_kind", "scan", "iter_chunks"]


@dataclass(frozen=True)
class FileScan:
    """What a first pass over a file found: its rows, columns and each column's type over
    the whole file."""

    rows: int
    columns: tuple[str, ...]
    dtypes: dict[str, Any]


def file_kind(path: str | Path, *, split: str = "input") -> str:
    """``csv``, ``tsv``, ``json``, ``jsonl`` or ``parquet`` for a readable data file.

    Raises:
        DataError: The file is missing, a folder, or of an unknown type.
    """
    path = Path(path)
    kind = path_kind(path, split)
    if kind in ("json", "jsonl"):  # a JSON list of records, whatever the suffix says
        with path.open("rb") as f:
            head = f.read(4096).decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")
        kind = "json" if head.startswith("[") else "jsonl"
    return kind


def _merge(a: Any, b: Any) -> Any:
    """The type pandas gives a column whose parts have types ``a`` and ``b``."""
    import numpy as np

    if a is None or a == b:
        return b
    if {a.kind, b.kind} <= {"i", "u", "f"}:
        return np.dtype("float64")
    return np.dtype(object)


def scan(path: str | Path, *, chunk_rows: int, text_columns: Sequence[str] = (),
         split: str = "input", on_chunk: Any = None) -> FileScan:
    """Read ``path`` once in chunks: its row count, columns and whole-file column types.
    ``on_chunk(frame, start)`` sees every chunk with the offset of its first row."""
    rows = 0
    columns: dict[str, None] = {}
    dtypes: dict[str, Any] = {}
    for frame in iter_chunks(path, chunk_rows=chunk_rows, text_columns=text_columns,
                             split=split):
        for name in frame.columns:
            columns.setdefault(str(name), None)
            dtypes[str(name)] = _merge(dtypes.get(str(name)), frame[name].dtype)
        if on_chunk is not None:
            on_chunk(frame, rows)
        rows += len(frame)
    return FileScan(rows, tuple(columns), dtypes)


def iter_chunks(path: str | Path, *, chunk_rows: int, text_columns: Sequence[str] = (),
                split: str = "input", scanned: FileScan | None = None
                ) -> Iterator[Any]:
    """DataFrames of up to ``chunk_rows`` rows, in file order (at least one, maybe empty).
    With ``scanned`` (from :func:`scan`), every chunk has the whole file's columns and
    column types, so the chunks together are the frame ``read_table`` reads.

    Raises:
        DataError: The file cannot be read, or a line or row is not valid in its format.
    """
    path = Path(path)
    kind = file_kind(path, split=split)
    chunks = _chunks(path, kind, chunk_rows, text_columns, split, scanned)
    first = True
    try:
        for frame in chunks:
            if scanned is not None:
                frame = _conform(frame, scanned)
            first = False
            yield frame
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise unreadable(exc, path, split, kind) from None
    if first:  # no rows: one empty frame with the file's columns
        yield _empty(path, kind, scanned)


def _empty(path: Path, kind: str, scanned: FileScan | None) -> Any:
    import pandas as pd

    if scanned is not None:
        return pd.DataFrame({c: pd.Series([], dtype=scanned.dtypes.get(c, object))
                             for c in scanned.columns})
    if kind in ("csv", "tsv"):
        return pd.DataFrame(columns=_header(path, kind))
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.read_schema(path).empty_table().to_pandas()
    return pd.DataFrame()


def _conform(frame: Any, scanned: FileScan) -> Any:
    """``frame`` with the whole file's columns (JSONL: a key only later records have) and
    column types (an int column with a gap elsewhere is float here too)."""
    if tuple(str(c) for c in frame.columns) != scanned.columns:
        frame = frame.reindex(columns=list(scanned.columns))
    changed = {c: t for c, t in scanned.dtypes.items()
               if c in frame.columns and frame[c].dtype != t
               and not (t == object and frame[c].dtype.kind == "O")}
    return frame.astype(changed) if changed else frame


def _csv_dtypes(header: Sequence[str], text_columns: Sequence[str],
                scanned: FileScan | None) -> dict[str, Any]:
    types: dict[str, Any] = {c: str for c in text_columns if c in header}
    if scanned is None:
        return types
    for name, dtype in scanned.dtypes.items():
        if name in types:
            continue
        if dtype.kind in "iufb":
            types[name] = dtype
        else:  # a column pandas reads as text over the whole file: every cell as written
            types[name] = str
    return types


def _chunks(path: Path, kind: str, chunk_rows: int, text_columns: Sequence[str], split: str,
            scanned: FileScan | None) -> Iterator[Any]:
    import pandas as pd

    if kind in ("csv", "tsv"):
        header = _header(path, kind)
        refuse_duplicate_columns(header, source=str(path), split=split)
        options: dict[str, Any] = {"keep_default_na": False, "na_values": [""],
                                   "dtype": _csv_dtypes(header, text_columns, scanned),
                                   "chunksize": chunk_rows}
        if kind == "tsv":
            options.update(sep="\t", quoting=3)
        with pd.read_csv(path, **options) as reader:
            yield from reader
    elif kind == "jsonl":
        yield from _jsonl_chunks(pd, path, chunk_rows, split)
    elif kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        refuse_duplicate_columns(pq.read_schema(path).names, source=str(path), split=split)
        with pq.ParquetFile(path) as f:
            for batch in f.iter_batches(batch_size=chunk_rows):
                yield pa.Table.from_batches([batch]).to_pandas()
    else:  # one JSON list: read whole, handed out in chunks
        frame = read_table(path, split=split, text_columns=text_columns).frame
        for start in range(0, len(frame), chunk_rows):
            yield frame.iloc[start:start + chunk_rows]


def _jsonl_chunks(pd: Any, path: Path, chunk_rows: int, split: str) -> Iterator[Any]:
    records: list[dict[str, Any]] = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, start=1):
            line = raw.decode("utf-8")
            if number == 1:
                line = line.lstrip("\ufeff")
            if not line.strip():
                continue
            try:
                record = _DECODER.decode(line)
            except _DuplicateKey as dup:
                raise DataError(f"the {split} split has the key '{dup.args[0]}' twice in one "
                                "record", where=f"file {path}, line {number}",
                                fix="rename or drop one of them", code="LW410") from None
            except json.JSONDecodeError as exc:
                raise DataError(f"cannot read {split} file as JSONL: line {number} is not "
                                f"JSON ({exc.msg}, column {exc.colno})",
                                where=f"file {path}, line {number}",
                                fix="fix or drop that line", code="LW413") from None
            if not isinstance(record, dict):
                raise DataError(f"cannot read {split} file as JSONL: line {number} is not a "
                                "record", where=f"file {path}, line {number}",
                                fix='write one {"text": ..., "label": ...} object per line',
                                code="LW413")
            records.append(record)
            if len(records) == chunk_rows:
                yield pd.DataFrame.from_records(records)
                records = []
    if records:
        yield pd.DataFrame.from_records(records)

"""Loading labelled tables: CSV, TSV, JSON / JSONL, Parquet, pandas, ``datasets``.

Reading knows nothing of tasks: it returns pandas DataFrames and checks that the named
columns exist. Row numbers in every message are the DataFrame index of the split as read
(0-based data rows), and carving a validation split keeps them.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import errno
import json
import os
import re
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.errors import DataError

__all__ = ["Table", "read_table", "split_dataset_dict", "check_columns", "SUFFIXES",
           "type_label_cells", "refuse_duplicate_columns",
           "in_memory", "describe_data", "content_sha", "is_data_path", "rows_where",
           "mapped_column"]

SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
}
VALID_NAMES = ("validation", "valid", "val", "dev")


def rows_where(frame: Any, mask: Any) -> Any:
    """``frame[mask]`` (a boolean row mask; the index is kept), with each Arrow-backed
    column (pandas' strings) filtered by pyarrow chunk by chunk. pandas' own boolean
    indexing joins the chunks of such a column first: on a 1M-row ag_news frame it held
    600 MB more at its peak and took 10x as long."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    keep = np.asarray(mask, dtype=bool)
    index = frame.index[keep]
    flags = pa.array(keep)
    columns = {}
    for name in frame.columns:
        values = frame[name].array
        if isinstance(values, pd.arrays.ArrowExtensionArray):
            picked = pd.array(pc.filter(values.__arrow_array__(), flags), dtype=values.dtype)
            columns[name] = pd.Series(picked, index=index, name=name, copy=False)
        else:
            columns[name] = frame[name][keep]
    return pd.DataFrame(columns, index=index, columns=frame.columns, copy=False)


def mapped_column(series: Any, path: Path) -> Any | None:
    """``series`` (an Arrow-backed column: pandas' strings) read back from an Arrow file at
    ``path``, memory-mapped: the same values, index, name and dtype, held in the page
    cache (which the OS can drop and read again) instead of the process's own memory.

    The file is written when missing (a temporary file beside it, then one rename, so a
    crash leaves no partial file) and reused when present, but only if its values equal
    ``series``' exactly. ``None`` when the column is not Arrow-backed or the file cannot
    be written or read (the caller keeps ``series``)."""
    import pandas as pd
    import pyarrow as pa

    values = series.array
    if not isinstance(values, pd.arrays.ArrowExtensionArray):
        return None
    held = values.__arrow_array__()
    if isinstance(held, pa.Array):
        held = pa.chunked_array([held], type=held.type)

    def read() -> Any | None:
        try:
            table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
        except (OSError, pa.ArrowException):
            return None
        if table.num_columns != 1 or not table.column(0).equals(held):
            return None
        return table.column(0)

    mapped = read() if path.exists() else None
    if mapped is None:
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(tmp), "wb") as sink, \
                    pa.ipc.new_file(sink, pa.schema([("values", held.type)])) as writer:
                writer.write_table(pa.table({"values": held}))
            os.replace(tmp, path)
        except (OSError, pa.ArrowException):
            return None
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        mapped = read()
        if mapped is None:
            return None
    return pd.Series(pd.array(mapped, dtype=values.dtype), index=series.index,
                     name=series.name, copy=False)


@dataclass(frozen=True)
class Table:
    """One split as read: its frame and where it came from (a path or a container name)."""

    frame: Any  # pandas.DataFrame
    source: str
    path: Path | None = None


def _is_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets") and type(obj).__name__ == "Dataset"


def _is_dataset_dict(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets") and "DatasetDict" in type(obj).__name__


def _dataset_to_frame(ds: Any) -> Any:
    """A ``datasets.Dataset`` as a DataFrame, ``ClassLabel`` ids turned into their names."""
    frame = ds.to_pandas()
    for name, feature in ds.features.items():
        kind = type(feature).__name__
        inner = getattr(feature, "feature", None)
        if kind == "ClassLabel":
            names = feature.names
            frame[name] = [names[i] if i is not None and i >= 0 else None for i in frame[name]]
        elif kind in ("Sequence", "List", "LargeList") and type(inner).__name__ == "ClassLabel":
            names = inner.names
            frame[name] = [[names[i] for i in row] if row is not None else None
                           for row in frame[name]]
    return frame


def _is_records(obj: Any) -> bool:
    return isinstance(obj, (list, tuple)) and bool(obj) and all(isinstance(r, Mapping)
                                                               for r in obj)


def in_memory(obj: Any) -> bool:
    """A split given as data rather than a path: a DataFrame, a ``datasets.Dataset`` or
    ``DatasetDict``, or a list of dicts (one per row)."""
    return (type(obj).__name__ == "DataFrame" and type(obj).__module__.startswith("pandas")
            or _is_dataset(obj) or _is_dataset_dict(obj) or _is_records(obj))


def is_data_path(value: Any) -> bool:
    """A path whose suffix is a data file's (CSV, TSV, JSON, JSONL, Parquet)."""
    return isinstance(value, (str, Path)) and Path(value).suffix.lower() in SUFFIXES


def _cell(value: Any) -> str:
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # a list cell read back from Parquet is an array
    return repr(value)


def content_sha(frame: Any, columns: Sequence[str] | None = None) -> str:
    """Stable hash of the row index and the named columns' content (16 hex digits)."""
    import hashlib

    import pandas as pd

    columns = [str(c) for c in frame.columns] if columns is None else list(columns)
    digest = hashlib.sha256()
    digest.update(repr(list(columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame.index.to_frame(), index=False).values.tobytes())
    for column in columns:
        values = frame[column]
        # a slice at a time: each row's hash depends on its cell alone, so the bytes are
        # those of the whole column, without a repr string of every cell at once
        for start in range(0, len(values), _SHA_ROWS):
            digest.update(_cell_hashes(values.iloc[start:start + _SHA_ROWS]).tobytes())
    return digest.hexdigest()[:16]


def _cell_hashes(values: Any) -> Any:
    """pandas' 64-bit hash of each cell's repr. Strings and numpy numbers are Python
    ``str``/``int``/``float``/``bool`` in ``tolist()``, whose repr is the cell's own; any
    other column goes cell by cell through ``_cell``. Every repr is a non-missing string,
    so hashing them uncategorized gives what ``hash_pandas_object`` gives, without
    factorizing a million distinct texts first."""
    import numpy as np
    import pandas as pd

    dtype = values.dtype
    if isinstance(dtype, pd.StringDtype) or (isinstance(dtype, np.dtype)
                                             and dtype.kind in "biufO"):
        cells = values.tolist()
        reprs = list(map(_cell if dtype == object else repr, cells))
    else:
        reprs = values.map(_cell).tolist()
    return pd.util.hash_array(np.array(reprs, dtype=object), categorize=False)


_SHA_ROWS = 65536


def describe_data(obj: Any) -> str:
    """``DataFrame, 8,000 rows, sha 1a2b...``: in-memory data as a config or a model
    records it (a path as it is)."""
    if isinstance(obj, (str, Path)):
        return str(obj)
    if _is_dataset_dict(obj):
        parts = ", ".join(f"{name}: {describe_data(ds)}" for name, ds in obj.items())
        return f"DatasetDict ({parts})"
    frame = _as_frame(obj)
    return f"{type(obj).__name__}, {len(frame):,} rows, sha {content_sha(frame)}"


def _as_frame(obj: Any) -> Any:
    import pandas as pd

    if isinstance(obj, pd.DataFrame):
        return obj
    if _is_dataset(obj):
        return _dataset_to_frame(obj)
    if _is_records(obj):
        return pd.DataFrame.from_records(list(obj))
    raise TypeError(type(obj).__name__)


def read_table(source: Any, *, split: str = "train", text_columns: Sequence[str] = ()
               ) -> Table:
    """Read one split from a path, a pandas DataFrame, a ``datasets.Dataset`` or a list of
    dicts (one per row).

    ``text_columns`` of a CSV or TSV file are read as written: pandas would read a text
    column of digits (``007``) as numbers (``7``).

    Raises:
        DataError: The path does not exist, its suffix is unknown, or it cannot be parsed.
    """
    if _is_dataset_dict(source):
        raise DataError(f"the {split} split is a DatasetDict, not one split",
                        fix=f"pass train=the DatasetDict alone, or pass dd['{split}']")
    if in_memory(source):
        frame = _as_frame(source)
        refuse_duplicate_columns([str(c) for c in frame.columns],
                                 source=f"<{type(source).__name__} {split}>", split=split)
        return Table(frame, f"{type(source).__name__}, {len(frame):,} rows, sha "
                     f"{content_sha(frame)}")
    if isinstance(source, (list, tuple)):
        raise DataError(f"the {split} split is a list, but not of dicts (one per row)",
                        fix="pass a list of {column: value} dicts, or a DataFrame")
    if not isinstance(source, (str, Path)):
        raise DataError(f"cannot read the {split} split from a {type(source).__name__}",
                        fix="pass a file path, a pandas DataFrame, a datasets.Dataset or a "
                        "list of dicts")
    path = Path(source)
    text = str(source)
    if text.startswith("<") and text.endswith(">") and not path.exists():
        raise DataError(f"the {split} split was in-memory data when this config was saved "
                        f"({text[1:-1]}); the config records it, but not its rows",
                        fix=f"pass the data again with --{split}", code="LW409")
    kind = path_kind(path, split)
    import pandas as pd

    try:
        frame = _read_path(pd, path, kind, split, text_columns)
    except DataError:
        raise
    except (ValueError, OSError) as exc:
        raise unreadable(exc, path, split, kind) from None
    return Table(frame, str(path), path)


def path_kind(path: Path, split: str) -> str:
    """The kind of a data file by its suffix (``csv``, ``tsv``, ``json``, ``jsonl``,
    ``parquet``), after checking that it is a reachable file.

    Raises:
        DataError: The file is missing, a symlink loop, a folder, or of an unknown type.
    """
    _check_reachable(path, split)
    if path.is_dir():
        raise DataError(f"{split} path is a directory", where=f"file {path}",
                        fix="name a .csv, .tsv, .jsonl, .json or .parquet file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unknown file type '{path.suffix}'", where=f"file {path}",
                        fix=f"use one of {', '.join(sorted(SUFFIXES))}")
    return kind


def unreadable(exc: Exception, path: Path, split: str, kind: str) -> DataError:
    """The error for a file its parser gave up on: not UTF-8, or not valid as its kind."""
    if isinstance(exc, UnicodeDecodeError):
        return _not_utf8(path, split)
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return DataError(f"cannot read {split} file as {kind.upper()}: {reason}",
                     where=f"file {path}", fix=f"check that it is valid {kind.upper()}")


def _check_reachable(path: Path, split: str) -> None:
    """A missing file, a dangling symlink and a symlink loop, each said as what it is."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{split} path is a symlink loop", where=f"file {path}",
                            fix="point the link at a real file", code="LW411") from None
        if path.is_symlink():
            raise DataError(f"{split} path is a symlink to a missing file "
                            f"({os.readlink(path)})", where=f"file {path}",
                            fix="point the link at a real file", code="LW411") from None
        if exc.errno == errno.ENOENT:
            raise DataError(f"{split} file not found", where=f"file {path}",
                            fix="check the path") from None
        raise DataError(f"cannot open {split} file: {exc.strerror}", where=f"file {path}",
                        fix="check the path and its permissions") from None


def _not_utf8(path: Path, split: str) -> DataError:
    """Where the first byte that is not UTF-8 is: line and column, not a buffer offset."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
        detail = ""
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        detail = f", line {line}, column {column}, byte 0x{data[exc.start]:02x}"
    return DataError(f"{split} file is not UTF-8 text", where=f"file {path}{detail}",
                     fix="re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8, or 'Save as "
                     "CSV UTF-8')", code="LW412")


def _header(path: Path, kind: str) -> list[str]:
    """The header row as written (pandas would rename a repeated name to ``name.1``)."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        if kind == "tsv":  # read with quoting off, as the table is
            return f.readline().rstrip("\r\n").split("\t")
        return next(csv.reader(f), [])


def refuse_duplicate_columns(names: Sequence[Any], *, source: str, split: str) -> None:
    """Two columns of one name: pandas would rename the second (``label.1``) silently."""
    seen: dict[str, int] = {}
    for i, name in enumerate(str(n) for n in names):
        if name in seen:
            raise DataError(f"the {split} split has two columns named '{name}' (columns "
                            f"{seen[name] + 1} and {i + 1})", where=f"file {source}",
                            fix="rename or drop one of them", code="LW410")
        seen[name] = i


class _DuplicateKey(Exception):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        raise _DuplicateKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return out


_DECODER = json.JSONDecoder(object_pairs_hook=_pairs)


def _read_json_records(pd: Any, path: Path, split: str, text: str) -> Any:
    """JSON / JSONL read with the standard library, so a bad line is named by its number
    and a key written twice in one record is an error, not a silently kept last value.
    A file that starts with ``[`` is one JSON list of records; otherwise one per line."""
    lines = not text.lstrip().startswith("[")
    number: int | None = None
    try:
        if not lines:
            records = _DECODER.decode(text)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise DataError(f"the {split} JSON file is not a list of records",
                                where=f"file {path}", fix='write [{"text": ..., "label": '
                                '...}, ...], or one record per line (JSONL)', code="LW413")
        else:
            records = []
            for number, line in enumerate(text.splitlines(), start=1):  # noqa: B007
                if not line.strip():
                    continue
                record = _DECODER.decode(line)
                if not isinstance(record, dict):
                    raise DataError(f"cannot read {split} file as JSONL: line {number} is "
                                    "not a record", where=f"file {path}, line {number}",
                                    fix='write one {"text": ..., "label": ...} object per '
                                    "line", code="LW413")
                records.append(record)
    except _DuplicateKey as dup:
        at = f", line {number}" if number is not None else ""
        raise DataError(f"the {split} split has the key '{dup.args[0]}' twice in one record",
                        where=f"file {path}{at}", fix="rename or drop one of them",
                        code="LW410") from None
    except json.JSONDecodeError as exc:
        if number is None:
            raise DataError(f"cannot read {split} file as JSON: {exc.msg}",
                            where=f"file {path}, line {exc.lineno}, column {exc.colno}",
                            fix="check that it is valid JSON", code="LW413") from None
        raise DataError(f"cannot read {split} file as JSONL: line {number} is not JSON "
                        f"({exc.msg}, column {exc.colno})", where=f"file {path}, line "
                        f"{number}", fix="fix or drop that line", code="LW413") from None
    return pd.DataFrame.from_records(records) if records else pd.DataFrame()


def _read_path(pd: Any, path: Path, kind: str, split: str, text_columns: Sequence[str]
               ) -> Any:
    # Only an empty cell is missing: pandas' default NA strings would turn a text that reads
    # "None" or "NA" (EmoBank has one) into a missing value.
    if kind in ("csv", "tsv"):
        header = _header(path, kind)
        refuse_duplicate_columns(header, source=str(path), split=split)
        options = {"keep_default_na": False, "na_values": [""]}
        if kind == "tsv":
            options.update(sep="\t", quoting=3)
        # A column read as strings is as written. Naming its dtype up front costs pandas a
        # slow path (6x on a million rows), so only a text column pandas read as numbers,
        # bools or a mix of them is read again, as strings.
        with warnings.catch_warnings():  # a mixed column is read again below
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            frame = pd.read_csv(path, **options)
        typed = [c for c in text_columns if c in header and not _as_written(pd, frame[c])]
        if typed:
            again = pd.read_csv(path, usecols=typed, dtype=dict.fromkeys(typed, str),
                                **options)
            for column in typed:
                frame[column] = again[column]
        return frame
    if kind in ("jsonl", "json"):
        return _read_json_records(pd, path, split, path.read_text(encoding="utf-8-sig"))
    import pyarrow.parquet as pq  # parquet needs pyarrow, a pandas dependency here

    refuse_duplicate_columns(pq.read_schema(path).names, source=str(path), split=split)
    return pq.read_table(path).to_pandas()


def _as_written(pd: Any, column: Any) -> bool:
    """Whether pandas read a CSV column as the strings in the file (or empty cells)."""
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in (
        "string", "empty")


def type_label_cells(table: Table, columns: Sequence[str]) -> Table:
    """CSV and TSV cells have no types: read a label cell that is a number as that number.

    JSON keeps ``0`` and ``"neutral"`` apart; a CSV column ``0, 1, neutral`` is three strings
    to pandas. Typing the label cells the way JSON would (``0`` an int, ``2.5`` a float,
    ``true`` a bool) gives both files one verdict: LW118, a column mixing forms. Text
    columns are read as text (``read_table(text_columns=...)``) and never typed.
    """
    kind = SUFFIXES.get(table.path.suffix.lower()) if table.path is not None else None
    if kind not in ("csv", "tsv"):
        return table
    import pandas as pd

    frame = table.frame
    typed: dict[str, Any] = {}
    for column in columns:
        values = frame[column]
        if values.dtype.kind in "biuf":  # already numbers (or bools)
            continue
        try:  # a column of numbers only: int64, or float64 with gaps, as pandas reads it
            typed[column] = pd.to_numeric(values)
            continue
        except (ValueError, TypeError):
            pass
        mapping = {v: _typed(v) for v in values.dropna().unique() if isinstance(v, str)}
        if any(type(t) is not str for t in mapping.values()):
            # bools -> bool; ints next to words -> object (LW118 then names the rows)
            cells = [mapping.get(v, v) if isinstance(v, str) else v for v in values.tolist()]
            typed[column] = pd.Series(cells, index=frame.index, dtype=object).infer_objects()
    if not typed:
        return table
    frame = frame.copy()
    for column, series in typed.items():
        frame[column] = series
    return Table(frame, table.source, table.path)


_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
          "false": False}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")


def _typed(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text in _BOOLS:  # pandas' own true/false words
        return _BOOLS[text]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return value


def split_dataset_dict(dd: Mapping[str, Any]) -> dict[str, Any]:
    """``{"train": ..., "valid": ..., "test": ...}`` from a ``DatasetDict``'s split names."""
    out: dict[str, Any] = {}
    if "train" not in dd:
        raise DataError(f"the DatasetDict has no 'train' split (it has {sorted(dd)})",
                        fix="rename a split to 'train' or pass the splits one by one")
    out["train"] = dd["train"]
    for name in VALID_NAMES:
        if name in dd:
            out["valid"] = dd[name]
            break
    if "test" in dd:
        out["test"] = dd["test"]
    return out


def check_columns(table: Table, columns: Sequence[str], *, split: str, role: str) -> None:
    """Raise a :class:`DataError` that lists the columns that exist when one is missing."""
    have = [str(c) for c in table.frame.columns]
    for column in columns:
        if column not in table.frame.columns:
            close = difflib.get_close_matches(column, have, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise DataError(
                f"{role} column '{column}' not found in the {split} split",
                where=f"file {table.source}; columns: {', '.join(have)}",
                fix=f"{hint}pass --{role.replace(' ', '-')}-column with one of the columns",
                code="LW402",
            )

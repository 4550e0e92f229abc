"""Loading labelled tables: CSV, TSV, JSON / JSONL, Parquet, pandas, ``datasets``.

Reading knows nothing of tasks: it returns pandas DataFrames and checks that the named
columns exist. Row numbers in every message are the DataFrame index of the split as read
(0-based data rows), and carving a validation split keeps them.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.errors import DataError

__all__ = ["Table", "read_table", "split_dataset_dict", "check_columns", "SUFFIXES",
           "in_memory", "describe_data", "content_sha", "is_data_path"]

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
        text = frame[column].map(_cell)
        digest.update(pd.util.hash_pandas_object(text, index=False).values.tobytes())
    return digest.hexdigest()[:16]


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


def read_table(source: Any, *, split: str = "train") -> Table:
    """Read one split from a path, a pandas DataFrame, a ``datasets.Dataset`` or a list of
    dicts (one per row).

    Raises:
        DataError: The path does not exist, its suffix is unknown, or it cannot be parsed.
    """
    if _is_dataset_dict(source):
        raise DataError(f"the {split} split is a DatasetDict, not one split",
                        fix=f"pass train=the DatasetDict alone, or pass dd['{split}']")
    if in_memory(source):
        frame = _as_frame(source)
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
    if not path.exists():
        raise DataError(f"{split} file not found", where=f"file {path}",
                        fix="check the path")
    if path.is_dir():
        raise DataError(f"{split} path is a directory", where=f"file {path}",
                        fix="name a .csv, .tsv, .jsonl, .json or .parquet file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"unknown file type '{path.suffix}'", where=f"file {path}",
                        fix=f"use one of {', '.join(sorted(SUFFIXES))}")
    import pandas as pd

    try:
        frame = _read_path(pd, path, kind)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"cannot read {split} file as {kind.upper()}: {reason}",
                        where=f"file {path}", fix=f"check that it is valid {kind.upper()}"
                        ) from None
    return Table(frame, str(path), path)


def _read_path(pd: Any, path: Path, kind: str) -> Any:
    # Only an empty cell is missing: pandas' default NA strings would turn a text that reads
    # "None" or "NA" (EmoBank has one) into a missing value.
    if kind == "csv":
        return pd.read_csv(path, keep_default_na=False, na_values=[""])
    if kind == "tsv":
        return pd.read_csv(path, sep="\t", quoting=3, keep_default_na=False, na_values=[""])
    if kind == "jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if kind == "json":
        text = path.read_text(encoding="utf-8").lstrip()
        return pd.read_json(path, lines=not text.startswith("["), dtype=False)
    import pyarrow.parquet as pq  # parquet needs pyarrow, a pandas dependency here

    return pq.read_table(path).to_pandas()


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

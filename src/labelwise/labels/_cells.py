"""Parse label cells of any common form into one small vocabulary of forms.

Each cell becomes a :class:`Cell` with a :class:`Form`. Parsing is pure and knows no task:
task inference (``labels.py``), encoding (``schema.py``) and the audit (``audit.py``) all read
cells through this one function, so they can never disagree about what a cell holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from itertools import chain
from operator import attrgetter
from typing import Any

import numpy as np

__all__ = ["Form", "Cell", "CellColumn", "parse_cell", "parse_column", "parse_columns",
           "column_values"]


class Form(str, Enum):
    """What one label cell holds, independent of any task."""

    MISSING = "missing"  # None, NaN, pd.NA, "" or only whitespace
    BOOL = "bool"  # True
    INT = "int"  # 3
    INTEGRAL_FLOAT = "integral_float"  # 1.0
    FLOAT = "float"  # 3.25
    STRING = "string"  # "positive"
    NAMES = "names"  # ["joy", "anger"], '["joy"]', "joy|anger" with label_sep="|"
    EMPTY_LIST = "empty_list"  # [] or "[]"
    INDICATOR = "indicator"  # [0, 1, 1] (0/1 or bools)
    VECTOR = "vector"  # [3.1, 2.0, 4.4]
    UNREADABLE = "unreadable"  # a dict, a nested list, a list mixing names and numbers


@dataclass(frozen=True)
class Cell:
    """One parsed cell: its form, its canonical value, and the container it came in."""

    form: Form
    value: Any  # scalar, tuple[str, ...], tuple[int, ...] or tuple[float, ...]
    container: str = "scalar"  # scalar | list | numpy | json | delimited | columns


MISSING = Cell(Form.MISSING, None)


def _is_nan(value: Any) -> bool:
    try:
        return isinstance(value, float) and math.isnan(value)
    except TypeError:  # pragma: no cover - float subclasses that refuse isnan
        return False


def _is_missing(value: Any) -> bool:
    """A missing cell: None, NaN, ``pd.NA`` or ``NaT`` (a blank string is parsed as one)."""
    return value is None or _is_nan(value) or type(value).__name__ in ("NAType", "NaTType")


def _number_cell(value: Any) -> Cell:
    type_name = type(value).__name__
    if isinstance(value, bool) or type_name == "bool_":
        return Cell(Form.BOOL, bool(value))
    if isinstance(value, int) or type_name.startswith(("int", "uint")):
        return Cell(Form.INT, int(value))
    number = float(value)
    if math.isnan(number):
        return MISSING
    if math.isfinite(number) and number.is_integer():
        return Cell(Form.INTEGRAL_FLOAT, number)
    return Cell(Form.FLOAT, number)


def _list_cell(items: Sequence[Any], container: str) -> Cell:
    # [] -> an empty label set (or a row of width 0 where rows are indicators)
    if len(items) == 0:
        return Cell(Form.EMPTY_LIST, (), container)
    # ["joy", "anger"] -> names
    if all(isinstance(item, str) for item in items):
        return Cell(Form.NAMES, tuple(items), container)
    if any(isinstance(item, (str, list, tuple, dict)) or item is None for item in items):
        return Cell(Form.UNREADABLE, tuple(items), container)
    try:
        numbers = [float(item) for item in items]
    except (TypeError, ValueError):
        return Cell(Form.UNREADABLE, tuple(items), container)
    # [0, 1, 1] or [True, False] -> indicator (one-hot / multi-hot) row
    if all(n in (0.0, 1.0) for n in numbers):
        return Cell(Form.INDICATOR, tuple(int(n) for n in numbers), container)
    # [3.1, 2.0, 4.4] -> a vector of regression targets
    return Cell(Form.VECTOR, tuple(numbers), container)


def parse_cell(raw: Any, *, label_sep: str | None = None) -> Cell:
    """Parse one label cell.

    Args:
        raw: The cell as loaded (Python scalar, numpy scalar or row, list, or a string that
            may hold a JSON list or a delimited list).
        label_sep: When given, every string cell is a delimited list of names.

    Returns:
        The parsed :class:`Cell`.
    """
    if _is_missing(raw):
        return MISSING
    if isinstance(raw, str):
        stripped = raw.strip()
        if not stripped:
            return MISSING
        # '["joy", "anger"]' or '[0, 1, 0]' -> a JSON-encoded list in a text cell
        if stripped[0] == "[" and stripped[-1] == "]":
            try:
                decoded = json.loads(stripped)
            except ValueError:
                decoded = None
            if isinstance(decoded, list):
                return _list_cell(decoded, "json")
        # "joy|anger" with label_sep="|" -> names
        if label_sep is not None:
            names = tuple(part.strip() for part in raw.split(label_sep) if part.strip())
            return Cell(Form.NAMES, names, "delimited")
        return Cell(Form.STRING, raw)
    if isinstance(raw, (list, tuple)):
        return _list_cell(raw, "list")
    if type(raw).__name__ == "ndarray":
        if raw.ndim != 1:
            return Cell(Form.UNREADABLE, repr(raw.tolist()), "numpy")
        return _list_cell(raw.tolist(), "numpy")
    if isinstance(raw, (int, float)) or type(raw).__name__.startswith(("int", "uint", "float", "bool")):
        return _number_cell(raw)
    return Cell(Form.UNREADABLE, repr(raw))


def column_values(values: Any) -> list[Any]:
    """Cells of one column from a list, tuple, numpy array, pandas Series or Dataset column."""
    if hasattr(values, "tolist") and type(values).__name__ in ("Series", "Index"):
        return list(values.tolist())
    if type(values).__name__ == "ndarray":
        if values.ndim == 2 and values.shape[1] == 1:
            # shape [n, 1] -> a column vector, one scalar per row (scikit-learn's reading)
            return values[:, 0].tolist()
        return list(values) if values.ndim > 1 else values.tolist()
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"expected a column of label values, got {type(values).__name__}")
    return list(values)


_HASHABLE = (str, int, float, bool)
# pandas' inferred kinds whose values never compare equal across types, so hashing them
# together cannot merge 1 with 1.0 or True
_ONE_KIND = frozenset({"string", "integer", "floating", "boolean", "empty"})


class CellColumn(Sequence[Cell]):
    """The cells of one label column, row by row, stored as the distinct cells and a code
    per row.

    ``uniques`` holds each distinct cell once, in order of first appearance; ``codes[i]`` is
    row ``i``'s position in ``uniques``. It reads like a list of cells; checks that read a
    whole column work on the uniques and map back to rows with numpy, so their cost does not
    grow with per-row Python.
    """

    __slots__ = ("codes", "uniques")

    def __init__(self, codes: np.ndarray, uniques: Sequence[Cell]) -> None:
        codes = np.asarray(codes, dtype=np.int64)
        if _in_first_appearance(codes, len(uniques)):
            kept = tuple(uniques)
        else:
            codes, order = _first_appearance(codes)
            kept = tuple(uniques[i] for i in order)
        self.codes: np.ndarray = codes
        self.uniques: tuple[Cell, ...] = kept

    @classmethod
    def from_codes(cls, codes: np.ndarray, uniques: Sequence[Cell]) -> CellColumn:
        return cls(codes, uniques)

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self.uniques[c] for c in self.codes[i].tolist()]
        return self.uniques[self.codes[i]]

    def __iter__(self) -> Iterator[Cell]:
        return map(self.uniques.__getitem__, self.codes.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"CellColumn({len(self)} rows, {len(self.uniques)} distinct)"

    def counts(self) -> np.ndarray:
        """Rows per unique cell."""
        return np.bincount(self.codes, minlength=len(self.uniques))

    def mask(self, flags: Sequence[bool]) -> np.ndarray:
        """Per row, the flag of its unique cell."""
        return np.asarray(flags, dtype=bool)[self.codes] if len(self.codes) else \
            np.zeros(0, dtype=bool)

    def rows(self, pred: Callable[[Cell], bool]) -> list[int]:
        """Positions of the rows whose cell satisfies ``pred`` (``pred`` sees each unique
        once)."""
        return np.flatnonzero(self.mask([bool(pred(c)) for c in self.uniques])).tolist()


def _in_first_appearance(codes: np.ndarray, n_uniques: int) -> bool:
    """Whether every unique is used and each first appears after the one before it."""
    if not len(codes):
        return n_uniques == 0
    running = np.maximum.accumulate(codes)
    return bool(codes[0] == 0 and running[-1] == n_uniques - 1
                and (np.diff(running) <= 1).all())


def _first_appearance(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber codes in order of first appearance; also the old code of each new one."""
    if not len(codes):
        return codes, np.zeros(0, dtype=np.int64)
    old_values, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    rank = np.argsort(first, kind="stable")
    new_of_old = np.empty_like(rank)
    new_of_old[rank] = np.arange(len(rank))
    return new_of_old[inverse.reshape(-1)], old_values[rank]


def _factorize(values: Any) -> tuple[np.ndarray, list[Any]] | None:
    """Codes and distinct raw values by hashing, when the column holds one kind of scalar
    (``None`` otherwise). A missing value gets code -1."""
    import pandas as pd

    if type(values).__name__ == "ndarray":
        if values.ndim != 1:
            return None
        values = pd.Series(values, copy=False)
    elif type(values).__name__ != "Series":
        return None
    if pd.api.types.infer_dtype(values, skipna=True) not in _ONE_KIND:
        return None
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64), list(uniques.tolist())


# The widest list cell hashed column-wise (one column of codes per item position); a
# column with a wider cell goes through _hash_codes.
_MAX_LIST_WIDTH = 64


def _factorize_lists(values: Any) -> tuple[np.ndarray, list[Any]] | None:
    """:func:`_hash_codes` of a column of list cells, by hashing whole columns: cells all
    Python lists, or all 1-D numpy arrays of one dtype (a list column read from Parquet),
    whose items are one kind of scalar with no missing item. ``None`` for any other column.

    Two cells share a code exactly when their items are equal one for one, as the tuples
    of ``_hash_codes`` compare; the codes and first cells are the same as its own.
    """
    import pandas as pd

    if type(values).__name__ != "Series" or values.dtype != object or not len(values):
        return None
    cells = values.tolist()
    kinds = set(map(type, cells))
    if kinds not in ({list}, {np.ndarray}):
        return None
    if kinds == {np.ndarray} and len(set(map(attrgetter("dtype"), cells))) != 1:
        return None  # numpy would make [1] and ["1"] one type
    try:
        lengths = np.fromiter(map(len, cells), dtype=np.int64, count=len(cells))
    except TypeError:  # a 0-d array has no length
        return None
    width = int(lengths.max())
    if width > _MAX_LIST_WIDTH:
        return None
    if kinds == {list}:
        flat = pd.Series(list(chain.from_iterable(cells)), dtype=object)
    else:
        try:
            joined = np.concatenate(cells)
        except ValueError:  # arrays of different ranks
            return None
        if joined.ndim != 1:
            return None
        flat = pd.Series(joined, copy=False)
    if len(flat) and (pd.api.types.infer_dtype(flat, skipna=False) not in _ONE_KIND
                      or flat.isna().any()):
        return None
    items = np.asarray(pd.factorize(flat)[0], dtype=np.int64)
    grid = np.full((len(cells), width + 1), -1, dtype=np.int64)
    grid[:, 0] = lengths
    starts = np.cumsum(lengths) - lengths
    row = np.repeat(np.arange(len(cells)), lengths)
    grid[row, 1 + np.arange(len(items)) - starts[row]] = items
    codes, firsts = _combination_codes(list(grid.T))
    return codes, [cells[i] for i in firsts.tolist()]


def _combination_codes(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One code per distinct combination of the columns' codes, row by row, in order of
    first appearance; also the first row of each code."""
    import pandas as pd

    table = pd.DataFrame(dict(enumerate(columns)))
    codes = table.groupby(list(table.columns), sort=False).ngroup().to_numpy(np.int64)
    return codes, np.unique(codes, return_index=True)[1]


def _hash_codes(raw: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
    """Codes per row for any column: equal hashable cells of one type share a code (a list
    by its items), as do its missing cells of one type (None, NaN, pd.NA, NaT); other
    cells get a code of their own."""
    ids: dict[Any, int] = {}
    firsts: list[Any] = []
    codes = np.empty(len(raw), dtype=np.int64)
    for i, value in enumerate(raw):
        kind = type(value)
        if kind in (list, tuple):
            key: Any = (kind, tuple(value))
        elif kind.__name__ == "ndarray" and value.ndim == 1:  # a list cell read from Parquet
            key = (kind, tuple(value.tolist()))
        elif _is_missing(value):  # the missing cells of one type: one code
            key = (kind, "missing")
        elif isinstance(value, _HASHABLE):
            key = (kind, value)
        else:
            key = None
        if key is not None:
            try:
                code = ids.get(key)
            except TypeError:  # a list holding a list or a dict
                key, code = None, None
            if code is None:
                code = len(firsts)
                if key is not None:
                    ids[key] = code
                firsts.append(value)
        else:
            code = len(firsts)
            firsts.append(value)
        codes[i] = code
    return codes, firsts


def parse_column(values: Any, *, label_sep: str | None = None) -> CellColumn:
    """Parse every cell of one label column (each distinct cell is parsed once).

    A column whose every row is a one-number list (``[[0], [2], [1]]``, ``"[3]"``) is a
    column vector: its cells are the numbers themselves, as scikit-learn reads shape [n, 1].
    """
    hashed = _factorize(values)
    if hashed is None:
        hashed = _factorize_lists(values)
    if hashed is None:
        codes, firsts = _hash_codes(column_values(values))
    else:
        codes, firsts = hashed
        if (codes < 0).any():  # missing cells: one more distinct value
            codes = np.where(codes < 0, len(firsts), codes)
            firsts = [*firsts, None]
    cells = [parse_cell(value, label_sep=label_sep) for value in firsts]
    present = [c for c in cells if c.form is not Form.MISSING]
    if present and all(c.form in (Form.INDICATOR, Form.VECTOR) and len(c.value) == 1
                       for c in present):
        cells = [c if c.form is Form.MISSING else _number_cell(_only_item(r))
                 for c, r in zip(cells, firsts, strict=True)]
    return CellColumn.from_codes(codes, cells)


def _only_item(raw: Any) -> Any:
    """The one number of a one-number row, with its own type (int stays int)."""
    if isinstance(raw, str):
        return json.loads(raw.strip())[0]
    if type(raw).__name__ == "ndarray":
        return raw.tolist()[0]
    return raw[0]


def parse_columns(columns: Mapping[str, Any]) -> CellColumn:
    """Parse several scalar label columns into one row cell each.

    ``{"anger": [0, 1], "joy": [1, 1]}`` gives indicator rows ``(0, 1)`` and ``(1, 1)``;
    float columns give vectors. A row with a missing cell in any column is missing; a row
    whose cells are not all numbers is unreadable.
    """
    names = list(columns)
    parsed = [parse_column(columns[name]) for name in names]
    lengths = {len(p) for p in parsed}
    if len(lengths) > 1:
        raise ValueError(f"label columns have different lengths: {sorted(lengths)}")
    n = lengths.pop() if lengths else 0
    if not n:
        return CellColumn.from_codes(np.zeros(0, dtype=np.int64), [])
    codes, firsts = _combination_codes([p.codes for p in parsed])
    numeric = (Form.BOOL, Form.INT, Form.INTEGRAL_FLOAT, Form.FLOAT)
    rows: list[Cell] = []
    for row in firsts.tolist():
        cells = [p.uniques[p.codes[row]] for p in parsed]
        if any(c.form is Form.MISSING for c in cells):
            rows.append(MISSING)
        elif all(c.form in numeric for c in cells):
            rows.append(_list_cell([float(c.value) for c in cells], "columns"))
        else:
            rows.append(Cell(Form.UNREADABLE, tuple(c.value for c in cells), "columns"))
    return CellColumn.from_codes(codes, rows)

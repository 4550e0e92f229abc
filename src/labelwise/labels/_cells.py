"""Parse label cells of any common form into one small vocabulary of forms.

Each cell becomes a :class:`Cell` with a :class:`Form`. Parsing is pure and knows no task:
task inference (``labels.py``), encoding (``schema.py``) and the audit (``audit.py``) all read
cells through this one function, so they can never disagree about what a cell holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

__all__ = ["Form", "Cell", "parse_cell", "parse_column", "parse_columns", "column_values"]


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
    if raw is None or _is_nan(raw) or type(raw).__name__ in ("NAType", "NaTType"):
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


def parse_column(values: Any, *, label_sep: str | None = None) -> list[Cell]:
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


def parse_columns(columns: Mapping[str, Any]) -> list[Cell]:
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

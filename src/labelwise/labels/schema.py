"""``LabelSchema``: the one frozen description of the labels, used by every split, trial and
saved model.

A schema is created once (from the training labels, or from an explicit class list), saved
as JSON next to every model, and compared by :attr:`LabelSchema.fingerprint` wherever two
pieces of work must agree on the label encoding.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.labels._cells import (Cell, CellColumn, Form, _first_appearance, parse_cell,
                                     parse_column, parse_columns)
from labelwise.errors import LabelError, SchemaMismatchError
from labelwise.findings import Where, format_value
from labelwise.labels.inference import LabelFormat, Task, TaskInference, infer_task

__all__ = ["LabelSchema", "CodedLabels", "infer_schema", "SCHEMA_VERSION", "COMPATIBLE_FORMS"]

SCHEMA_VERSION = 1
# Cell forms each label format accepts; anything else is of another form (LW111).
COMPATIBLE_FORMS: dict[LabelFormat, set[Form]] = {
    LabelFormat.STRINGS: {Form.STRING},
    LabelFormat.INTS: {Form.INT, Form.INTEGRAL_FLOAT},
    LabelFormat.INTEGRAL_FLOATS: {Form.INT, Form.INTEGRAL_FLOAT},
    LabelFormat.BOOLS: {Form.BOOL},
    LabelFormat.FLOATS: {Form.INT, Form.INTEGRAL_FLOAT, Form.FLOAT},
    LabelFormat.NAME_LISTS: {Form.NAMES, Form.EMPTY_LIST},
    LabelFormat.DELIMITED_STRINGS: {Form.NAMES, Form.EMPTY_LIST},
    LabelFormat.ONE_HOT_ROWS: {Form.INDICATOR},
    LabelFormat.ONE_HOT_COLUMNS: {Form.INDICATOR},
    LabelFormat.MULTI_HOT_ROWS: {Form.INDICATOR},
    LabelFormat.BINARY_COLUMNS: {Form.INDICATOR},
    LabelFormat.FLOAT_VECTORS: {Form.VECTOR, Form.INDICATOR},
    LabelFormat.FLOAT_COLUMNS: {Form.VECTOR, Form.INDICATOR},
}


def _plain(value: Any) -> Any:
    """A class value as a plain JSON type (numpy scalars become Python scalars)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


@dataclass(frozen=True)
class CodedLabels:
    """One column of labels read through a schema: the parsed cells, and each distinct
    cell's label in the schema's terms (or the exception that says why it does not fit).

    Every per-split label check reads this: the work is done once per distinct cell, and
    rows are found with numpy, so a million rows of four classes cost four canonical calls.
    """

    cells: CellColumn
    canon: tuple[Any, ...]  # one per cell in ``cells.uniques``

    @property
    def codes(self) -> np.ndarray:
        return self.cells.codes

    @property
    def uniques(self) -> tuple[Cell, ...]:
        return self.cells.uniques

    def take(self, rows: np.ndarray) -> CodedLabels:
        """The labels of ``rows`` (positions), as if their column had been read alone:
        the distinct cells those rows use, in order of their first appearance."""
        codes, order = _first_appearance(self.codes[np.asarray(rows, dtype=np.int64)])
        kept = order.tolist()
        return CodedLabels(CellColumn(codes, [self.uniques[i] for i in kept]),
                           tuple(self.canon[i] for i in kept))

    def fits(self) -> np.ndarray:
        """Per row: whether its label fits the schema."""
        return self.cells.mask([not isinstance(v, Exception) for v in self.canon])

    def rows(self) -> list[Any]:
        """The canonical label (or exception) of every row."""
        return list(map(self.canon.__getitem__, self.codes.tolist()))

    def rows_where(self, pred: Any) -> list[int]:
        """Positions of the rows whose ``(cell, canonical)`` satisfies ``pred``."""
        return np.flatnonzero(self.cells.mask([bool(pred(c, v)) for c, v in
                                               zip(self.uniques, self.canon, strict=True)])
                              ).tolist()

    def class_counts(self, multilabel: bool) -> tuple[Counter, int]:
        """Rows per class among the rows that fit, and how many rows fit."""
        counts: Counter = Counter()
        n = 0
        for value, rows in zip(self.canon, self.cells.counts().tolist(), strict=True):
            if isinstance(value, Exception) or not rows:
                continue
            n += rows
            for name in (value if multilabel else (value,)):
                counts[name] += rows
        return counts, n


@dataclass(frozen=True)
class LabelSchema:
    """What the labels are and how they are encoded.

    Attributes:
        task: binary, multiclass, multilabel or regression.
        classes: Ordered class values as found in the data (str, int or bool). For binary,
            ``classes[1]`` is the positive class.
        targets: Regression target names, in output order.
        label_format: How the labels are written (:class:`LabelFormat`).
        columns: Source label column(s).
        label_sep: Separator of delimited label strings, if any.
        container: How list labels were stored (``"json"``, ``"numpy"``, ``"list"``...).
        evidence: Why this task was chosen, one sentence.
    """

    task: Task
    classes: tuple[Any, ...]
    targets: tuple[str, ...]
    label_format: LabelFormat
    columns: tuple[str, ...]
    label_sep: str | None = None
    container: str = "scalar"
    evidence: str = ""
    version: int = SCHEMA_VERSION
    _index: dict[Any, int] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", Task(self.task))
        object.__setattr__(self, "label_format", LabelFormat(self.label_format))
        object.__setattr__(self, "classes", tuple(_plain(c) for c in self.classes))
        object.__setattr__(self, "targets", tuple(str(t) for t in self.targets))
        object.__setattr__(self, "columns", tuple(self.columns))
        self._index.update({c: i for i, c in enumerate(self.classes)})

    # -- derived facts ---------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        """Width of the label space: classes, or regression targets."""
        return len(self.targets) if self.task is Task.REGRESSION else len(self.classes)

    @property
    def positive(self) -> Any:
        return self.classes[1] if self.task is Task.BINARY else None

    @property
    def label_names(self) -> tuple[str, ...]:
        """Classes (or targets) as strings, in id order."""
        if self.task is Task.REGRESSION:
            return self.targets
        return tuple(str(c) for c in self.classes)

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.label_names))

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.label_names)}

    @property
    def fingerprint(self) -> str:
        """Stable hash of everything that determines the encoding (16 hex digits)."""
        key = {
            "version": self.version,
            "task": self.task.value,
            "classes": list(self.classes),
            "targets": list(self.targets),
            "columns": list(self.columns),
            "label_sep": self.label_sep,
            "label_format": self.label_format,
        }
        blob = json.dumps(key, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    # -- canonical values ------------------------------------------------------------------
    def accepts(self, form: Form) -> bool:
        """Whether a cell of this form can hold a label of this schema's format."""
        if self.task is Task.MULTILABEL and self.label_format is LabelFormat.STRINGS:
            return form in (Form.STRING, Form.NAMES, Form.EMPTY_LIST)
        return form in COMPATIBLE_FORMS.get(self.label_format, ())

    def parse(self, values: Any) -> CellColumn:
        """Parse a column (or a mapping of columns) the way this schema's source was parsed."""
        if len(self.columns) > 1:
            if isinstance(values, Mapping) or type(values).__name__ == "DataFrame":
                return parse_columns({c: values[c] for c in self.columns})
            arr = np.asarray(values)
            return CellColumn.from_codes(np.arange(len(arr)), [parse_cell(row) for row in arr])
        if isinstance(values, Mapping) or type(values).__name__ == "DataFrame":
            values = values[self.columns[0]]
        return parse_column(values, label_sep=self.label_sep)

    def canonical(self, cell: Cell) -> Any:
        """A cell's label in this schema's terms, or raise ``KeyError``/``ValueError``.

        Single-label: the class value; multilabel: a tuple of classes in class order;
        regression: a tuple of floats, one per target.
        """
        form, value = cell.form, cell.value
        if form is Form.MISSING:
            raise ValueError("missing")
        if not self.accepts(form):
            raise ValueError(form.value)
        if self.task is Task.REGRESSION:
            if form in (Form.INT, Form.INTEGRAL_FLOAT, Form.FLOAT):
                value = (value,)
            elif form not in (Form.VECTOR, Form.INDICATOR):
                raise ValueError(form.value)
            if len(value) != len(self.targets):
                raise ValueError("width")
            return tuple(float(v) for v in value)
        if self.label_format.indicators:
            if form is not Form.INDICATOR or len(value) != len(self.classes):
                raise ValueError(form.value if form is not Form.INDICATOR else "width")
            hot = tuple(self.classes[i] for i, v in enumerate(value) if v)
            if self.task is Task.MULTILABEL:
                return hot
            if len(hot) != 1:
                raise ValueError("not one-hot")
            return hot[0]
        if self.task is Task.MULTILABEL:
            if form is Form.STRING:
                names: tuple[Any, ...] = (value,)
            elif form in (Form.NAMES, Form.EMPTY_LIST):
                names = value
            else:
                raise ValueError(form.value)
            for name in names:
                if name not in self._index:
                    raise KeyError(name)
            return tuple(sorted(set(names), key=self._index.__getitem__))
        if form is Form.NAMES:
            if len(value) != 1:
                raise ValueError("not one name")
            value = value[0]
        elif form is Form.INTEGRAL_FLOAT:
            value = int(value)
        elif form not in (Form.STRING, Form.INT, Form.BOOL):
            raise ValueError(form.value)
        if value not in self._index or type(value) is not type(self.classes[self._index[value]]):
            raise KeyError(value)
        return value

    # -- encode / decode -------------------------------------------------------------------
    def encode(self, values: Any, *, split: str = "data") -> np.ndarray:
        """Encode label values into the targets the task needs.

        Returns:
            ``int64 [n]`` class ids for binary and multiclass, ``float32 [n, k]`` multi-hot
            rows for multilabel, ``float32 [n, t]`` for regression.

        Raises:
            LabelError: A value is missing (LW107), unknown to the schema (LW102) or of
                another form (LW111); the message names the rows and the value.
        """
        return self.encode_coded(self.code(values), split=split)

    def encode_coded(self, coded: CodedLabels, *, split: str = "data") -> np.ndarray:
        """:meth:`encode` of a column already read through the schema (:meth:`code`)."""
        for canon, cell in zip(coded.canon, coded.uniques, strict=True):
            # uniques come in order of first appearance: the first misfit is the first row's
            if isinstance(canon, Exception):
                raise self._encode_error(coded.cells, cell, canon, split)
        return self._to_array(coded.canon)[coded.codes]

    def code(self, values: Any) -> CodedLabels:
        """Parse a column and read each distinct cell through the schema."""
        return self.code_cells(self.parse(values))

    def code_cells(self, cells: CellColumn) -> CodedLabels:
        """Read each distinct cell of a parsed column (:meth:`parse`) through the schema."""
        canon: list[Any] = []
        for cell in cells.uniques:
            try:
                canon.append(self.canonical(cell))
            except (KeyError, ValueError) as exc:
                canon.append(exc)
        return CodedLabels(cells, tuple(canon))

    def canonical_rows(self, values: Any) -> tuple[list[Cell], list[Any]]:
        """Cells and their canonical labels; a row that does not fit holds the exception."""
        coded = self.code(values)
        return coded.cells, coded.rows()

    def encode_lenient(self, values: Any) -> tuple[np.ndarray, np.ndarray]:
        """Targets for every row plus a mask of the rows that fit (others hold a filler)."""
        return self.encode_coded_lenient(self.code(values))

    def encode_coded_lenient(self, coded: CodedLabels) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`encode_lenient` of a column already read through the schema."""
        filler: Any = (self.classes[0] if self.task.single_label else
                       () if self.task is Task.MULTILABEL else (0.0,) * len(self.targets))
        ok = [not isinstance(v, Exception) for v in coded.canon]
        per_unique = self._to_array([v if fit else filler
                                     for v, fit in zip(coded.canon, ok, strict=True)])
        return per_unique[coded.codes], coded.cells.mask(ok)

    def _to_array(self, canon: Sequence[Any]) -> np.ndarray:
        n = len(canon)
        if self.task.single_label:
            return np.fromiter((self._index[v] for v in canon), dtype=np.int64, count=n)
        if self.task is Task.MULTILABEL:
            out = np.zeros((n, len(self.classes)), dtype=np.float32)
            for i, names in enumerate(canon):
                for name in names:
                    out[i, self._index[name]] = 1.0
            return out
        return np.asarray(canon, dtype=np.float32).reshape(n, len(self.targets))

    def _encode_error(self, cells: CellColumn, bad: Cell, exc: Exception, split: str
                      ) -> LabelError:
        column = ",".join(self.columns)
        same = cells.rows(lambda c: c == bad)
        where = Where.at(split=split, column=column, rows=same, value=bad.value)
        if bad.form is Form.MISSING:
            return LabelError("missing label", where=where, code="LW107",
                              fix="fill in the label or drop the row")
        if isinstance(exc, KeyError):
            value = exc.args[0]
            return LabelError(f"label {format_value(value)} is not one of the schema's "
                              f"{len(self.classes)} classes", where=where, code="LW102",
                              fix="fix the label, or rebuild the schema with this class")
        return LabelError(f"label of form '{bad.form.value}' does not fit the schema's "
                          f"format '{self.label_format}' ({exc})", where=where, code="LW111",
                          fix="write the labels in the same form as the training split")

    def decode(self, targets: Any) -> list[Any]:
        """Turn targets back into label values.

        ``int [n]`` ids give class values; ``[n, k]`` 0/1 rows give tuples of classes
        (multilabel); ``[n, t]`` floats give a float (one target) or a tuple (several).
        """
        arr = np.asarray(targets)
        if self.task.single_label:
            if arr.ndim != 1:
                raise LabelError(f"decode expects class ids of shape [n], got {arr.shape}",
                                 code="LW200", fix="pass argmax ids, not scores")
            return [self.classes[int(i)] for i in arr]
        if self.task is Task.MULTILABEL:
            arr = arr.reshape(len(arr), len(self.classes))
            return [tuple(c for c, v in zip(self.classes, row, strict=True) if v >= 0.5)
                    for row in arr]
        arr = arr.reshape(len(arr), len(self.targets)).astype(float)
        if len(self.targets) == 1:
            return [float(v) for v in arr[:, 0]]
        return [tuple(float(v) for v in row) for row in arr]

    # -- persistence -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "task": self.task.value,
            "classes": list(self.classes),
            "targets": list(self.targets),
            "label_format": self.label_format,
            "columns": list(self.columns),
            "label_sep": self.label_sep,
            "container": self.container,
            "evidence": self.evidence,
            "positive": self.positive,
            "num_labels": self.num_labels,
            "id2label": {str(k): v for k, v in self.id2label.items()},
            "label2id": self.label2id,
            "fingerprint": self.fingerprint,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelSchema:
        schema = cls(
            task=Task(data["task"]),
            classes=tuple(data["classes"]),
            targets=tuple(data.get("targets", ())),
            label_format=data["label_format"],
            columns=tuple(data["columns"]),
            label_sep=data.get("label_sep"),
            container=data.get("container", "scalar"),
            evidence=data.get("evidence", ""),
            version=data.get("version", SCHEMA_VERSION),
        )
        saved = data.get("fingerprint")
        if saved and saved != schema.fingerprint:
            raise SchemaMismatchError(
                f"saved schema fingerprint {saved} does not match its content "
                f"({schema.fingerprint})", fix="the schema file was edited by hand: restore it")
        return schema

    @classmethod
    def from_json(cls, text: str) -> LabelSchema:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> LabelSchema:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def diff(self, other: LabelSchema) -> list[str]:
        """Human-readable differences that change the encoding, empty when equal."""
        out = []
        for name in ("task", "classes", "targets", "columns", "label_sep", "label_format"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                out.append(f"{name}: {_short(mine)} -> {_short(theirs)}")
        return out

    def require_same(self, other: LabelSchema, *, what: str, fix: str) -> None:
        """Raise :class:`SchemaMismatchError` that shows the difference, unless equal."""
        if self.fingerprint != other.fingerprint:
            raise SchemaMismatchError(f"{what}: label schema differs ({'; '.join(self.diff(other))})",
                                      fix=fix)

    @classmethod
    def from_inference(cls, inference: TaskInference, *, columns: Sequence[str],
                       label_sep: str | None = None) -> LabelSchema:
        return cls(task=inference.task, classes=inference.classes, targets=inference.targets,
                   label_format=inference.label_format, columns=tuple(columns),
                   label_sep=label_sep, container=inference.container,
                   evidence=inference.evidence)


def _short(value: Any) -> str:
    if isinstance(value, tuple) and len(value) > 6:
        return f"{list(value[:6])!r}… ({len(value)} in all)"
    return repr(list(value) if isinstance(value, tuple) else value)


def infer_schema(
    values: Any,
    *,
    columns: str | Sequence[str] = "label",
    task: str | Task = "auto",
    classes: Sequence[Any] | None = None,
    label_sep: str | None = None,
    positive: Any = None,
) -> LabelSchema:
    """Infer a :class:`LabelSchema` from training label values.

    Args:
        values: One column of label cells, or a mapping / DataFrame of several columns.
        columns: Label column name(s), recorded in the schema and quoted in messages.
        task: ``"auto"`` or an explicit task.
        classes: Explicit class order.
        label_sep: Separator for delimited multilabel strings.
        positive: Positive class for binary tasks.

    Example:
        >>> schema = infer_schema(["neg", "pos", "pos"], columns="label")
        >>> schema.task.value, schema.classes
        ('binary', ('neg', 'pos'))
        >>> schema.encode(["pos", "neg"]).tolist()
        [1, 0]
    """
    if isinstance(columns, str):
        names = [columns]
    else:
        names = list(columns)
    if (isinstance(values, Mapping) or type(values).__name__ == "DataFrame") and len(names) <= 1:
        names = list(values.keys() if isinstance(values, Mapping) else values.columns)
    inference = infer_task(values, column=names if len(names) > 1 else names[0], task=task,
                           classes=classes, label_sep=label_sep, positive=positive)
    return LabelSchema.from_inference(inference, columns=names, label_sep=label_sep)

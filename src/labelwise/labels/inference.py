"""Task inference: from label values in any common form to a task, classes and evidence.

Modelled on scikit-learn's ``type_of_target``: a closed vocabulary and a readable decision
tree, every branch commented with a literal example. Unlike ``type_of_target`` it also reads
lists of names, JSON lists in text cells, delimited strings, one-hot rows, several 0/1
columns and several float columns, and it decides the permissive cases explicitly:

========================================  ====================================================
labels                                    decision (``task="auto"``)
========================================  ====================================================
one distinct value                        error LW101 (nothing to learn)
two strings / ints / bools                binary
three or more strings / ints              multiclass
integral floats, only ``0.0`` / ``1.0``   binary (ints read from a column with missing cells)
other integral floats (``1.0, 2.0, 5.0``) error LW119: class ids or a regression target?
any non-integral float                    regression
lists of names (incl. JSON, delimited)    multilabel (info LW123 if every row has one name)
0/1 rows or several 0/1 columns           one 1 in every row: single-label one-hot (binary if
                                          width 2) with info LW128; otherwise multilabel
float rows or several float columns       multi-output regression
whole-number rows beyond 0/1              error LW129 (class ids per column: multiclass-
                                          multioutput), LW119 if only two values (``1/2``)
one-number rows (shape ``[n, 1]``)        read as the column of those numbers
========================================  ====================================================

In scikit-learn's ``type_of_target`` terms: ``binary`` and ``multiclass`` are read as such
(one value: LW101; integral floats beyond 0/1: LW119), ``multilabel-indicator`` as
multilabel (one-hot rows as single-label, with LW128), ``continuous`` and
``continuous-multioutput`` as regression, ``multiclass-multioutput`` is refused (LW129) and
``unknown`` is unreadable (LW127). ``tests/test_type_of_target.py`` holds the two side by side.

An explicit ``task`` settles every ambiguous case; a task that the labels cannot satisfy is
an error that names the value and rows at fault.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum, StrEnum
from typing import Any

import numpy as np

from labelwise.labels._cells import Cell, CellColumn, Form, parse_column, parse_columns
from labelwise.errors import AmbiguousTaskError, LabelError
from labelwise.findings import Finding, Where, format_rows, format_value

__all__ = ["Task", "LabelFormat", "TaskInference", "infer_task", "POSITIVE_WORDS",
           "order_classes"]


class Task(str, Enum):
    """The closed vocabulary of tasks."""

    BINARY = "binary"
    MULTICLASS = "multiclass"
    MULTILABEL = "multilabel"
    REGRESSION = "regression"

    def __str__(self) -> str:
        return self.value

    @property
    def single_label(self) -> bool:
        return self in (Task.BINARY, Task.MULTICLASS)


class LabelFormat(StrEnum):
    """How the labels are written in the data (recorded in the schema, checked on every
    split: a split written another way is refused, LW111)."""

    STRINGS = "strings"  # "pos", "neg"
    INTS = "ints"  # 0, 3, 2
    INTEGRAL_FLOATS = "integral_floats"  # 0.0, 1.0
    BOOLS = "bools"  # True, False
    FLOATS = "floats"  # 3.1, 2.75 (one regression target)
    NAME_LISTS = "name_lists"  # ["joy", "anger"]
    DELIMITED_STRINGS = "delimited_strings"  # "joy|anger" with a label separator
    ONE_HOT_ROWS = "one_hot_rows"  # [0, 1, 0]
    ONE_HOT_COLUMNS = "one_hot_columns"  # one 0/1 column per class, one 1 per row
    MULTI_HOT_ROWS = "multi_hot_rows"  # [1, 0, 1]
    BINARY_COLUMNS = "binary_columns"  # one 0/1 column per label
    FLOAT_VECTORS = "float_vectors"  # [0.2, 3.5] (several regression targets)
    FLOAT_COLUMNS = "float_columns"  # one float column per regression target

    @property
    def indicators(self) -> bool:
        """0/1 positions, one per class."""
        return self in (LabelFormat.ONE_HOT_ROWS, LabelFormat.ONE_HOT_COLUMNS,
                        LabelFormat.MULTI_HOT_ROWS, LabelFormat.BINARY_COLUMNS)


TASK_CHOICES = ("auto", "binary", "multiclass", "multilabel", "regression")
POSITIVE_WORDS = frozenset({"1", "true", "yes", "y", "pos", "positive"})
_NUMERIC = (Form.INT, Form.INTEGRAL_FLOAT, Form.FLOAT)
_LISTS = (Form.NAMES, Form.EMPTY_LIST, Form.INDICATOR, Form.VECTOR)
_FORM_WORDS = {
    Form.BOOL: "bools",
    Form.INT: "ints",
    Form.INTEGRAL_FLOAT: "integral floats",
    Form.FLOAT: "floats",
    Form.STRING: "strings",
    Form.NAMES: "lists of names",
    Form.EMPTY_LIST: "empty lists",
    Form.INDICATOR: "0/1 rows",
    Form.VECTOR: "float rows",
    Form.UNREADABLE: "unreadable values",
}
_CONTAINER_WORDS = {
    "list": "Python lists",
    "numpy": "numpy rows",
    "json": "JSON-encoded lists in text cells",
    "delimited": "delimited strings",
    "columns": "separate columns",
}


@dataclass(frozen=True)
class TaskInference:
    """The inferred task with its evidence.

    Attributes:
        task: The task.
        classes: Ordered classes (empty for regression). For binary, ``classes[1]`` is the
            positive class.
        targets: Regression target names (empty for classification).
        label_format: The detected :class:`LabelFormat`.
        container: How list-like labels were stored (``"json"``, ``"numpy"``...) or
            ``"scalar"``.
        evidence: One sentence that says what was seen and why it means this task.
        findings: Warning and info findings noticed on the way (errors are raised).
        cells: The parsed label cells the task was inferred from (what
            :meth:`LabelSchema.code_cells` reads instead of parsing the column again).
    """

    task: Task
    classes: tuple[Any, ...]
    targets: tuple[str, ...]
    label_format: LabelFormat
    container: str
    evidence: str
    findings: tuple[Finding, ...] = field(default=())
    cells: CellColumn | None = field(default=None, repr=False, compare=False)

    @property
    def positive(self) -> Any:
        return self.classes[1] if self.task is Task.BINARY else None


def form_word(form: Form) -> str:
    return _FORM_WORDS.get(form, form.value)


def _rows_of(cells: Sequence[Cell], pred: Any) -> list[int]:
    if isinstance(cells, CellColumn):
        return cells.rows(pred)
    return [i for i, c in enumerate(cells) if pred(c)]


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, bool):
        return (0, int(value))
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def order_classes(
    found: Sequence[Any], *, explicit: Sequence[Any] | None, binary: bool, positive: Any = None
) -> tuple[Any, ...]:
    """Deterministic class order: explicit order if given, else sorted (numbers numerically).

    For binary tasks the positive class goes last (index 1): ``positive`` if given, else the
    one class whose lower-cased text is in :data:`POSITIVE_WORDS`, else the second in order.
    """
    if explicit is not None:
        return tuple(explicit)
    ordered = sorted(set(found), key=_sort_key)
    if binary and len(ordered) == 2:
        pick = positive
        if pick is None:
            hits = [c for c in ordered if str(c).strip().lower() in POSITIVE_WORDS]
            pick = hits[0] if len(hits) == 1 else ordered[1]
        if pick in ordered:
            ordered = [c for c in ordered if c != pick] + [pick]
    return tuple(ordered)


def _task_of(task: str | Task) -> Task | None:
    value = task.value if isinstance(task, Task) else str(task).lower()
    if value == "auto":
        return None
    try:
        return Task(value)
    except ValueError:
        raise LabelError(
            f"unknown task {value!r}",
            fix=f"pass one of {', '.join(TASK_CHOICES)}",
            code="LW120",
        ) from None


def infer_task(
    values: Any,
    *,
    column: str | Sequence[str] = "label",
    task: str | Task = "auto",
    classes: Sequence[Any] | None = None,
    label_sep: str | None = None,
    positive: Any = None,
    split: str = "train",
) -> TaskInference:
    """Infer the task, ordered classes and label format from label values.

    Args:
        values: One column of cells (list, tuple, numpy array, pandas Series, Dataset
            column), or, for several label columns, a mapping ``{column: values}`` or a
            pandas DataFrame.
        column: The label column name(s), quoted in messages.
        task: ``"auto"`` or the task to use; an explicit task settles ambiguous cases.
        classes: Explicit class order; values outside it are an error (LW114).
        label_sep: Separator of delimited multilabel strings (``"a|b"``).
        positive: The positive class of a binary task (default: see :func:`order_classes`).
        split: Split name quoted in messages.

    Returns:
        A :class:`TaskInference`.

    Raises:
        LabelError: The labels cannot make a schema for the asked task (codes LW101,
            LW107, LW112-LW115, LW118, LW120, LW124-LW127); ``AmbiguousTaskError`` (LW119)
            when only an explicit task can decide.
    """
    asked = _task_of(task)
    if isinstance(values, Mapping) or type(values).__name__ == "DataFrame":
        names = list(values.keys() if isinstance(values, Mapping) else values.columns)
        if len(names) == 1:
            values, column = values[names[0]], names[0]
        else:
            cells = parse_columns({n: values[n] for n in names})
            inferred = _Inferrer(cells, names, asked, classes, label_sep, positive, split).run()
            return replace(inferred, cells=cells)
    col = column if isinstance(column, str) else ",".join(column)
    _refuse_name_matrix(values, col, split)
    cells = parse_column(values, label_sep=label_sep)
    inferred = _Inferrer(cells, [col], asked, classes, label_sep, positive, split).run()
    return replace(inferred, cells=cells)


def _refuse_name_matrix(values: Any, column: str, split: str) -> None:
    """A 2-D array of names is one class per column (scikit-learn's multiclass-multioutput)."""
    if type(values).__name__ != "ndarray" or values.ndim != 2 or values.shape[1] < 2:
        return
    if values.dtype.kind not in "OUS" or not any(isinstance(v, str) for v in values.flat):
        return
    # np.array([["joy", "anger"], ["fear", "joy"]]) -> a label per column, or a set per row?
    raise LabelError(f"column '{column}' is a {values.shape[0]}x{values.shape[1]} array of "
                     "names: one class per column (multiclass-multioutput), which one model "
                     "here cannot learn, or a label set per row",
                     where=Where.at(split=split, column=column, value=values[0].tolist()),
                     fix="give each row as a list of its labels for multilabel, or train one "
                     "model per column", code="LW129")


class _Inferrer:
    """The decision tree of :func:`infer_task`, one method per family of forms."""

    def __init__(
        self,
        cells: list[Cell],
        columns: list[str],
        asked: Task | None,
        classes: Sequence[Any] | None,
        label_sep: str | None,
        positive: Any,
        split: str,
    ) -> None:
        self.cells = cells
        self.columns = columns
        self.col = columns[0] if len(columns) == 1 else None
        self.col_text = columns[0] if len(columns) == 1 else ", ".join(columns)
        self.asked = asked
        self.explicit = list(classes) if classes is not None else None
        self.label_sep = label_sep
        self.positive = positive
        self.split = split
        self.findings: list[Finding] = []
        coded = cells if isinstance(cells, CellColumn) else CellColumn.from_codes(
            np.arange(len(cells)), list(cells))
        # each distinct present cell once, with its row count, in order of first appearance
        self.seen = [(c, n) for c, n in zip(coded.uniques, coded.counts().tolist(), strict=True)
                     if c.form is not Form.MISSING and n]
        self.present = [c for c, _ in self.seen]
        self.forms = self.tally(lambda c: c.form)

    # -- helpers ---------------------------------------------------------------------------
    def where(self, rows: Sequence[int] = (), value: Any = None, detail: str = "") -> Where:
        return Where.at(split=self.split, column=self.col_text, rows=rows, value=value,
                        detail=detail)

    def fail(self, code: str, what: str, fix: str, rows: Sequence[int] = (), value: Any = None,
             cls: type[LabelError] = LabelError) -> LabelError:
        return cls(what, where=self.where(rows, value), fix=fix, code=code)

    def note(self, code: str, level: str, what: str, fix: str = "",
             rows: Sequence[int] = (), value: Any = None) -> None:
        self.findings.append(Finding(code, level, what, self.where(rows, value), fix))  # type: ignore[arg-type]

    def tally(self, key: Any) -> Counter:
        """Rows per ``key(cell)`` over the present cells (a Counter in first-row order)."""
        out: Counter = Counter()
        for cell, n in self.seen:
            out[key(cell)] += n
        return out

    def container(self) -> str:
        kinds = self.tally(lambda c: c.container if c.form in _LISTS else None)
        kinds.pop(None, None)
        return kinds.most_common(1)[0][0] if kinds else "scalar"

    def result(self, task: Task, classes: Sequence[Any], fmt: LabelFormat, evidence: str,
               targets: Sequence[str] = ()) -> TaskInference:
        return TaskInference(task, tuple(classes), tuple(targets), fmt, self.container(),
                             evidence, tuple(self.findings))

    # -- the tree --------------------------------------------------------------------------
    def run(self) -> TaskInference:
        if not self.present:
            missing = _rows_of(self.cells, lambda c: c.form is Form.MISSING)
            raise self.fail("LW124", f"column '{self.col_text}' has no label values",
                            "fill in the labels or name the right --label-column", missing)
        unreadable = _rows_of(self.cells, lambda c: c.form is Form.UNREADABLE)
        if unreadable:
            first = self.cells[unreadable[0]].value
            raise self.fail("LW127", "unreadable label values: not a scalar, a list of names "
                            "or a list of numbers", "write each label as a name, a number, or "
                            "a flat list of names or of 0/1 flags", unreadable, first)
        families = {self._family(f) for f in self.forms}
        if len(families) > 1:
            raise self._mixed()
        family = families.pop()
        return getattr(self, f"_{family}")()

    @staticmethod
    def _family(form: Form) -> str:
        if form is Form.STRING:
            return "strings"
        if form is Form.BOOL:
            return "bools"
        if form in _NUMERIC:
            return "numbers"
        if form in (Form.NAMES, Form.EMPTY_LIST):
            return "names"
        return "rows"  # INDICATOR, VECTOR (and EMPTY_LIST next to them: width 0)

    def _mixed(self) -> LabelError:
        # ["pos", 1, "neg"] or [["a"], "b"] -> one column with several forms
        by_form = self.tally(lambda c: c.form)
        parts = []
        for form, count in by_form.most_common():
            rows = _rows_of(self.cells, lambda c, f=form: c.form is f)
            parts.append(f"{count} {form_word(form)} ({format_rows(rows, count)})")
        minority = by_form.most_common()[-1][0]
        rows = _rows_of(self.cells, lambda c: c.form is minority)
        return self.fail("LW118", f"column '{self.col_text}' mixes label forms: "
                         + "; ".join(parts), "write every label in the same form",
                         rows, self.cells[rows[0]].value)

    def _check_explicit(self, found: Counter, kind: str = "value") -> None:
        if self.explicit is None:
            return
        # --classes 0,1 arrives as strings; match them to the values' own type
        by_text = {str(v): v for v in found}
        if all(isinstance(c, str) for c in self.explicit) and not all(
            isinstance(v, str) for v in found
        ):
            self.explicit = [by_text.get(c, c) for c in self.explicit]
        allowed = set(self.explicit)
        outside = [v for v in found if v not in allowed]
        if outside:
            value = sorted(outside, key=_sort_key)[0]
            rows = self._rows_with(value)
            raise self.fail("LW114", f"{kind} {format_value(value)} is not in the class list "
                            f"{list(self.explicit)!r} ({len(outside)} such value(s))",
                            "add it to --classes, or fix or drop those rows", rows, value)
        absent = [c for c in self.explicit if c not in found]
        for value in absent:
            self.note("LW122", "warning", f"class {format_value(value)} from the class list "
                      f"never occurs in '{self.split}'", "drop it from --classes unless "
                      "later data will carry it", value=value)

    def _rows_with(self, value: Any) -> list[int]:
        def hit(c: Cell) -> bool:
            if c.form in (Form.NAMES,):
                return value in c.value
            return c.form not in (Form.MISSING,) and _scalar(c) == value

        return _rows_of(self.cells, hit)

    def _single_label(self, found: Counter, fmt: LabelFormat, what: str) -> TaskInference:
        """Decide binary / multiclass from a Counter of class values."""
        asked = self.asked
        if asked in (Task.MULTILABEL, Task.REGRESSION):
            raise self.fail("LW120", f"task '{asked}' was asked, but column '{self.col_text}' "
                            f"holds {what}", _fix_for(fmt), value=next(iter(found)))
        self._check_explicit(found)
        n = len(self.explicit) if self.explicit is not None else len(found)
        if n < 2:
            value = next(iter(found))
            raise self.fail("LW101", f"column '{self.col_text}' has a single class "
                            f"{format_value(value)} in all {sum(found.values())} labelled rows",
                            "check that the right --label-column was chosen, or add examples "
                            "of the other classes", value=value)
        if asked is Task.BINARY and n > 2:
            raise self._stray(found)
        task = asked or (Task.BINARY if n == 2 else Task.MULTICLASS)
        classes = order_classes(list(found), explicit=self.explicit,
                                binary=task is Task.BINARY, positive=self.positive)
        self._many_values(found)
        return self.result(task, classes, fmt, f"{len(found)} distinct {what} in column "
                           f"'{self.col_text}' -> {task}")

    def _stray(self, found: Counter) -> LabelError:
        # ["pos", "neg", "neutral"] with task="binary" -> name the stray value(s)
        keep = [v for v, _ in found.most_common(2)]
        strays = [v for v in found if v not in keep]
        value = sorted(strays, key=lambda v: (found[v], _sort_key(v)))[0]
        rows = self._rows_with(value)
        extra = f" and {len(strays) - 1} more stray value(s)" if len(strays) > 1 else ""
        return self.fail(
            "LW115",
            f"task 'binary' was asked, but column '{self.col_text}' has {len(found)} classes: "
            f"stray value {format_value(value)} ({found[value]} row(s)){extra} next to "
            f"{format_value(keep[0])} and {format_value(keep[1])}",
            f"fix or drop the rows with {format_value(value)}, or pass --task multiclass",
            rows, value)

    def _many_values(self, found: Counter) -> None:
        n = sum(found.values())
        if n >= 20 and len(found) > n / 2:
            self.note("LW116", "warning", f"{len(found)} distinct labels in {n} rows: more "
                      "than half the rows, which looks like ids or a regression target",
                      "check --label-column, or pass --task regression for numeric targets")

    # -- families --------------------------------------------------------------------------
    def _strings(self) -> TaskInference:
        found = self.tally(lambda c: c.value)
        if self.asked is Task.MULTILABEL:
            # ["joy", "anger"] with task="multilabel" -> each row is a one-name set
            self._check_explicit(found)
            classes = order_classes(list(found), explicit=self.explicit, binary=False)
            return self.result(Task.MULTILABEL, classes, LabelFormat.STRINGS,
                               "one name per row, read as one-label sets (task multilabel)")
        return self._single_label(found, LabelFormat.STRINGS, "strings")

    def _bools(self) -> TaskInference:
        # [True, False, True] -> binary with classes (False, True)
        return self._single_label(self.tally(lambda c: c.value), LabelFormat.BOOLS,
                                  "bools")

    def _numbers(self) -> TaskInference:
        forms = set(self.forms)
        if self.asked is Task.REGRESSION or Form.FLOAT in forms:
            if self.asked not in (None, Task.REGRESSION):
                rows = _rows_of(self.cells, lambda c: c.form is Form.FLOAT)
                raise self.fail("LW120", f"task '{self.asked}' was asked, but column "
                                f"'{self.col_text}' holds non-integral floats",
                                "pass --task regression, or map the values to class ids",
                                rows, self.cells[rows[0]].value)
            # [3.1, 2.75, 4.0] -> regression on one target
            return self.result(Task.REGRESSION, (), LabelFormat.FLOATS,
                               f"numeric values in column '{self.col_text}' -> regression",
                               targets=self.columns)
        found = self.tally(lambda c: int(c.value))
        if Form.INTEGRAL_FLOAT in forms and self.asked is None and not set(found) <= {0, 1}:
            # [1.0, 2.0, 5.0] -> class ids written as floats, or a rating to regress?
            shown = ", ".join(f"{v:.1f}" for v in sorted(found)[:5])
            raise self.fail("LW119", f"column '{self.col_text}' holds integral floats "
                            f"({shown}{', …' if len(found) > 5 else ''}): class ids or a "
                            "regression target", "pass --task multiclass if they are class "
                            "ids, or --task regression if they are measurements",
                            cls=AmbiguousTaskError)
        fmt = LabelFormat.INTS if Form.INTEGRAL_FLOAT not in forms else \
            LabelFormat.INTEGRAL_FLOATS
        # [0, 1, 1, 0] -> binary; [0, 3, 2, 1] -> multiclass
        return self._single_label(found, fmt, "ints" if fmt is LabelFormat.INTS
                                  else "integral floats")

    def _integer_matrix(self, width: int, names: Sequence[str] | None) -> None:
        """Rows of whole numbers beyond 0/1 are class ids per column, never regression."""
        values = {float(v) for c in self.present for v in c.value}
        if not all(v.is_integer() for v in values):
            return  # [[1.5, 2.0], [3.25, 4.0]] -> regression targets (continuous-multioutput)
        shown = ", ".join(f"{v:g}" for v in sorted(values)[:5]) + (
            ", …" if len(values) > 5 else "")
        what = f"{width} columns" if names else f"rows of width {width}"
        if len(values) <= 2:
            # [[1, 2], [2, 1]] -> 0/1 flags written as other numbers, or ids per column?
            raise self.fail("LW119", f"column '{self.col_text}' holds {what} of only two "
                            f"whole numbers ({shown}): label flags (multilabel-indicator), "
                            "class ids per column (multiclass-multioutput) or regression "
                            "targets", "write the flags as 0/1 for --task multilabel, or "
                            "pass --task regression if they are measurements",
                            cls=AmbiguousTaskError)
        # [[0, 2], [1, 0], [2, 1]] -> one multiclass target per column (multiclass-multioutput)
        raise self.fail("LW129", f"column '{self.col_text}' holds {what} of class ids "
                        f"({shown}): several multiclass targets at once "
                        "(multiclass-multioutput), which one model here cannot learn",
                        "train one model per target column (--label-column NAME), or pass "
                        "--task regression if they are measurements")

    def _names(self) -> TaskInference:
        sets = [c.value for c in self.present]  # each distinct set once
        found: Counter = Counter()
        for cell, n in self.seen:
            for name in cell.value:
                found[name] += n
        if not found and self.explicit is None:
            # [[], [], []] -> every label set is empty: nothing to learn
            raise self.fail("LW124", f"every row of column '{self.col_text}' has an empty "
                            "label set", "fill in the labels or name the right "
                            "--label-column")
        if self.asked in (Task.BINARY, Task.MULTICLASS):
            # [["joy"], ["anger"]] with task="multiclass" -> unwrap one-name lists
            bad = _rows_of(self.cells, lambda c: c.form in (Form.NAMES, Form.EMPTY_LIST)
                           and len(c.value) != 1)
            if bad:
                raise self.fail("LW112", f"task '{self.asked}' was asked, but {len(bad)} "
                                f"row(s) of column '{self.col_text}' hold zero or several "
                                "names", "pass --task multilabel, or give every row exactly "
                                "one label", bad, self.cells[bad[0]].value)
            return self._single_label(found, LabelFormat.NAME_LISTS, "one-name lists")
        if self.asked is Task.REGRESSION:
            raise self.fail("LW120", f"task 'regression' was asked, but column "
                            f"'{self.col_text}' holds lists of names",
                            _fix_for(LabelFormat.NAME_LISTS))
        self._check_explicit(found, kind="name")
        if len(found) < 2 and self.explicit is None:
            value = next(iter(found), None)
            raise self.fail("LW101", f"column '{self.col_text}' names a single label "
                            f"{format_value(value)} in every non-empty row", "a one-label "
                            "multilabel task is binary: pass --task binary with a 0/1 column, "
                            "or add the other labels", value=value)
        if all(len(names) == 1 for names in sets):
            self.note("LW123", "info", "every row of the list column holds exactly one name",
                      "pass --task multiclass to train a single-label classifier")
        classes = order_classes(list(found), explicit=self.explicit, binary=False)
        fmt = (LabelFormat.DELIMITED_STRINGS if self.label_sep is not None
               else LabelFormat.NAME_LISTS)
        return self.result(Task.MULTILABEL, classes, fmt, f"lists of names "
                           f"({_CONTAINER_WORDS.get(self.container(), 'lists')}) in column "
                           f"'{self.col_text}' -> multilabel, {len(found)} labels")

    def _rows(self) -> TaskInference:
        widths = self.tally(lambda c: len(c.value))
        if len(widths) > 1:
            # [[0, 1], [0, 0, 1]] -> rows of different width
            common = widths.most_common(1)[0][0]
            bad = _rows_of(self.cells, lambda c: c.form in _LISTS and len(c.value) != common)
            raise self.fail("LW113", f"rows of column '{self.col_text}' have different widths "
                            f"{sorted(widths)}; most have width {common}", "give every row "
                            "the same width, one position per class", bad,
                            self.cells[bad[0]].value)
        width = next(iter(widths))
        names = self.columns if len(self.columns) > 1 else None
        if self.explicit is not None and len(self.explicit) != width:
            raise self.fail("LW114", f"--classes names {len(self.explicit)} classes, but rows "
                            f"of column '{self.col_text}' have width {width}",
                            f"name exactly {width} classes, in position order")
        labels = tuple(self.explicit or names or range(width))
        if Form.VECTOR in self.forms and self.asked is not Task.REGRESSION:
            self._integer_matrix(width, names)
        if Form.VECTOR in self.forms or self.asked is Task.REGRESSION:
            if self.asked not in (None, Task.REGRESSION):
                raise self.fail("LW120", f"task '{self.asked}' was asked, but column "
                                f"'{self.col_text}' holds rows of floats",
                                "pass --task regression, or use 0/1 rows")
            fmt = LabelFormat.FLOAT_COLUMNS if names else LabelFormat.FLOAT_VECTORS
            targets = tuple(str(t) for t in labels)
            return self.result(Task.REGRESSION, (), fmt, f"{width} numeric "
                               f"{'columns' if names else 'values per row'} -> regression "
                               f"with {width} targets", targets=targets)
        sums = [sum(c.value) for c in self.present]
        single = all(s == 1 for s in sums)
        fmt_multi = LabelFormat.BINARY_COLUMNS if names else LabelFormat.MULTI_HOT_ROWS
        if self.asked is Task.MULTILABEL or (self.asked is None and not single):
            # [[1, 0, 1], [0, 0, 0]] -> multilabel
            return self.result(Task.MULTILABEL, labels, fmt_multi, f"0/1 "
                               f"{'columns' if names else 'rows'} of width {width} with "
                               "several or no 1s in some rows -> multilabel"
                               if not single else f"0/1 rows of width {width} (task multilabel)")
        if not single:
            bad = _rows_of(self.cells, lambda c: c.form is Form.INDICATOR and sum(c.value) != 1)
            raise self.fail("LW112", f"task '{self.asked}' was asked, but {len(bad)} one-hot "
                            f"row(s) of column '{self.col_text}' have zero or several 1s",
                            "pass --task multilabel, or give every row exactly one 1",
                            bad, self.cells[bad[0]].value)
        if self.asked is Task.BINARY and width != 2:
            hot = self.tally(lambda c: c.value.index(1))
            stray = [p for p in range(2, width)]
            rows = _rows_of(self.cells, lambda c: c.form is Form.INDICATOR
                            and c.value.index(1) >= 2)
            raise self.fail("LW115", f"task 'binary' was asked, but the one-hot rows of "
                            f"column '{self.col_text}' have width {width}, i.e. {width} "
                            f"classes ({sum(hot[p] for p in stray)} row(s) hot beyond "
                            "position 1)", "pass --task multiclass, or use one-hot rows of "
                            "width 2 (or one 0/1 value per row)", rows,
                            self.cells[rows[0]].value if rows else None)
        task = self.asked or (Task.BINARY if width == 2 else Task.MULTICLASS)
        if self.asked is None:
            self.note("LW128", "info", f"one-hot rows (exactly one 1 in each of width {width}) "
                      f"read as single-label {task}", "pass --task multilabel if a row may "
                      "carry several labels")
        fmt = LabelFormat.ONE_HOT_COLUMNS if names else LabelFormat.ONE_HOT_ROWS
        return self.result(task, labels, fmt, f"one-hot {'columns' if names else 'rows'} of "
                           f"width {width} -> {task}")


def _scalar(cell: Cell) -> Any:
    if cell.form is Form.INTEGRAL_FLOAT:
        return int(cell.value)
    return cell.value


def _fix_for(fmt: LabelFormat) -> str:
    if fmt in (LabelFormat.STRINGS, LabelFormat.BOOLS, LabelFormat.NAME_LISTS):
        return "pass --task binary or --task multiclass (or auto), or choose a numeric column"
    return "pass --task auto to let labelwise decide"

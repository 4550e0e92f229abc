"""Findings: one problem (or fact) about the data, the contract or the config.

A finding has a stable ``code``, a ``level`` (error / warning / info), a one-line
``message``, a structured ``where`` and the ``fix``. Audits and preflight collect every
finding and fail once; they never stop at the first problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
import re
from typing import Any, Literal

__all__ = ["OPTIONS", "Style", "for_caller", "Level", "Where", "Finding", "Findings",
           "format_value", "format_rows", "MAX_ROWS"]

Level = Literal["error", "warning", "info"]
MAX_ROWS = 5
_LEVEL_ORDER = {"error": 0, "warning": 1, "info": 2}


def format_value(value: Any) -> str:
    """A label value as it appears in messages: strings quoted, others by ``repr``."""
    if isinstance(value, str):
        return repr(value)
    if hasattr(value, "tolist"):
        value = value.tolist()
    return repr(value)


def format_rows(rows: Sequence[int], count: int | None = None) -> str:
    """``"rows 4, 17, 90"`` or ``"rows 1, 2, 3, 4, 5, … (12 in all)"``."""
    count = len(rows) if count is None else count
    shown = ", ".join(str(r) for r in list(rows)[:MAX_ROWS])
    word = "row" if count == 1 else "rows"
    if count > MAX_ROWS:
        return f"{word} {shown}, … ({count} in all)"
    return f"{word} {shown}"


Style = Literal["python", "cli"]

# One mapping from the Python keyword to the CLI flag, for every option a message names.
# Messages are written with the flag (``pass --overwrite``); a Python caller reads the
# keyword (``pass overwrite=True``). Each entry: keyword, flag, kind (``bool``: True when
# given; ``value``: takes a value, rendered when it is one of ``values``; ``call``: a CLI
# option whose Python twin is the call ``values[0]``, given the flag's value), values.
OPTIONS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "overwrite": ("--overwrite", "bool", ()),
    "resume": ("--resume", "bool", ()),
    "chunk_rows": ("--chunk-rows", "value", ()),
    "output": ("--output", "value", ()),
    "runtime": ("--runtime", "value", ("auto", "torch", "onnx")),
    "quantize": ("--quantize", "value", ("int8",)),
    "join": ("--join", "bool", ()),
    "output_dir": ("--output-dir", "value", ()),
    "train": ("--train", "value", ()),
    "valid": ("--valid", "value", ()),
    "test": ("--test", "value", ()),
    "model": ("--model", "value", ()),
    "task": ("--task", "value", ("auto", "binary", "multiclass", "multilabel", "regression")),
    "label_columns": ("--label-column", "value", ()),
    "text_column": ("--text-column", "value", ()),
    "text_pair_column": ("--text-pair-column", "value", ()),
    "classes": ("--classes", "value", ()),
    "positive": ("--positive", "value", ()),
    "label_sep": ("--label-sep", "value", ()),
    "n_trials": ("--n-trials", "value", ()),
    "timeout": ("--timeout", "value", ()),
    "storage": ("--storage", "value", ()),
    "study": ("--study", "value", ()),
    "workers": ("--workers", "value", ()),
    "backend": ("--backend", "value", ("optuna", "ray")),
    "ray_address": ("--ray-address", "value", ()),
    "thresholds": ("--threshold", "value", ()),
    "on_invalid": ("--on-invalid", "value", ("raise", "skip")),
    "batch_size": ("--batch-size", "value", ()),
    "folds": ("--folds", "value", ()),
    "device": ("--device", "value", ("auto", "cpu", "mps", "cuda")),
    "label_errors_out": ("--label-errors-out", "call", ("LabelErrors.write_csv",)),
    "config": ("--set", "set", ()),
}
_BY_FLAG = {flag: (name, kind, values) for name, (flag, kind, values) in OPTIONS.items()}
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)( [^\s,;)]+)?")
_SETTING = re.compile(r"(\w+)\.(\w+)=([^\s,;)]+?)(\.?)$")


def _python_option(match: re.Match[str]) -> str:
    flag, rest = "--" + match.group(1), match.group(2) or ""
    if flag not in _BY_FLAG:
        return match.group(0)
    name, kind, values = _BY_FLAG[flag]
    value = rest[1:]
    if kind == "bool":
        return f"{name}=True{rest}"
    if kind == "call":
        return f"{values[0]}({value!r})" if value else values[0]
    if kind == "set":
        setting = _SETTING.match(value)
        if setting:
            section, key, raw, dot = setting.groups()
            return f"{name}={{'{section}': {{'{key}': {raw}}}}}{dot}"
        return f"{name}={{...}}{rest}"
    bare = value.rstrip(".")
    if bare in values:
        return f"{name}={bare!r}{value[len(bare):]}"
    if re.fullmatch(r"-?\d+(\.\d+)?", bare):  # a number: workers=2
        return f"{name}={value}"
    return f"{name}={rest}"


def for_caller(text: str, style: Style = "python") -> str:
    """``text`` in the caller's terms: the CLI's flags as written, or, for a Python caller,
    each flag of :data:`OPTIONS` as its keyword (``--overwrite`` -> ``overwrite=True``,
    ``--task multiclass`` -> ``task='multiclass'``, ``--output-dir`` -> ``output_dir=``)."""
    if style == "cli" or "--" not in text:
        return text
    return _FLAG.sub(_python_option, text)


@dataclass(frozen=True)
class Where:
    """Where a finding is: split, column(s), up to five row numbers with a count, the value.

    Row numbers are 0-based positions of data rows in the split as loaded (the header of a
    CSV is not a row), the same numbers ``pandas.read_csv(path).iloc[row]`` gives.
    """

    split: str | None = None
    column: str | None = None
    rows: tuple[int, ...] = ()
    count: int | None = None
    value: Any = None
    file: str | None = None
    detail: str = ""

    @classmethod
    def at(
        cls,
        *,
        split: str | None = None,
        column: str | None = None,
        rows: Iterable[int] = (),
        value: Any = None,
        file: str | None = None,
        detail: str = "",
    ) -> Where:
        rows = [int(r) for r in rows]
        return cls(
            split=split,
            column=column,
            rows=tuple(rows[:MAX_ROWS]),
            count=len(rows) if rows else None,
            value=value,
            file=file,
            detail=detail,
        )

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(f"file {self.file}")
        if self.split:
            parts.append(f"split '{self.split}'")
        if self.column:
            parts.append(f"column '{self.column}'")
        if self.rows:
            parts.append(format_rows(self.rows, self.count))
        if self.value is not None:
            parts.append(f"value {format_value(self.value)}")
        if self.detail:
            parts.append(self.detail)
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rows"] = list(self.rows)
        value = self.value
        if hasattr(value, "tolist"):
            value = value.tolist()
        if value is not None and not isinstance(value, (str, int, float, bool, list)):
            value = repr(value)
        out["value"] = value
        return out


@dataclass(frozen=True)
class Finding:
    """One problem or fact. ``render()`` gives the one-line form used by the CLI."""

    code: str
    level: Level
    message: str
    where: Where = field(default_factory=Where)
    fix: str = ""

    def render(self, style: Style = "python") -> str:
        """One line; options named as a Python caller (default) or the CLI passes them."""
        text = f"{self.code} {self.message}"
        where = str(self.where)
        if where:
            text += f" ({where})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return for_caller(text, style)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "level": self.level,
            "message": self.message,
            "where": self.where.to_dict(),
            "fix": self.fix,
        }


class Findings(tuple):
    """An ordered, immutable collection of findings (errors first) with small helpers."""

    def __new__(cls, items: Iterable[Finding] = ()) -> Findings:
        ordered = sorted(items, key=lambda f: (_LEVEL_ORDER[f.level], f.code))
        return super().__new__(cls, ordered)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def codes(self) -> list[str]:
        return [f.code for f in self]

    def by_code(self, code: str) -> list[Finding]:
        return [f for f in self if f.code == code]

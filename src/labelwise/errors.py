"""One error hierarchy with one message shape: what is wrong, where, and the fix.

Every error a user can cause is a :class:`LabelwiseError`. Subclasses also inherit the
natural builtin (``ValueError``, ``ImportError``) so generic ``except`` clauses keep working,
as scikit-learn does with ``NotFittedError(ValueError, AttributeError)``.
"""

from __future__ import annotations

from typing import Any

from labelwise.findings import OPTIONS, Finding, Findings, Style, Where, for_caller

__all__ = [
    "require",
    "check_count",
    "OPTIONS",
    "Style",
    "for_caller",
    "LabelwiseError",
    "DataError",
    "LabelError",
    "AmbiguousTaskError",
    "SchemaMismatchError",
    "ConfigError",
    "SearchSpaceError",
    "ContractError",
    "PreflightError",
    "MissingDependencyError",
    "OutputError",
]


class LabelwiseError(Exception):
    """Base class of every error a user can cause.

    ``str(err)`` is one line: what is wrong, where, then ``Fix: ...``, with options named
    as a Python caller passes them (``overwrite=True``); ``err.render("cli")`` names them as
    the command line's flags (``--overwrite``). ``what`` and ``fix`` hold the flags.

    Attributes:
        what: The problem, in one sentence.
        where: Where it is (file, split, column, rows, value), or ``""``.
        fix: What to do about it, or ``""``.
        code: A stable finding code (``LW1xx`` labels, ``LW2xx`` contract, ``LW3xx`` config
            and search space, ``LW4xx`` model and data access) or ``""``.
    """

    default_code = ""

    def __init__(self, what: str, *, where: str = "", fix: str = "", code: str = "") -> None:
        self.what = what
        self.where = where
        self.fix = fix
        self.code = code or self.default_code
        super().__init__(self.render())

    def render(self, style: Style = "python") -> str:
        text = self.what
        if self.where:
            text += f" ({self.where})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return for_caller(text, style)

    def to_finding(self, *, split: str | None = None) -> Finding:
        """This error as an error-level :class:`~labelwise.findings.Finding`."""
        return Finding(
            code=self.code or "LW000",
            level="error",
            message=self.what,
            where=getattr(self, "where_obj", None) or Where(split=split, detail=self.where),
            fix=self.fix,
        )


class DataError(LabelwiseError, ValueError):
    """An input table cannot be used: missing file, unreadable format, unknown column."""

    default_code = "LW400"


class LabelError(LabelwiseError, ValueError):
    """The labels cannot make a consistent schema (one class, mixed forms, stray value...)."""

    default_code = "LW100"

    def __init__(self, what: str, *, where: Any = "", fix: str = "", code: str = "") -> None:
        self.where_obj = where if isinstance(where, Where) else None
        super().__init__(what, where=str(where) if where else "", fix=fix, code=code)


class AmbiguousTaskError(LabelError):
    """The labels fit more than one task; the message names the ``--task`` to pass."""

    default_code = "LW119"


class SchemaMismatchError(LabelwiseError, ValueError):
    """Two schemas that must be equal differ (saved model vs data, study vs data)."""

    default_code = "LW130"


class ConfigError(LabelwiseError, ValueError):
    """A run configuration value is unknown, malformed or out of range."""

    default_code = "LW300"


class SearchSpaceError(ConfigError):
    """A search-space sample would change the label encoding, or names a key that is no
    setting (raised by ``guard_trainer`` for ``Trainer.hyperparameter_search``)."""

    default_code = "LW239"


class ContractError(LabelwiseError, ValueError):
    """Targets or settings do not match the head/loss contract."""

    default_code = "LW200"


class PreflightError(LabelwiseError):
    """Preflight found one or more error findings; ``findings`` lists every one."""

    default_code = "LW000"

    def __init__(self, findings: list[Finding]) -> None:
        self.findings = Findings(findings)
        errors = [f for f in self.findings if f.level == "error"]
        self._head = f"preflight found {len(errors)} error(s)"
        lines = "; ".join(f.render("cli") for f in errors)
        super().__init__(f"{self._head}: {lines}" if lines else self._head)

    def render(self, style: Style = "python") -> str:  # the findings carry where and fix
        lines = "; ".join(f.render(style) for f in self.findings if f.level == "error")
        return f"{self._head}: {lines}" if lines else self._head


class MissingDependencyError(LabelwiseError, ImportError):
    """An optional feature needs an extra that is not installed."""

    default_code = "LW401"


class OutputError(LabelwiseError, OSError):
    """The output directory cannot take the run: in use by another run, not writable,
    holding files that are not labelwise's, or the disk is full."""

    default_code = "LW360"


def require(*modules: str, what: str, extra: str) -> Any:
    """Import ``modules`` (the first is returned) or say which extra to install."""
    import importlib

    try:
        loaded = [importlib.import_module(m) for m in modules]
    except ImportError:
        raise MissingDependencyError(what, fix=f"pip install 'labelwise[{extra}]'",
                                     code="LW401") from None
    return loaded[0]


def check_count(value: Any, *, name: str, minimum: int = 1, none_ok: bool = False,
                code: str = "LW342") -> int | None:
    """``value`` as an ``int`` of at least ``minimum`` (``None`` passes with ``none_ok``: the
    caller's default), else a :class:`ConfigError` naming ``name`` as the caller passes it.
    A bool or float is refused: ``True`` rows per batch is a mistake, not 1."""
    import numbers

    if value is None and none_ok:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
        flag = "--" + name.replace("_", "-")
        raise ConfigError(f"{name} must be {what}. Got {value!r} instead",
                          fix=f"pass {flag} {minimum} or more", code=code)
    return int(value)

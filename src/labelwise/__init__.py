"""labelwise: fine-tune and tune transformer text classifiers without label mistakes.

The top level is light: importing ``labelwise`` loads no torch, transformers or optuna.
Heavy verbs are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "LabelSchema": "labelwise.schema",
    "infer_schema": "labelwise.schema",
    "Task": "labelwise.labels",
    "infer_task": "labelwise.labels",
    "TaskInference": "labelwise.labels",
    "load_splits": "labelwise.data",
    "LoadedData": "labelwise.data",
    "audit": "labelwise.audit",
    "inspect_data": "labelwise.inspection",
    "Inspection": "labelwise.inspection",
    "Finding": "labelwise.findings",
    "Findings": "labelwise.findings",
    "LabelwiseError": "labelwise.errors",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from labelwise.audit import audit
    from labelwise.data import LoadedData, load_splits
    from labelwise.errors import LabelwiseError
    from labelwise.findings import Finding, Findings
    from labelwise.inspection import Inspection, inspect_data
    from labelwise.labels import Task, TaskInference, infer_task
    from labelwise.schema import LabelSchema, infer_schema


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labelwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

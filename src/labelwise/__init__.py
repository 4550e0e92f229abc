"""labelwise: fine-tune and tune transformer text classifiers without label mistakes.

The top level is light: importing ``labelwise`` loads no torch, transformers or optuna.
The verbs are imported on first use.

Example:
    >>> import labelwise
    >>> labelwise.infer_schema(["neg", "pos", "pos"]).task.value
    'binary'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    # label core (no torch)
    "Task": "labelwise.labels",
    "infer_task": "labelwise.labels",
    "TaskInference": "labelwise.labels",
    "LabelSchema": "labelwise.schema",
    "infer_schema": "labelwise.schema",
    "load_splits": "labelwise.data",
    "LoadedData": "labelwise.data",
    "audit": "labelwise.auditing",
    "inspect_data": "labelwise.inspection",
    "Inspection": "labelwise.inspection",
    "Finding": "labelwise.findings",
    "Findings": "labelwise.findings",
    "LabelwiseError": "labelwise.errors",
    "RunConfig": "labelwise.config",
    "load_config": "labelwise.config",
    "HeadContract": "labelwise.contract",
    "derive_contract": "labelwise.contract",
    "check_batch": "labelwise.guard",
    "preflight": "labelwise._preflight",
    "Plan": "labelwise._preflight",
    # heavy verbs (torch, transformers, optuna on first use)
    "train": "labelwise.training",
    "TrainResult": "labelwise.training",
    "tune": "labelwise.tuning",
    "SearchResult": "labelwise.tuning",
    "predict": "labelwise.prediction",
    "Predictions": "labelwise.prediction",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from labelwise.auditing import audit
    from labelwise.config import RunConfig, load_config
    from labelwise.contract import HeadContract, derive_contract
    from labelwise.data import LoadedData, load_splits
    from labelwise.errors import LabelwiseError
    from labelwise.findings import Finding, Findings
    from labelwise.guard import check_batch
    from labelwise.inspection import Inspection, inspect_data
    from labelwise.labels import Task, TaskInference, infer_task
    from labelwise.prediction import Predictions, predict
    from labelwise._preflight import Plan, preflight
    from labelwise.schema import LabelSchema, infer_schema
    from labelwise.training import TrainResult, train
    from labelwise.tuning import SearchResult, tune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'labelwise' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__

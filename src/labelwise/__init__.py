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
    "Task": "labelwise.labels.inference",
    "LabelFormat": "labelwise.labels.inference",
    "infer_task": "labelwise.labels.inference",
    "TaskInference": "labelwise.labels.inference",
    "LabelSchema": "labelwise.labels.schema",
    "infer_schema": "labelwise.labels.schema",
    "load_splits": "labelwise.data.loading",
    "LoadedData": "labelwise.data.loading",
    "audit": "labelwise.data.auditing",
    "inspect_data": "labelwise.data.inspection",
    "Inspection": "labelwise.data.inspection",
    "Finding": "labelwise.findings",
    "Findings": "labelwise.findings",
    "LabelwiseError": "labelwise.errors",
    "RunConfig": "labelwise.plan.config",
    "load_config": "labelwise.plan.config",
    "HeadContract": "labelwise.plan.contract",
    "derive_contract": "labelwise.plan.contract",
    "check_batch": "labelwise.training.guard",
    "check_targets": "labelwise.training.guard",
    "preflight": "labelwise.plan.preflight",
    "Plan": "labelwise.plan.preflight",
    "check": "labelwise.plan.preflight",
    # heavy verbs (torch, transformers, optuna on first use)
    "train": "labelwise.training.train",
    "TrainResult": "labelwise.training.train",
    "tune": "labelwise.tuning",
    "SearchResult": "labelwise.tuning",
    "predict": "labelwise.training.predict",
    "predict_file": "labelwise.training.stream",
    "PredictedFile": "labelwise.training.stream",
    "export": "labelwise.training.export",
    "ExportResult": "labelwise.training.export",
    "find_label_errors": "labelwise.training.label_errors",
    "LabelErrors": "labelwise.scoring.label_errors",
    "Predictions": "labelwise.training.predict",
    "guard_trainer": "labelwise.training.guard_trainer",
    "LabelwiseCallback": "labelwise.training.guard_trainer",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from labelwise.data.auditing import audit
    from labelwise.plan.config import RunConfig, load_config
    from labelwise.plan.contract import HeadContract, derive_contract
    from labelwise.data.loading import LoadedData, load_splits
    from labelwise.errors import LabelwiseError
    from labelwise.findings import Finding, Findings
    from labelwise.training.guard import check_batch, check_targets
    from labelwise.training.guard_trainer import LabelwiseCallback, guard_trainer
    from labelwise.data.inspection import Inspection, inspect_data
    from labelwise.labels.inference import LabelFormat, Task, TaskInference, infer_task
    from labelwise.scoring.label_errors import LabelErrors
    from labelwise.training.label_errors import find_label_errors
    from labelwise.training.predict import Predictions, predict
    from labelwise.training.stream import PredictedFile, predict_file
    from labelwise.training.export import ExportResult, export
    from labelwise.plan.preflight import Plan, check, preflight
    from labelwise.labels.schema import LabelSchema, infer_schema
    from labelwise.training.train import TrainResult, train
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

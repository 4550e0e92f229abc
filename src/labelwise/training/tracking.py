"""Experiment tracking through Transformers' integrations (``train.report_to``).

``train.report_to`` names Transformers' reporting integrations (``tensorboard``,
``mlflow``, ``wandb``, ... or ``all``); their callbacks are built here, one set per run or
trial, and their logs go inside the output directory:

* TensorBoard event files: ``OUTPUT/logs/tensorboard/<run>/`` (a training run writes them
  in its unfinished dir, which becomes ``OUTPUT`` at the end, so they survive the rename);
* MLflow, when ``MLFLOW_TRACKING_URI`` is not set: a local SQLite store,
  ``OUTPUT/logs/mlflow.db`` (MLflow's file store is in maintenance mode). A search is one
  MLflow run with one nested run per trial (Ray trials, in processes of their own, log one
  run each to the same store, not nested).

Services of their own (wandb, comet, ...) are configured as their integration documents it
(environment variables, logins).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError, MissingDependencyError

__all__ = ["tracking_callbacks", "check_report_to", "mlflow_store", "search_run", "LOGS"]

LOGS = "logs"
MLFLOW_DB = "mlflow.db"
_PACKAGES = {"tensorboard": "tensorboard", "mlflow": "mlflow", "wandb": "wandb",
             "comet_ml": "comet_ml", "neptune": "neptune", "clearml": "clearml",
             "dvclive": "dvclive", "codecarbon": "codecarbon", "swanlab": "swanlab",
             "trackio": "trackio", "dagshub": "dagshub", "azure_ml": "azureml-core"}


def _names(report_to: Sequence[str]) -> list[str]:
    from transformers.integrations import get_available_reporting_integrations

    names = [n for n in report_to if n != "none"]
    if "all" in names:
        return get_available_reporting_integrations()
    return names


def tracking_callbacks(report_to: Sequence[str], *, logs_dir: Path, run_name: str
                       ) -> list[Any]:
    """Fresh callbacks of the integrations ``report_to`` names, TensorBoard writing to
    ``logs_dir/tensorboard/run_name``.

    Raises:
        ConfigError: An integration Transformers does not know.
        MissingDependencyError: A known one whose package is not installed.
    """
    from transformers.integrations import INTEGRATION_TO_CALLBACK, TensorBoardCallback

    names = check_report_to(report_to)
    if not names:
        return []
    from transformers import TrainerCallback

    class RunName(TrainerCallback):  # before the integrations: they read args.run_name
        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            args.run_name = run_name

    class RunEnded(TrainerCallback):
        """After MLflowCallback ended its run: its ``__del__`` would otherwise end the run
        active when it is collected (a search's parent run)."""

        def __init__(self, callback: Any) -> None:
            self.callback = callback

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.callback._auto_end_run = False

    out: list[Any] = [RunName()]
    for name in names:
        callback = INTEGRATION_TO_CALLBACK[name]()
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(logs_dir / "tensorboard" / run_name)
        out.append(callback)
        if hasattr(callback, "_auto_end_run"):
            out.append(RunEnded(callback))
    return out


def check_report_to(report_to: Sequence[str]) -> list[str]:
    """The integrations ``report_to`` names, each known and installed.

    Raises:
        ConfigError: An integration Transformers does not know.
        MissingDependencyError: A known one whose package is not installed.
    """
    from transformers.integrations import (INTEGRATION_TO_CALLBACK,
                                           get_available_reporting_integrations)

    names = _names(report_to)
    unknown = [n for n in names if n not in INTEGRATION_TO_CALLBACK]
    if unknown:
        known = ", ".join(sorted(INTEGRATION_TO_CALLBACK))
        raise ConfigError(f"unknown train.report_to '{unknown[0]}'",
                          fix=f"use none, all or one of {known}", code="LW307")
    available = get_available_reporting_integrations()
    for name in names:
        if name not in available:
            raise MissingDependencyError(f"train.report_to '{name}' needs its package",
                                         fix=f"pip install {_PACKAGES.get(name, name)}",
                                         code="LW401")
    return names


@contextlib.contextmanager
def mlflow_store(report_to: Sequence[str], logs_dir: Path, *, nested: bool = False
                 ) -> Iterator[None]:
    """MLflow's tracking URI set to ``logs_dir/mlflow.db`` for the duration, unless the user
    set ``MLFLOW_TRACKING_URI`` (and MLflow is asked for); ``nested``: trials' runs nest."""
    if "mlflow" not in report_to and "all" not in report_to:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_NESTED_RUN")}
    if saved["MLFLOW_TRACKING_URI"] is None:
        logs_dir.mkdir(parents=True, exist_ok=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{(logs_dir / MLFLOW_DB).resolve()}"
    if nested:
        os.environ["MLFLOW_NESTED_RUN"] = "TRUE"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def search_run(config: Any, output_dir: Path, study_name: str | None) -> Iterator[None]:
    """A search as one MLflow run (named after the study) holding each trial's run, and its
    logs in ``OUTPUT/logs``; nothing when MLflow is not asked for."""
    report_to = list(config.train.report_to)
    logs = output_dir / LOGS
    with mlflow_store(report_to, logs, nested=True):
        if "mlflow" not in _names(report_to):
            yield
            return
        import mlflow

        with mlflow.start_run(run_name=study_name or "labelwise"):
            mlflow.set_tag("labelwise.search", study_name or "labelwise")
            yield

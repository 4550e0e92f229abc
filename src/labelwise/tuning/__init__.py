"""Hyperparameter search: ``tune(config) -> SearchResult``.

Preflight checks everything once (data, the contract for every choice of the space, space
keys, objective) before the first trial; then a backend runs the trials. Optuna is the
embedded default.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.plan.config import RunConfig, resolve_config
from labelwise.errors import ConfigError
from labelwise.plan.preflight import preflight
from labelwise.training.progress import current, presented
from labelwise.tuning._base import SearchBackend, SearchResult, TrialRecord

__all__ = ["tune", "SearchResult", "TrialRecord", "SearchBackend"]

logger = logging.getLogger("labelwise")
MARKER = "tune.json"


def _output_dir(config: RunConfig, overwrite: bool) -> Path:
    if not config.output_dir:
        raise ConfigError("no output directory given", fix="set output_dir in the config or "
                          "pass --output-dir", code="LW330")
    out = Path(config.output_dir)
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists():
        if not overwrite:
            raise ConfigError("output directory is not empty and holds no labelwise search",
                              where=f"file {out}", fix="pass --overwrite to replace it, or "
                              "choose another --output-dir", code="LW331")
    if overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


@presented
def tune(config: Any = None, *, train: Any = None, valid: Any = None, test: Any = None,
         text_column: str | None = None, text_pair_column: str | None = None,
         label_columns: str | Sequence[str] | None = None, task: str | None = None,
         model: str | None = None, output_dir: str | Path | None = None,
         epochs: float | None = None, max_steps: int | None = None,
         batch_size: int | None = None, learning_rate: float | None = None,
         seed: int | None = None, n_trials: int | None = None,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int | None = None, backend: str | None = None,
         ray_address: str | None = None, join: bool = False, overwrite: bool = False,
         callbacks: Sequence[Any] = (), progress: bool = True, verbose: bool = False,
         source: str | None = None) -> SearchResult:
    """Search hyperparameters; the best trial's model is written to ``OUTPUT/best/``.

    Re-running the same call resumes the search: finished trials are kept and new ones are
    added up to ``n_trials``.

    Args:
        config: A :class:`RunConfig`, a dict, the path of a YAML/TOML run config, or the
            training data itself (as ``train``).
        train, valid, test, text_column, text_pair_column, label_columns, task, model,
            output_dir, epochs, max_steps, batch_size, learning_rate, seed: As for
            :func:`labelwise.train`: the data (paths, DataFrames, ``datasets.Dataset``,
            a ``DatasetDict``, lists of dicts) and the common keys; they override the
            config's.
        n_trials: Trials in all (default ``search.n_trials``; with ``join``, the number
            the study was started with).
        timeout: The search's wall-clock budget in seconds, per process (default
            ``search.timeout``): no trial starts after it, and with the Optuna backend the
            trial still running is stopped at it (PRUNED, with the reason), unless no trial
            has completed yet; Ray stops its trials at ``time_budget_s``.
        storage: Optuna storage URL (default: SQLite file ``OUTPUT/study.db``), e.g.
            ``postgresql://user:pass@host/db`` or ``journal:///shared/study.log``.
        study: Study name (default ``search.study_name`` or ``"labelwise"``).
        workers: Worker processes on this machine, each with its share of the cores.
        backend: ``"optuna"`` (default) or ``"ray"`` (default ``search.backend``).
        ray_address: The Ray cluster to join (``"auto"``, ``"HOST:PORT"``); default a local
            Ray started for the search.
        join: Add this process's trials to a study another machine started (Optuna with a
            shared storage); the study's data, labels and space must match.
        overwrite: Replace an output directory that holds something else.
        callbacks: ``transformers.TrainerCallback`` objects given to every trial's Trainer
            (Optuna backend, trials in this process).
        progress: Print the plan once and show a bar for tokenizing and for the trials
            (``tqdm.auto``), with the best value so far.
        verbose: Let Transformers', Optuna's and Ray's own bars, banners and INFO lines
            through (silenced by default).
        source: Config file name quoted in messages.

    Raises:
        PreflightError: Any preflight error; no trial starts.
        SchemaMismatchError: Resuming or joining a search with other data, labels or space.
        MissingDependencyError: The backend's or the storage's extra is not installed.
    """
    config, source = resolve_config(
        config, source=source, model=model, output_dir=output_dir,
        data={"train": train, "valid": valid, "test": test, "text_column": text_column,
              "text_pair_column": text_pair_column, "label_columns": label_columns,
              "task": task},
        train={"epochs": epochs, "max_steps": max_steps, "batch_size": batch_size,
               "learning_rate": learning_rate, "seed": seed})
    from labelwise.tuning._space import search_space

    reporter = current()
    search = config.search
    backend_name = backend or (search.backend if search else "optuna")
    storage = storage or (search.storage if search else None)
    _check_combination(backend_name, storage=storage, join=join, workers=workers)
    plan = preflight(config, source=source, search=True)
    from labelwise.training.tracking import check_report_to

    check_report_to(config.train.report_to)
    if callbacks and (backend_name == "ray" or (workers or (search.workers if search
                                                              else 1)) > 1):
        raise ConfigError("callbacks run in this process, but these trials run in others",
                          fix="use the optuna backend with one worker, or train.report_to "
                          "for tracking", code="LW338")
    out = _output_dir(config, overwrite)
    from labelwise.tuning._data import needs_files, with_data_files

    if needs_files(config) and (backend_name == "ray" or (workers or (
            search.workers if search else 1)) > 1):
        config = with_data_files(config, out / "data")
        plan = preflight(config, source=source, search=True)
    space, origin = search_space(config)
    plan.log()
    logger.info("space=%s (%s)", ", ".join(space), "config" if origin == "config" else
                "default space: see labelwise.tuning._space")
    if reporter is not None:
        reporter.plan(plan, extra=(f"space={', '.join(space)} ({origin})",))
    n = n_trials or (search.n_trials if search else 20)
    timeout = timeout or (search.timeout if search else None)
    name = study or (search.study_name if search else None)
    n_workers = workers or (search.workers if search else 1)
    from labelwise.tuning._storage import display_url

    (out / MARKER).write_text(json.dumps({"backend": backend_name, "storage": display_url(
        storage) if storage else None, "study": name, "join": join}) + "\n")
    runner: SearchBackend
    if backend_name == "ray":
        from labelwise.tuning._ray import RayBackend

        runner = RayBackend(address=ray_address, study_name=name, source=source,
                            verbose=verbose)
    else:
        from labelwise.tuning._optuna import OptunaBackend

        runner = OptunaBackend(storage=storage, study_name=name, workers=n_workers,
                               source=source, join=join, n_trials_given=n_trials is not None)
    from labelwise.training.tracking import search_run

    with search_run(config, out, name):  # one MLflow run, a nested run per trial
        result = runner.run(plan, space=space, output_dir=out, n_trials=n, timeout=timeout,
                            callbacks=callbacks)
    if search is not None and search.refit and not join:
        from labelwise.tuning._refit import refit_best

        refit_best(plan, space, result)
    return result


def _check_combination(backend: str, *, storage: str | None, join: bool,
                       workers: int | None) -> None:
    if backend not in ("optuna", "ray"):
        raise ConfigError(f"unknown backend {backend!r}", fix="use --backend optuna or "
                          "--backend ray", code="LW334")
    if backend != "ray":
        if join and not storage:
            raise ConfigError("--join needs the storage of the study to join",
                              fix="pass the first machine's --storage URL (postgresql://... "
                              "or journal:///shared/path)", code="LW334")
        return
    from labelwise.tuning._ray import _ray

    _ray()  # a missing extra is an error before anything is read or written
    for given, flag in ((storage, "--storage"), (join, "--join"), (workers and workers > 1,
                                                                   "--workers")):
        if given:
            raise ConfigError(f"{flag} is an Optuna backend option; Ray schedules its own "
                              "trials", fix=f"drop {flag}, or use --ray-address to run on a "
                              "Ray cluster", code="LW334")

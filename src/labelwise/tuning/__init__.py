"""Hyperparameter search: ``tune(config) -> SearchResult``.

Preflight checks everything once (data, the contract for every choice of the space, space
keys, objective) before the first trial; then a backend runs the trials. Optuna is the
embedded default.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path


from labelwise.plan.config import RunConfig, load_config
from labelwise.errors import ConfigError
from labelwise.outputs.safety import clear_dir, hold_output
from labelwise.outputs.names import TUNE_MARKER, no_output_dir
from labelwise.plan.preflight import preflight
from labelwise.tuning._base import SearchBackend, SearchResult, TrialRecord
from labelwise.plan.space import search_space
from labelwise.tuning._storage import display_url

__all__ = ["tune", "SearchResult", "TrialRecord", "SearchBackend"]

logger = logging.getLogger("labelwise")
MARKER = TUNE_MARKER


def output_files() -> tuple[str, ...]:
    """What a search writes into its output dir (what ``--overwrite`` may replace)."""
    from labelwise.outputs.model_dir import REPORT_NAME
    from labelwise.tuning._ray import KEY_FILE, SEAL_FILE

    return (MARKER, "study.db*", "trials.csv", "search.json", "best", ".best.*",
            ".worker.json", "ray", KEY_FILE, SEAL_FILE, REPORT_NAME)


def _output_dir(config: RunConfig, overwrite: bool, source: str | None) -> Path:
    """The output dir, refused before anything is loaded when it cannot take the search
    (see ``labelwise.outputs.safety``); one with ``tune.json`` is a search to resume."""
    from labelwise.outputs.safety import check_output_dir, check_replaceable

    if not config.output_dir:
        raise no_output_dir()
    out = check_output_dir(config.output_dir, inside=True)
    d = config.data
    check_replaceable(out, overwrite=overwrite, markers=[MARKER], known=output_files(),
                      inputs=[p for p in (d.train, d.valid, d.test, config.model.name_or_path,
                                          source) if p], resumable=True)
    return out


def tune(config: RunConfig | str | Path, *, n_trials: int | None = None,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int | None = None, backend: str | None = None,
         ray_address: str | None = None, join: bool = False, overwrite: bool = False,
         source: str | None = None) -> SearchResult:
    """Search hyperparameters; the best trial's model is written to ``OUTPUT/best/``.

    Re-running the same call resumes the search: finished trials are kept and new ones are
    added up to ``n_trials``.

    Args:
        config: A :class:`RunConfig` or the path of a YAML/TOML run config.
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
        overwrite: Start over: replace the output directory of an earlier search (only
            labelwise's files; see ``labelwise.outputs.safety``).
        source: Config file name quoted in messages.

    Raises:
        PreflightError: Any preflight error; no trial starts.
        SchemaMismatchError: Resuming or joining a search with other data, labels or space.
        MissingDependencyError: The backend's or the storage's extra is not installed.
        OutputError: The output dir is in use by another search, not writable, or holds
            files ``overwrite`` must not delete.
    """
    if not isinstance(config, RunConfig):
        source = source or str(config)
        config = load_config(config)
    search = config.search
    backend_name = backend or (search.backend if search else "optuna")
    storage = storage or (search.storage if search else None)
    _check_combination(backend_name, storage=storage, join=join, workers=workers)
    out = _output_dir(config, overwrite, source)
    lock = (contextlib.nullcontext() if join else  # --join processes share a study by design
            hold_output(out, command="labelwise tune"))
    with lock:
        out = _output_dir(config, overwrite, source)  # as it is now that it is ours
        return _tune_locked(config, out, backend_name=backend_name, storage=storage,
                            n_trials=n_trials, timeout=timeout, study=study, workers=workers,
                            ray_address=ray_address, join=join, overwrite=overwrite,
                            source=source)


def _tune_locked(config: RunConfig, out: Path, *, backend_name: str, storage: str | None,
                 n_trials: int | None, timeout: float | None, study: str | None,
                 workers: int | None, ray_address: str | None, join: bool,
                 overwrite: bool, source: str | None) -> SearchResult:
    from labelwise.outputs.safety import write_atomic
    from labelwise.tuning._space import search_space

    search = config.search
    from labelwise.training.device import device_facts

    plan = preflight(config, source=source, search=True, facts=device_facts())
    if overwrite:
        clear_dir(out)  # its contents, not the folder: it may be a mount point
    out.mkdir(parents=True, exist_ok=True)
    space, origin = search_space(config)
    plan.log()
    logger.info("space=%s (%s)", ", ".join(space), "config" if origin == "config" else
                "default space: see labelwise.plan.space")
    n = n_trials or (search.n_trials if search else 20)
    timeout = timeout or (search.timeout if search else None)
    name = study or (search.study_name if search else None)
    n_workers = workers or (search.workers if search else 1)

    write_atomic(out / MARKER, json.dumps({"backend": backend_name, "storage": display_url(
        storage) if storage else None, "study": name, "join": join}) + "\n")
    runner: SearchBackend
    if backend_name == "ray":
        from labelwise.tuning._ray import RayBackend

        runner = RayBackend(address=ray_address, study_name=name, source=source)
    else:
        from labelwise.tuning._optuna import OptunaBackend

        runner = OptunaBackend(storage=storage, study_name=name, workers=n_workers,
                               source=source, join=join, n_trials_given=n_trials is not None)
    result = runner.run(plan, space=space, output_dir=out, n_trials=n, timeout=timeout)
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

"""Hyperparameter search: ``tune(config) -> SearchResult``.

Preflight checks everything once (data, the contract for every choice of the space, space
keys, objective) before the first trial; then a backend runs the trials. Optuna is the
embedded default; ``backend=`` takes a registered name (:func:`register_backend`) or a
:class:`SearchBackend` instance such as ``OptunaBackend(storage=...)``.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.plan.config import RunConfig, load_config
from labelwise.errors import ConfigError
from labelwise.plan.preflight import preflight
from labelwise.tuning._base import (BackendOptions, SearchBackend, SearchResult, TrialCallback,
                                    TrialRecord, get_backend, register_backend,
                                    registered_backends)

__all__ = ["tune", "SearchResult", "TrialRecord", "SearchBackend", "TrialCallback",
           "BackendOptions", "register_backend", "registered_backends", "get_backend",
           "OptunaBackend", "RayBackend"]

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


def _make_optuna(options: BackendOptions) -> SearchBackend:
    from labelwise.tuning._optuna import OptunaBackend

    return OptunaBackend(storage=options.storage, study_name=options.study_name,
                         workers=options.workers, join=options.join,
                         n_trials_given=options.n_trials_given)


def _make_ray(options: BackendOptions) -> SearchBackend:
    from labelwise.tuning._ray import RayBackend

    return RayBackend(address=options.ray_address, study_name=options.study_name)


register_backend("optuna", _make_optuna, accepts=("storage", "workers", "join"))
register_backend("ray", _make_ray, accepts=("ray_address",))


def __getattr__(name: str) -> Any:  # the backends load optuna or ray on first use
    if name == "OptunaBackend":
        from labelwise.tuning._optuna import OptunaBackend

        return OptunaBackend
    if name == "RayBackend":
        from labelwise.tuning._ray import RayBackend

        return RayBackend
    raise AttributeError(f"module 'labelwise.tuning' has no attribute {name!r}")


def tune(config: RunConfig | str | Path, *, n_trials: int | None = None,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int | None = None, backend: str | SearchBackend | None = None,
         ray_address: str | None = None, join: bool = False, overwrite: bool = False,
         callbacks: Sequence[TrialCallback] = (), source: str | None = None) -> SearchResult:
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
            has completed yet (each Optuna process starts its first trial whatever the
            time); Ray stops its trials at ``time_budget_s`` (PRUNED, with the reason).
        storage: Optuna storage URL (default: SQLite file ``OUTPUT/study.db``), e.g.
            ``postgresql://user:pass@host/db`` or ``journal:///shared/study.log``.
        study: Study name (default ``search.study_name`` or ``"labelwise"``).
        workers: Worker processes on this machine, each with its share of the cores.
        backend: A registered name, ``"optuna"`` (default) or ``"ray"`` or one added with
            :func:`register_backend` (default ``search.backend``), or a
            :class:`SearchBackend` instance, e.g. ``OptunaBackend(storage=..., workers=2)``;
            an instance carries its own settings, so ``storage``, ``study``, ``workers``,
            ``join`` and ``ray_address`` (and their ``search.*`` keys) must then be unset.
        ray_address: The Ray cluster to join (``"auto"``, ``"HOST:PORT"``); default a local
            Ray started for the search.
        join: Add this process's trials to a study another machine started (Optuna with a
            shared storage); the study's data, labels and space must match.
        overwrite: Replace an output directory that holds something else.
        callbacks: Each is called with the :class:`TrialRecord` of every trial that
            finishes (COMPLETE, PRUNED or FAIL) during this call, once, in this process,
            whichever process or node ran the trial; trials finished by an earlier run
            that this call resumes are not passed again. One that raises is logged and the
            search goes on.
        source: Config file name quoted in messages.

    Raises:
        ConfigError: An unknown backend name (the message lists the registered ones), or
            an option the backend does not take.
        PreflightError: Any preflight error; no trial starts.
        SchemaMismatchError: Resuming or joining a search with other data, labels or space.
        MissingDependencyError: The backend's or the storage's extra is not installed.
    """
    from labelwise.tuning._space import search_space

    if not isinstance(config, RunConfig):
        source = source or str(config)
        config = load_config(config)
    search = config.search
    options = BackendOptions(study_name=study or (search.study_name if search else None),
                             storage=storage or (search.storage if search else None),
                             workers=workers or (search.workers if search else 1), join=join,
                             ray_address=ray_address, n_trials_given=n_trials is not None)
    # before anything is read or written: an unknown name, a missing extra, a bad option
    runner = get_backend(backend or (search.backend if search else "optuna"), options)
    plan = preflight(config, source=source, search=True)
    out = _output_dir(config, overwrite)
    space, origin = search_space(config)
    plan.log()
    logger.info("space=%s (%s)", ", ".join(space), "config" if origin == "config" else
                "default space: see labelwise.tuning._space")
    n = n_trials or (search.n_trials if search else 20)
    timeout = timeout or (search.timeout if search else None)
    from labelwise.tuning._storage import default_storage, display_url

    marker = {"backend": runner.name, "storage": display_url(options.storage)
              if options.storage else None, "study": options.study_name, "join": join}
    (out / MARKER).write_text(json.dumps(marker) + "\n")
    result = runner.run(plan, space=space, output_dir=out, n_trials=n, timeout=timeout,
                        callbacks=tuple(callbacks))
    if isinstance(backend, SearchBackend):  # an instance's own settings, for the dashboard
        marker.update(study=result.study_name, storage=None if result.storage == display_url(
            default_storage(out)) else result.storage)
        (out / MARKER).write_text(json.dumps(marker) + "\n")
    if search is not None and search.refit and not join:
        from labelwise.tuning._refit import refit_best

        refit_best(plan, space, result)
    return result


"""Hyperparameter search: ``tune(config) -> SearchResult``.

Preflight checks everything once (data, the contract for every choice of the space, space
keys, objective) before the first trial; then a backend runs the trials. Optuna is the
embedded default; ``backend=`` takes a registered name (:func:`register_backend`) or a
:class:`SearchBackend` instance such as ``OptunaBackend(storage=...)``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.plan.config import RunConfig, config_from_call
from labelwise.errors import ConfigError
from labelwise.outputs.safety import clear_dir, hold_output
from labelwise.outputs.names import TUNE_MARKER, no_output_dir
from labelwise.plan.preflight import preflight
from labelwise.training.progress import current, presented
from labelwise.tuning._base import (BackendOptions, SearchBackend, SearchResult, TrialCallback,
                                    TrialRecord, get_backend, register_backend,
                                    registered_backends)
from labelwise.plan.space import search_space
from labelwise.tuning._budget import trial_length
from labelwise.tuning._storage import default_storage, display_url

__all__ = ["tune", "SearchResult", "TrialRecord", "SearchBackend", "TrialCallback",
           "BackendOptions", "register_backend", "registered_backends", "get_backend",
           "OptunaBackend", "RayBackend"]

logger = logging.getLogger("labelwise")
MARKER = TUNE_MARKER
# n_trials when only search.timeout is given: the timeout ends the search
TRIALS_UNTIL_TIMEOUT = 1000


def output_files() -> tuple[str, ...]:
    """What a search writes into its output dir (what ``--overwrite`` may replace)."""
    from labelwise.outputs.model_dir import REPORT_NAME
    from labelwise.tuning._ray import KEY_FILE, SEAL_FILE

    from labelwise.training.tracking import LOGS
    from labelwise.tuning._data import DATA_DIR

    return (MARKER, "study.db*", "trials.csv", "search.json", "best", ".best.*",
            ".worker.json", "ray", KEY_FILE, SEAL_FILE, REPORT_NAME, LOGS, DATA_DIR)


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
                                          source) if isinstance(p, (str, Path)) and p],
                      resumable=True)
    return out


def _make_optuna(options: BackendOptions) -> SearchBackend:
    from labelwise.tuning._optuna import OptunaBackend

    return OptunaBackend(storage=options.storage, study_name=options.study_name,
                         workers=options.workers, join=options.join,
                         n_trials_given=options.n_trials_given,
                         trainer_callbacks=options.trainer_callbacks)


def _make_ray(options: BackendOptions) -> SearchBackend:
    from labelwise.tuning._ray import RayBackend

    return RayBackend(address=options.ray_address, study_name=options.study_name,
                      verbose=options.verbose)


register_backend("optuna", _make_optuna,
                 accepts=("storage", "workers", "join", "trainer_callbacks"))
register_backend("ray", _make_ray, accepts=("ray_address",))


def __getattr__(name: str) -> Any:  # the backends load optuna or ray on first use
    if name == "OptunaBackend":
        from labelwise.tuning._optuna import OptunaBackend

        return OptunaBackend
    if name == "RayBackend":
        from labelwise.tuning._ray import RayBackend

        return RayBackend
    raise AttributeError(f"module 'labelwise.tuning' has no attribute {name!r}")


@presented
def tune(config: Any = None, *, train: Any = None, valid: Any = None, test: Any = None,
         text_column: str | None = None, text_pair_column: str | None = None,
         label_columns: str | Sequence[str] | None = None, task: str | None = None,
         model: str | None = None, output_dir: str | Path | None = None,
         epochs: float | None = None, max_steps: int | None = None,
         batch_size: int | None = None, learning_rate: float | None = None,
         seed: int | None = None, n_trials: int | None = None,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int | None = None, backend: str | SearchBackend | None = None,
         ray_address: str | None = None, join: bool = False, overwrite: bool = False,
         callbacks: Sequence[TrialCallback] = (), trainer_callbacks: Sequence[Any] = (),
         progress: bool = True, verbose: bool = False,
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
            the study was started with; with a ``timeout`` and no ``n_trials`` anywhere,
            the timeout ends the search).
        timeout: The search's wall-clock budget in seconds, per process (default
            ``search.timeout``): no trial starts after it, and with the Optuna backend the
            trial still running is stopped at it (PRUNED, with the reason), unless no trial
            has completed yet (each Optuna process starts its first trial whatever the
            time); Ray stops its trials at ``time_budget_s`` (PRUNED, with the reason).
            When the config leaves ``train.epochs``, ``train.evals_per_epoch`` and
            ``train.max_steps`` unset, the budget and the speed measured on the first
            steps decide them for every trial (:mod:`labelwise.plan.budget`; the plan
            says what and why).
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
        overwrite: Start over: replace the output directory of an earlier search (only
            labelwise's files; see ``labelwise.outputs.safety``).
        callbacks: Each is called with the :class:`TrialRecord` of every trial that
            finishes (COMPLETE, PRUNED or FAIL) during this call, once, in this process,
            whichever process or node ran the trial; trials finished by an earlier run
            that this call resumes are not passed again. One that raises is logged and the
            search goes on.
        trainer_callbacks: ``transformers.TrainerCallback`` objects given to every trial's
            Trainer: backends whose trials run in this process (the Optuna backend with
            one worker).
        progress: Print the plan once and show a bar for tokenizing and for the trials
            (``tqdm.auto``), with the best value so far.
        verbose: Let Transformers', Optuna's and Ray's own bars, banners and INFO lines
            through (silenced by default).
        source: Config file name quoted in messages.

    Raises:
        ConfigError: An unknown backend name (the message lists the registered ones), or
            an option the backend does not take.
        PreflightError: Any preflight error; no trial starts.
        SchemaMismatchError: Resuming or joining a search with other data, labels or space.
        MissingDependencyError: The backend's or the storage's extra is not installed.
        OutputError: The output dir is in use by another search, not writable, or holds
            files ``overwrite`` must not delete.
    """
    config, source = config_from_call(config, locals(), source=source)
    search = config.search
    options = BackendOptions(study_name=study or (search.study_name if search else None),
                             storage=storage or (search.storage if search else None),
                             workers=workers or (search.workers if search else 1), join=join,
                             ray_address=ray_address, trainer_callbacks=tuple(trainer_callbacks),
                             n_trials_given=n_trials is not None, verbose=verbose)
    # before anything is read or written: an unknown name, a missing extra, a bad option
    runner = get_backend(backend or (search.backend if search else "optuna"), options)
    if getattr(runner, "trainer_callbacks", ()) and not runner.trials_in_process:
        raise ConfigError("trainer callbacks run in this process, but this backend runs its "
                          "trials in others", fix="use the optuna backend with one worker, "
                          "or train.report_to for tracking", code="LW338")
    out = _output_dir(config, overwrite, source)
    lock = (contextlib.nullcontext() if join else  # --join processes share a study by design
            hold_output(out, command="labelwise tune"))
    with lock:
        out = _output_dir(config, overwrite, source)  # as it is now that it is ours
        return _tune_locked(config, out, runner=runner, options=options, backend=backend,
                            n_trials=n_trials, timeout=timeout, join=join,
                            overwrite=overwrite, callbacks=callbacks, source=source)


def _parallel(runner: SearchBackend, config: RunConfig) -> int:
    """Trials that run at once: ``--workers`` processes, or Ray's concurrent trials."""
    import os

    if runner.name == "ray":
        settings = config.search.ray if config.search else None
        cores = len(os.sched_getaffinity(0))
        per = settings.cpus_per_trial if settings else 1.0
        most = max(1, int(cores // per))
        limit = settings.max_concurrent_trials if settings else None
        return min(most, limit) if limit else most
    return max(1, int(getattr(runner, "workers", 1) or 1))


def _saved_budget(out: Path) -> dict[str, Any] | None:
    """The trial budget a search being resumed chose (its ``tune.json``)."""
    try:
        return json.loads((out / MARKER).read_text()).get("budget")
    except (OSError, ValueError, AttributeError):
        return None


def _tune_locked(config: RunConfig, out: Path, *, runner: SearchBackend,
                 options: BackendOptions, backend: str | SearchBackend | None,
                 n_trials: int | None, timeout: float | None, join: bool, overwrite: bool,
                 callbacks: Sequence[TrialCallback], source: str | None) -> SearchResult:
    from labelwise.outputs.safety import write_atomic
    from labelwise.training.device import device_facts
    from labelwise.training.tracking import check_report_to, search_run
    from labelwise.tuning._data import needs_files, with_data_files

    search = config.search
    train_fields = set(config.train.model_fields_set)  # before any copy of the config
    trials_given = n_trials is not None or (search is not None and
                                            "n_trials" in search.model_fields_set)
    facts = device_facts()
    plan = preflight(config, source=source, search=True, facts=facts)
    check_report_to(config.train.report_to)
    if overwrite:
        clear_dir(out)  # its contents, not the folder: it may be a mount point
    out.mkdir(parents=True, exist_ok=True)
    if needs_files(config) and not runner.trials_in_process:
        # the trials' processes re-read the config: in-memory splits go to files first
        config = with_data_files(config, out)
        plan = preflight(config, source=source, search=True, facts=facts)
    space, origin = search_space(config, model_config=plan.model.config or {})
    n = n_trials or (search.n_trials if search else 20)
    timeout = timeout or (search.timeout if search else None)
    said = [f"space={', '.join(space)} ({origin})"]
    if timeout and not trials_given and not join:  # a budget alone: it ends the search
        n = TRIALS_UNTIL_TIMEOUT
        said.append(f"n_trials={n} (not given: search.timeout ends the search)")
    plan, budget = trial_length(plan, space, timeout=timeout, n_trials=n,
                                parallel=_parallel(runner, config), join=join,
                                train_fields=train_fields, saved=_saved_budget(out))
    plan.log()
    for line in said:
        logger.info("%s", line)
    reporter = current()
    if reporter is not None:
        reporter.plan(plan, extra=tuple(said))
    marker = {"backend": runner.name, "storage": display_url(options.storage)
              if options.storage else None, "study": options.study_name, "join": join}
    if budget is not None:  # the trial length chosen from the budget, reused on resume
        marker["budget"] = budget.to_dict()
    write_atomic(out / MARKER, json.dumps(marker) + "\n")
    with search_run(config, out, options.study_name):  # one MLflow run, one nested a trial
        result = runner.run(plan, space=space, output_dir=out, n_trials=n, timeout=timeout,
                            callbacks=tuple(callbacks))
    if isinstance(backend, SearchBackend):  # an instance's own settings, for the dashboard
        marker.update(study=result.study_name, storage=None if result.storage == display_url(
            default_storage(out)) else result.storage)
        write_atomic(out / MARKER, json.dumps(marker) + "\n")
    if search is not None and search.refit and not join:
        from labelwise.tuning._refit import refit_best

        refit_best(plan, space, result)
    return result


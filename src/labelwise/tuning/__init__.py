"""Hyperparameter search: ``tune(config) -> SearchResult``.

Preflight checks everything once (data, the contract for every choice of the space, space
keys, objective) before the first trial; then a backend runs the trials. Optuna is the
embedded default.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path


from labelwise.config import RunConfig, load_config
from labelwise.errors import ConfigError
from labelwise._preflight import preflight
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


def tune(config: RunConfig | str | Path, *, n_trials: int | None = None,
         timeout: float | None = None, storage: str | None = None, study: str | None = None,
         workers: int | None = None, overwrite: bool = False, source: str | None = None
         ) -> SearchResult:
    """Search hyperparameters; the best trial's model is written to ``OUTPUT/best/``.

    Re-running the same call resumes the study: finished trials are kept and new ones are
    added up to ``n_trials``.

    Args:
        config: A :class:`RunConfig` or the path of a YAML/TOML run config.
        n_trials: Trials in all (default ``search.n_trials``).
        timeout: Stop starting new trials after this many seconds (per worker).
        storage: Optuna storage URL (default: SQLite file ``OUTPUT/study.db``).
        study: Study name (default ``search.study_name`` or ``"labelwise"``).
        workers: Worker processes on this machine, each with its share of the cores.
        overwrite: Replace an output directory that holds something else.
        source: Config file name quoted in messages.

    Raises:
        PreflightError: Any preflight error; no trial starts.
        SchemaMismatchError: Resuming a study with other data, labels or space.
    """
    from labelwise.tuning._space import search_space

    if not isinstance(config, RunConfig):
        source = source or str(config)
        config = load_config(config)
    plan = preflight(config, source=source, search=True)
    search = config.search
    out = _output_dir(config, overwrite)
    space, origin = search_space(config)
    plan.log()
    logger.info("space=%s (%s)", ", ".join(space), "config" if origin == "config" else
                "default space: see labelwise.tuning._space")
    n = n_trials or (search.n_trials if search else 20)
    backend_name = search.backend if search else "optuna"
    storage = storage or (search.storage if search else None)
    name = study or (search.study_name if search else None)
    n_workers = workers or (search.workers if search else 1)
    (out / MARKER).write_text(json.dumps({"backend": backend_name, "storage": storage,
                                          "study": name}) + "\n")
    backend: SearchBackend
    if backend_name == "ray":
        from labelwise.tuning._ray import RayBackend

        backend = RayBackend(source=source)
    else:
        from labelwise.tuning._optuna import OptunaBackend

        backend = OptunaBackend(storage=storage, study_name=name, workers=n_workers,
                                source=source)
    result = backend.run(plan, space=space, output_dir=out, n_trials=n, timeout=timeout)
    if search is not None and search.refit:
        from labelwise.tuning._refit import refit_best

        refit_best(plan, space, result)
    return result



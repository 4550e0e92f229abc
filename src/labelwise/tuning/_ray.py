"""The Ray Tune backend (``--backend ray``, extra ``labelwise[ray]``).

Same config, same preflight, same ``trials.csv`` and ``best/`` as the Optuna backend, run by
``ray.tune.Tuner``: an Optuna TPE (or random) searcher built from the same space, an ASHA
scheduler fed by the same per-evaluation reports (``search.pruner: none`` runs every trial
to the end), per-trial CPUs/GPUs from ``search.ray``, ``FailureConfig(max_failures=0)`` so a
failed trial is recorded and the run goes on, and no model checkpoints in Ray's storage:
a finished trial publishes ``OUTPUT/best/`` only when it beats the best so far, so the disk
holds one model however many trials run. Re-running the command restores an interrupted
run (``Tuner.restore``): finished trials are kept, unfinished ones run again (the search
state is saved every second, ``TUNE_GLOBAL_CHECKPOINT_S``, not Ray's default 10 s).

Preflight runs once, on the driver, before Ray starts. Each trial carries the search key
(schema fingerprint, data fingerprints, space, objective); a Ray worker re-reads the data
(a second or less) and refuses to run when it yields another key. On a multi-node cluster
the data paths and ``output_dir`` must be on storage every node sees (as Ray requires of its
``storage_path``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from labelwise.plan.config import RayConfig, RunConfig, config_from_dict
from labelwise.errors import SchemaMismatchError, require
from labelwise.plan.preflight import Plan
from labelwise.training.tracking import LOGS, tracking_callbacks
from labelwise.tuning._progress import SearchProgress
from labelwise.tuning._base import SearchBackend, SearchResult, TrialRecord
from labelwise.tuning._output import finish_best, write_trials_csv
from labelwise.tuning._runner import failure_reason, key_difference, study_key

__all__ = ["RayBackend", "absolute_config"]

logger = logging.getLogger("labelwise")
KEY_FILE = "search_key.json"
FAIL_FILE = "fail_reason.txt"
ENV_PASSED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "LABELWISE_CACHE",
              "MLFLOW_TRACKING_URI")
_RUNNERS: dict[str, Any] = {}  # one TrialRunner per search in a reused Ray actor


def _ray() -> Any:
    return require("ray", "ray.tune", what="the ray backend needs Ray Tune", extra="ray")


def absolute_config(config: RunConfig) -> RunConfig:
    """The config with data, model and output paths made absolute (Ray workers run in
    other directories, other processes and maybe on other nodes)."""
    data = config.model_dump(mode="json")
    for key in ("train", "valid", "test"):
        if data["data"].get(key):
            data["data"][key] = str(Path(data["data"][key]).resolve())
    name = data["model"].get("name_or_path")
    if name and Path(name).exists():
        data["model"]["name_or_path"] = str(Path(name).resolve())
    if data.get("output_dir"):
        data["output_dir"] = str(Path(data["output_dir"]).resolve())
    return config_from_dict(data)


def _optuna_space(space: dict[str, Any]) -> dict[str, Any]:
    from optuna.distributions import (CategoricalDistribution, FloatDistribution,
                                      IntDistribution)

    from labelwise.plan.config import FloatDistribution as F
    from labelwise.plan.config import IntDistribution as I

    out: dict[str, Any] = {}
    for key, dist in space.items():
        if isinstance(dist, F):
            out[key] = FloatDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
        elif isinstance(dist, I):
            out[key] = IntDistribution(dist.low, dist.high, log=dist.log, step=dist.step)
        else:
            out[key] = CategoricalDistribution(list(dist.choices))
    return out


def _max_reports(config: RunConfig, space: dict[str, Any]) -> int:
    """An upper bound on the reports of one trial: one per evaluation."""
    from labelwise.plan.config import CategoricalDistribution as C
    from labelwise.plan.config import FloatDistribution as F

    epochs = [config.train.epochs]
    dist = space.get("train.epochs")
    if isinstance(dist, C):
        epochs = [float(c) for c in dist.choices]
    elif isinstance(dist, F):
        epochs = [dist.high]
    return max(1, math.ceil(max(epochs) * config.train.evals_per_epoch) + 1)


def _trial_number(trial_dir: str) -> int:
    match = re.match(r"trial_(\d+)_", Path(trial_dir).name)
    return int(match.group(1)) - 1 if match else -1


def _runner_for(spec: dict[str, Any]) -> Any:
    """The TrialRunner of this search in this Ray worker: data read, checked against the
    search key, tokenized and the base weights loaded once per actor."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    if digest in _RUNNERS:
        return _RUNNERS[digest]
    _RUNNERS.clear()
    for name in ("transformers", "accelerate"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from labelwise.plan.preflight import preflight
    from labelwise.tuning._runner import TrialRunner
    from labelwise.tuning._space import search_space

    config = config_from_dict(spec["config"])
    plan = preflight(config, source=spec.get("source"), search=True)
    space, _ = search_space(config)
    key = study_key(plan, space)
    if key != spec["key"]:
        changed, detail = key_difference(spec["key"], key)
        raise SchemaMismatchError(f"this worker's data yields other {', '.join(changed)} than "
                                  f"the driver's ({detail})", where=f"node "
                                  f"{socket.gethostname()}", fix="give every node the same "
                                  "data files at the same paths", code="LW354")
    runner = TrialRunner(plan, space, threads=max(1, int(spec["cpus"])))
    _RUNNERS[digest] = runner
    return runner


def run_trial(config: dict[str, Any], spec: dict[str, Any]) -> None:
    """The Ray trainable: one trial of the search (see the module docstring)."""
    from ray import tune

    from labelwise.training._memory import frozen_heap
    from labelwise.scoring.metrics import primary_metrics
    from labelwise.tuning._runner import eval_reporter, save_if_best

    trial_name = Path(tune.get_context().get_trial_dir()).name
    trial_dir = Path(spec["experiment"]) / trial_name  # in the search's storage
    number = _trial_number(trial_name)
    metric, direction = spec["key"]["objective"]
    try:
        runner = _runner_for(spec)
        params = {k: config[k] for k in runner.space}

        def on_eval(value: float, state: Any, reporter: Any) -> None:
            if state.global_step < state.max_steps:  # the last one is the final report
                tune.report({"objective": value, "step": state.global_step,
                             "step_seconds": round(reporter.step_seconds, 3)})

        with frozen_heap():  # the runner's data and weights: out of the trial's collections
            tracking = tracking_callbacks(runner.plan.config.train.report_to,
                                          logs_dir=Path(spec["output_dir"]) / LOGS,
                                          run_name=f"trial-{number}")
            outcome = runner.run(params, callbacks=(eval_reporter(metric, on_eval),
                                                    *tracking))
        save_if_best(outcome, number=number, direction=direction,
                     output_dir=Path(spec["output_dir"]), tokenizer=runner.prepared.tokenizer,
                     extra={"params": params, "study": spec["name"], "backend": "ray"})
    except Exception as exc:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / FAIL_FILE).write_text(failure_reason(exc) + "\n")
        raise
    tune.report({"objective": outcome.value, "final": 1, "step": outcome.steps,
                 "step_seconds": round(outcome.step_seconds, 3),
                 "duration_s": round(outcome.seconds, 3), "seed": runner.plan.config.train.seed,
                 "schema_fingerprint": spec["key"]["schema_fingerprint"],
                 **{f"valid_{k}": v for k, v in primary_metrics(outcome.metrics).items()}})


def _records(grid: Any, space: dict[str, Any], metric: str) -> list[TrialRecord]:
    out = []
    for result in grid:
        path = Path(result.path)
        number = _trial_number(str(path))
        m = dict(result.metrics or {})
        params = {k: (result.config or {}).get(k) for k in space}
        reports = int(m.get("training_iteration") or 0)
        if result.error is not None:
            fail = path / FAIL_FILE
            cause = getattr(result.error, "cause", None) or result.error
            reason = fail.read_text().strip() if fail.exists() else failure_reason(cause)
            state, value = "FAIL", None
        elif m.get("final"):
            state, value, reason = "COMPLETE", m.get("objective"), ""
        elif reports:
            state, value = "PRUNED", None
            reason = (f"stopped by ASHA after {reports} evaluation(s): "
                      f"{metric}={m.get('objective', float('nan')):.4f}")
        else:
            state, value, reason = "WAITING", None, ""
        metrics = {k.removeprefix("valid_"): v for k, v in m.items() if k.startswith("valid_")}
        duration = m.get("duration_s", m.get("time_total_s"))
        out.append(TrialRecord(number=number, state=state, params=params, value=value,
                               metrics=metrics, duration_s=duration,
                               step_seconds=m.get("step_seconds"), seed=m.get("seed"),
                               reason=reason))
    return sorted(out, key=lambda r: r.number)


def _log_callback(progress: SearchProgress) -> Any:
    from ray.tune import Callback

    class Log(Callback):
        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any
                              ) -> None:
            last = trial.last_result or {}
            number = _trial_number(trial.local_path or "")
            if last.get("final"):
                progress.finished(number, "COMPLETE", float(last["objective"]), trial.config)
            else:
                progress.finished(number, "PRUNED", None, trial.config,
                                  reason=f"stopped by ASHA after "
                                  f"{last.get('training_iteration')} evaluation(s)")

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any
                           ) -> None:
            progress.finished(_trial_number(trial.local_path or ""), "FAIL", None, trial.config)

    return Log()


def _quiet_ray(verbose: bool) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` and the logger levels that keep Ray's banners,
    INFO lines and warnings out of a search's output (``verbose``: let them through)."""
    if verbose:
        return {}
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "ray._private"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return {"logging_level": logging.ERROR}


class RayBackend(SearchBackend):
    """Ray Tune: a local Ray, or the cluster at ``address``."""

    name = "ray"

    def __init__(self, *, address: str | None = None, study_name: str | None = None,
                 source: str | None = None, verbose: bool = False) -> None:
        self.address = address
        self.study_name = study_name
        self.source = source
        self.verbose = verbose

    def run(self, plan: Plan, *, space: dict[str, Any], output_dir: Path, n_trials: int,
            timeout: float | None, callbacks: tuple[Any, ...] = ()) -> SearchResult:
        ray = _ray()
        import optuna
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
        from ray.tune.search.optuna import OptunaSearch

        settings = plan.config.search.ray if plan.config.search else RayConfig()
        name = self.study_name or "labelwise"
        experiment = output_dir.resolve() / "ray" / name
        key = study_key(plan, space)
        self._check_key(output_dir, key, name)
        config = absolute_config(plan.config)
        spec = {"config": config.model_dump(mode="json"), "source": self.source, "key": key,
                "output_dir": str(output_dir.resolve()), "name": name,
                "experiment": str(experiment),
                "cpus": settings.cpus_per_trial}
        address = self.address or settings.address
        if not ray.is_initialized():
            env = {k: os.environ[k] for k in ENV_PASSED if k in os.environ}
            kwargs: dict[str, Any] = {"runtime_env": {"env_vars": env},
                                      "log_to_driver": False, "include_dashboard": False,
                                      **_quiet_ray(self.verbose)}
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(num_cpus=len(os.sched_getaffinity(0)),
                         object_store_memory=200 * 1024 * 1024, **kwargs)
        metric, direction = plan.objective
        mode = "max" if direction == "maximize" else "min"
        search = plan.config.search
        seed = search.seed if search else 42
        sampler = (optuna.samplers.RandomSampler(seed=seed) if search and
                   search.sampler == "random" else
                   optuna.samplers.TPESampler(seed=seed, n_startup_trials=5))
        scheduler = (FIFOScheduler() if search and search.pruner == "none" else
                     ASHAScheduler(max_t=_max_reports(plan.config, space),
                                   grace_period=settings.grace_period,
                                   reduction_factor=settings.reduction_factor))
        logger.info("ray=%s, %g CPU and %g GPU a trial, %s (%s)", address or "a local Ray",
                    settings.cpus_per_trial, settings.gpus_per_trial,
                    type(scheduler).__name__, "search.ray and search.pruner")
        trainable = tune.with_resources(tune.with_parameters(run_trial, spec=spec),
                                        {"cpu": settings.cpus_per_trial,
                                         "gpu": settings.gpus_per_trial})
        # Ray saves the search state at most every 10 s by default; a trial that finished
        # in that window would run again after a restore. Trials take minutes, a save ms.
        os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "1")
        started = time.perf_counter()
        progress = SearchProgress(n_trials=n_trials, metric=metric, direction=direction,
                                  timeout=timeout)
        progress.start()
        if tune.Tuner.can_restore(str(experiment)):
            logger.info("restoring the Ray search at %s", experiment)
            tuner = tune.Tuner.restore(str(experiment), trainable, resume_unfinished=True,
                                       resume_errored=False, restart_errored=False)
        else:
            tuner = tune.Tuner(
                trainable,
                tune_config=tune.TuneConfig(
                    metric="objective", mode=mode, num_samples=n_trials,
                    search_alg=OptunaSearch(space=_optuna_space(space), metric="objective",
                                            mode=mode, sampler=sampler),
                    scheduler=scheduler, time_budget_s=timeout, reuse_actors=True,
                    max_concurrent_trials=settings.max_concurrent_trials,
                    trial_dirname_creator=lambda t: f"trial_{t.experiment_tag.split('_')[0]}"
                                                    f"_{t.trial_id}"),
                run_config=tune.RunConfig(
                    name=name, storage_path=str(experiment.parent), verbose=0,
                    failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                    checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
                    callbacks=[_log_callback(progress)]))
        try:
            grid = tuner.fit()
        finally:
            progress.close()
        records = _records(grid, space, metric)
        write_trials_csv(records, output_dir / "trials.csv", space)
        return finish_best(plan, space, records, output_dir=output_dir,
                           storage=f"ray:{experiment}", study_name=name,
                           wall_seconds=time.perf_counter() - started)

    @staticmethod
    def _check_key(output_dir: Path, key: dict[str, Any], name: str) -> None:
        path = output_dir / KEY_FILE
        if path.exists():
            saved = json.loads(path.read_text())
            if saved != key:
                changed, detail = key_difference(saved, key)
                raise SchemaMismatchError(f"search '{name}' was started with other "
                                          f"{', '.join(changed)} ({detail})",
                                          where=f"file {path}", fix="use the same data, "
                                          "labels and space to resume, or another "
                                          "--output-dir", code="LW351")
        else:
            path.write_text(json.dumps(key, indent=2) + "\n")

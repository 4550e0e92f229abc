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

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from labelwise.plan.config import RayConfig, RunConfig, config_from_dict
from labelwise.errors import SchemaMismatchError, require
from labelwise.plan.preflight import Plan
from labelwise.training.tracking import LOGS, tracking_callbacks
from labelwise.tuning._progress import SearchProgress
from labelwise.tuning._base import (FINISHED, SearchBackend, SearchResult, TrialCallback,
                                    TrialRecord, notify)
from labelwise.tuning._output import finish_best, write_trials_csv
from labelwise.tuning._runner import failure_reason, key_difference, study_key

__all__ = ["RayBackend", "absolute_config"]

logger = logging.getLogger("labelwise")
KEY_FILE = "search_key.json"
SEAL_FILE = "ray_state.json"  # the sha256 of the tuner.pkl this search's Tuner wrote
FAIL_FILE = "fail_reason.txt"
STOP_FILE = "stop_reason.txt"  # why Ray stopped a trial early (ASHA, or the time budget)
ENV_PASSED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HOME", "LABELWISE_CACHE",
              "MLFLOW_TRACKING_URI")
_RUNNERS: dict[str, Any] = {}  # one TrialRunner per search in a reused Ray actor


@dataclasses.dataclass
class _Live:
    """The running call of a search: its callbacks, the trials handed to them, and when its
    time budget ends (``time.monotonic()``)."""

    callbacks: tuple[TrialCallback, ...]
    timeout: float | None
    deadline: float
    progress: SearchProgress
    seen: set[int] = dataclasses.field(default_factory=set)


_LIVE: dict[str, _Live] = {}  # experiment dir -> the running call


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
    from labelwise.plan.space import search_space

    from labelwise.training.device import device_facts

    config = config_from_dict(spec["config"])
    # the GPUs Ray granted this trial (search.ray.gpus_per_trial; none: the CPU)
    plan = preflight(config, source=spec.get("source"), search=True,
                     facts=device_facts(gpus=spec.get("gpus")))
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
    runner = None
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
        final = {"objective": outcome.value, "steps": outcome.steps,
                 "step_seconds": outcome.step_seconds, "seconds": outcome.seconds,
                 "seed": runner.plan.config.train.seed,
                 "metrics": primary_metrics(outcome.metrics),
                 "findings": json.dumps(outcome.diagnosis.to_dict()["findings"]
                                        if outcome.diagnosis is not None else [])}
        del outcome
    except Exception as exc:
        trial_dir.mkdir(parents=True, exist_ok=True)
        (trial_dir / FAIL_FILE).write_text(failure_reason(exc) + "\n")
        raise
    finally:
        if runner is not None:
            runner.release()  # the trial's memory, and the CUDA cache
    tune.report({"objective": final["objective"], "final": 1, "step": final["steps"],
                 "step_seconds": round(final["step_seconds"], 3),
                 "duration_s": round(final["seconds"], 3), "seed": final["seed"],
                 "schema_fingerprint": spec["key"]["schema_fingerprint"],
                 "findings": final["findings"],
                 **{f"valid_{k}": v for k, v in final["metrics"].items()}})


def _record(path: Path, metrics: dict[str, Any] | None, config: dict[str, Any] | None,
            error: BaseException | None, space: dict[str, Any], metric: str) -> TrialRecord:
    """One trial as a :class:`TrialRecord`, from its directory in the search's storage
    (``path``), its last reported metrics, its config and its error, if any."""
    m = dict(metrics or {})
    params = {k: (config or {}).get(k) for k in space}
    reports = int(m.get("training_iteration") or 0)
    stop = path / STOP_FILE
    if error is not None:
        fail = path / FAIL_FILE
        cause = getattr(error, "cause", None) or error
        reason = fail.read_text().strip() if fail.exists() else failure_reason(cause)
        state, value = "FAIL", None
    elif m.get("final"):
        state, value, reason = "COMPLETE", m.get("objective"), ""
    elif stop.exists():
        state, value, reason = "PRUNED", None, stop.read_text().strip()
    elif reports:
        state, value = "PRUNED", None
        reason = (f"stopped by ASHA after {reports} evaluation(s): "
                  f"{metric}={m.get('objective', float('nan')):.4f}")
    else:
        state, value, reason = "WAITING", None, ""
    valid = {k.removeprefix("valid_"): v for k, v in m.items() if k.startswith("valid_")}
    duration = m.get("duration_s", m.get("time_total_s"))
    return TrialRecord(number=_trial_number(str(path)), state=state, params=params,
                       value=value, metrics=valid, duration_s=duration,
                       step_seconds=m.get("step_seconds"), seed=m.get("seed"), reason=reason,
                       findings=tuple(json.loads(m.get("findings") or "[]")))


def _records(grid: Any, space: dict[str, Any], metric: str) -> list[TrialRecord]:
    """The trials of a search that has ended; trials that never started (the time budget
    ended the search first) are left out."""
    out = [_record(Path(r.path), r.metrics, r.config, r.error, space, metric) for r in grid]
    return sorted((r for r in out if r.state != "WAITING"), key=lambda r: r.number)


def _stopped(experiment: Path, path: Path, trial: Any) -> None:
    """Record why Ray stopped a trial that had not finished: the time budget (reached) or
    ASHA (before it). A trial that never started leaves no record."""
    live = _LIVE.get(str(experiment))
    reports = int((trial.last_result or {}).get("training_iteration") or 0)
    if live is None or (trial.last_result or {}).get("final") or str(trial.status) == "PENDING":
        return
    if live.timeout is not None and time.monotonic() >= live.deadline:
        when = f"after {reports} evaluation(s)" if reports else "before its first evaluation"
        reason = f"stopped {when}: the search timeout ({live.timeout:g} s) was reached"
    elif reports:
        return  # ASHA: _record words it from the last report
    else:
        reason = "stopped before its first evaluation"
    path.mkdir(parents=True, exist_ok=True)
    (path / STOP_FILE).write_text(reason + "\n")


def _announce(experiment: Path, record: TrialRecord) -> None:
    """Report a finished trial once: its lines (:class:`SearchProgress`: the log and a
    Python caller's trials bar) and its record to the running call's search callbacks."""
    from labelwise.scoring.diagnosis import brief

    if record.state not in FINISHED:
        return
    live = _LIVE.get(str(experiment))
    found = brief(record.findings)
    if live is None:  # no running call in this process: the log only
        value = f" value={record.value:.4f}" if record.value is not None else ""
        logger.info("trial %d %s%s params=%s%s%s", record.number, record.state, value,
                    record.params, f" [{record.reason}]" if record.reason else "",
                    f" — {found}" if found else "")
        return
    if record.number in live.seen:
        return
    live.seen.add(record.number)
    live.progress.finished(record.number, record.state, record.value, record.params,
                           reason=record.reason, note=found)
    notify(live.callbacks, record)


def _driver_callback(metric: str, space: dict[str, Any], experiment: Path) -> Any:
    """Reports each finished trial and hands its record to the search callbacks.

    Ray pickles its callbacks with the search and a restore brings back the pickled ones,
    so this one holds no callbacks of its own: it finds the running call's in ``_LIVE``."""
    from ray.tune import Callback

    class Driver(Callback):
        def _finished(self, trial: Any, error: BaseException | None) -> None:
            import importlib

            here = importlib.import_module("labelwise.tuning._ray")  # live, also after a restore

            path = experiment / Path(trial.local_path or trial.path or "").name
            if error is None:
                here._stopped(experiment, path, trial)
            record = here._record(path, trial.last_result, trial.config, error, space, metric)
            here._announce(experiment, record)

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any
                              ) -> None:
            self._finished(trial, None)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any
                           ) -> None:
            self._finished(trial, trial.get_error() or RuntimeError("the trial failed"))

    return Driver()


def _tuner_digest(experiment: Path) -> str:
    return hashlib.sha256((experiment / "tuner.pkl").read_bytes()).hexdigest()


def seal(output_dir: Path, experiment: Path) -> None:
    """Record the sha256 of the ``tuner.pkl`` that this search's ``Tuner`` just wrote."""
    from labelwise.outputs.safety import write_atomic

    write_atomic(output_dir / SEAL_FILE, json.dumps(
        {"experiment": str(experiment), "tuner_sha256": _tuner_digest(experiment)}) + "\n")


def check_sealed(output_dir: Path, experiment: Path) -> None:
    """Refuse to restore (unpickle) a ``tuner.pkl`` that labelwise did not write: restoring
    runs code from it, so only the one whose sha256 labelwise recorded is restored.

    Raises:
        OutputError: No record, or a ``tuner.pkl`` other than the recorded one (``LW365``).
    """
    from labelwise.errors import OutputError

    path = output_dir / SEAL_FILE
    try:
        saved = json.loads(path.read_text()).get("tuner_sha256")
    except (OSError, ValueError, AttributeError):
        saved = None
    if saved is None or saved != _tuner_digest(experiment):
        why = "no record of it" if saved is None else "it is not the one labelwise wrote"
        raise OutputError(f"refusing to restore the Ray search state {experiment / 'tuner.pkl'}"
                          f": {why} in {path}, and restoring a pickle runs its code",
                          where=f"file {output_dir}", fix="start the search in a new "
                          "--output-dir, or delete the ray/ folder to start over here",
                          code="LW365")


def _quiet_ray(verbose: bool) -> dict[str, Any]:
    """Keyword arguments of ``ray.init`` and the logger levels that keep Ray's banners,
    INFO lines and warnings out of a search's output (``verbose``: let them through)."""
    if verbose:
        return {}
    for name in ("ray", "ray.tune", "ray.train", "ray.data", "ray._private"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    return {"logging_level": logging.ERROR}


class RayBackend(SearchBackend):
    """Ray Tune: a local Ray, or the cluster at ``address``."""

    name = "ray"

    def __init__(self, *, address: str | None = None, study_name: str | None = None,
                 verbose: bool = False) -> None:
        _ray()  # a missing extra is an error before anything is read or written
        self.address = address
        self.study_name = study_name
        self.verbose = verbose

    def run(self, plan: Plan, *, space: dict[str, Any], output_dir: Path, n_trials: int,
            timeout: float | None, callbacks: Sequence[TrialCallback] = ()) -> SearchResult:
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
        if (experiment / "tuner.pkl").exists():
            check_sealed(output_dir, experiment)  # before Ray starts: unpickle only ours
        config = absolute_config(plan.config)
        spec = {"config": config.model_dump(mode="json"), "source": plan.source, "key": key,
                "output_dir": str(output_dir.resolve()), "name": name,
                "experiment": str(experiment),
                "cpus": settings.cpus_per_trial, "gpus": settings.gpus_per_trial}
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
        if tune.Tuner.can_restore(str(experiment)):  # with the callbacks pickled in it
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
                    callbacks=[_driver_callback(metric, space, experiment)]))
            seal(output_dir, experiment)
        _LIVE[str(experiment)] = _Live(tuple(callbacks), timeout,
                                       time.monotonic() + (timeout or 0.0), progress)
        try:
            grid = tuner.fit()
            records = _records(grid, space, metric)
        finally:
            _LIVE.pop(str(experiment), None)
            progress.close()
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

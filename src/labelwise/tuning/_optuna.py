"""The Optuna backend: the embedded default, and the way to tune across machines.

Storage is a SQLite file in the output dir unless ``--storage`` names another (PostgreSQL or
MySQL, or ``journal:///path`` on a shared filesystem; see :mod:`._storage`). The study
records the schema fingerprint, the data fingerprints, the space, the objective and the
number of trials; running the same command again resumes it, and resuming or joining with
other data, labels or space is refused with the difference. Every process, whether a
``--workers`` process on this machine or a ``--join`` process on another, runs trials until
the study holds ``n_trials`` finished or running ones, so the processes of one study finish
``n_trials`` between them. Trials of a process that died are failed by Optuna's heartbeat
and retried. Each trial runs under ``catch=(Exception,)``: an exception, a NaN loss or an
out-of-memory error fails that trial, with the reason stored, and the search goes on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import Any

from labelwise.training._memory import frozen_heap
from labelwise.training.tracking import LOGS, tracking_callbacks
from labelwise.errors import ConfigError, SchemaMismatchError
from labelwise.plan.preflight import Plan
from labelwise.plan.budget import SHA_MIN_EVALUATIONS, SHA_REDUCTION
from labelwise.tuning._budget import configured_pruner
from labelwise.tuning._base import FINISHED, SearchBackend, SearchResult, TrialCallback, notify
from labelwise.tuning._progress import SearchProgress
from labelwise.scoring.diagnosis import brief
from labelwise.tuning._output import collect, finish_best, summarize, write_trials_csv
from labelwise.tuning._runner import (TrialRunner, eval_reporter, failure_reason,
                                      key_difference, save_if_best, study_key)
from labelwise.tuning._space import suggest
from labelwise.tuning._storage import (claim_lock, default_storage, display_url,
                                       has_heartbeat, make_storage, optuna_module)

__all__ = ["OptunaBackend", "open_study", "run_worker", "counted"]

logger = logging.getLogger("labelwise")
TARGET_ATTR = "labelwise_n_trials"
TRIAL_ATTR = "labelwise_trial"  # how long the trials of the process that ran last train


def trial_length_of(plan: Plan) -> dict[str, Any]:
    """How long the trials train and what prunes them (``pruner``: ``search.pruner``, the
    other keys ``train.*``)."""
    t = plan.config.train
    return {"epochs": t.epochs, "evals_per_epoch": t.evals_per_epoch, "max_steps": t.max_steps,
            "pruner": configured_pruner(plan)}


def _sampler(plan: Plan, worker: int) -> Any:
    optuna = optuna_module()
    search = plan.config.search
    seed = (search.seed if search else 42) + worker
    if search is not None and search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)


def _pruner(plan: Plan) -> Any:
    optuna = optuna_module()
    kind = configured_pruner(plan)
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "successive_halving":  # also auto's choice under the budget rule
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=SHA_MIN_EVALUATIONS,
                                                      reduction_factor=SHA_REDUCTION)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    # median, and auto for trials of a length the user set. Optuna's defaults. Below 5 finished trials the median is noise: fine-tuning the same
    # params with another seed moves TREC's accuracy by up to 0.04, and with 2 startup
    # trials a 2-worker TREC search pruned 25 of its 32 finished trials at their first
    # evaluation.
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=0)


def open_study(plan: Plan, space: dict[str, Any], *, storage: str, study_name: str,
               worker: int = 0, create: bool = True) -> Any:
    """Create or load the study; refuse one bound to other data, labels or space.

    With ``create=False`` (``--join``) the study must exist already.
    """
    optuna = optuna_module()
    backend = make_storage(storage)
    if not create:
        names = [s.study_name for s in optuna.get_all_study_summaries(backend)]
        if study_name not in names:
            raise ConfigError(f"there is no study '{study_name}' to join",
                              where=f"storage {display_url(storage)}",
                              fix="start the first machine without --join (it creates the "
                              "study), or check --study and --storage", code="LW353")
    study = optuna.create_study(study_name=study_name, storage=backend,
                                sampler=_sampler(plan, worker), pruner=_pruner(plan),
                                direction=plan.objective[1], load_if_exists=True)
    key = study_key(plan, space)
    saved = study.user_attrs.get("labelwise")
    if saved is None:
        study.set_user_attr("labelwise", key)
    elif saved != key:
        changed, detail = key_difference(saved, key)
        raise SchemaMismatchError(f"study '{study_name}' was started with other "
                                  f"{', '.join(changed)} ({detail})",
                                  where=f"storage {display_url(storage)}",
                                  fix="use the same data, labels and space to resume or join, "
                                  "or another --study / --output-dir", code="LW351")
    return study


def _joined_trial_length(plan: Plan, space: dict[str, Any], *, storage: str,
                         study_name: str) -> Plan:
    """A ``--join`` process trains its trials as long as the process that started the
    study chose (:data:`TRIAL_ATTR`), unless its own config sets or searches the length."""
    from labelwise.plan.budget import user_trial_length
    from labelwise.tuning._budget import with_trial_length

    optuna = optuna_module()
    try:
        study = optuna.load_study(study_name=study_name, storage=make_storage(storage))
    except KeyError:  # no such study: open_study says so
        return plan
    saved = study.user_attrs.get(TRIAL_ATTR)
    own = user_trial_length(train_fields=set(plan.config.train.model_fields_set), space=space)
    if not saved or saved == trial_length_of(plan) or own is not None:
        return plan
    mine = trial_length_of(plan)["pruner"]  # the study's pruner unless this config names one
    params = {(f"train.{k}" if k != "pruner" else "search.pruner"): v for k, v in saved.items()
              if k != "pruner" or mine == "auto"}
    reason = f"the study's: chosen by the process that started study '{study_name}'"
    joined = with_trial_length(plan, params, dict.fromkeys(params, reason))
    for decision in joined.measured[len(plan.measured):]:  # after the plan was shown
        logger.info("%s", decision)
    return joined


def counted(trials: list[Any]) -> int:
    """Trials that count toward ``n_trials``: complete, pruned, and failed by an error
    (not the stale trials of a dead process, which are retried)."""
    n = 0
    for t in trials:
        if t.state.name in ("COMPLETE", "PRUNED"):
            n += 1
        elif t.state.name == "FAIL" and "fail_reason" in t.user_attrs:
            n += 1
    return n


def _states(study: Any, storage: str) -> list[Any]:
    if has_heartbeat(storage):
        import warnings

        optuna = optuna_module()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    return study.get_trials(deepcopy=False)


def _has_work(trials: list[Any], n_trials: int) -> bool:
    """A trial waits to be retried, or finished + running trials are fewer than the target."""
    if any(t.state.name == "WAITING" for t in trials):
        return True
    running = sum(1 for t in trials if t.state.name == "RUNNING")
    return counted(trials) + running < n_trials


def _report_callback(trial: Any, metric: str) -> Any:
    """Feeds the pruner at each evaluation (never at the last one: a trial that ran to the
    end is complete); a pruned trial keeps its step time and duration.

    The report key is the evaluation's number, not the optimizer step: evaluations fall at
    the same fractions of an epoch whatever the batch size, while step 150 is a different
    point of training at batch 16 and 32 (the pruner compares trials at equal keys only)."""
    optuna = optuna_module()

    def on_eval(value: float, state: Any, reporter: Any) -> None:
        trial.report(value, reporter.evaluations)
        if state.global_step < state.max_steps and trial.should_prune():
            reason = f"pruned at step {state.global_step}: {metric}={value:.4f}"
            trial.set_user_attr("prune_reason", reason)
            trial.set_user_attr("step_seconds", round(reporter.step_seconds, 3))
            trial.set_user_attr("duration_s",
                                round(time.perf_counter() - reporter.started, 3))
            raise optuna.TrialPruned(reason)

    return eval_reporter(metric, on_eval)


def _deadline_callback(trial: Any, deadline: float, timeout: float, reporter: Any) -> Any:
    """Stops the running trial at the search deadline (PRUNED, with the reason), so that
    ``search.timeout`` is the search's wall-clock budget rather than the time after which
    no trial starts. Not while no trial has completed: the search always ends with a model."""
    from transformers import TrainerCallback

    optuna = optuna_module()

    class Deadline(TrainerCallback):
        started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if time.monotonic() < deadline or state.global_step >= state.max_steps:
                return
            reason = (f"stopped at step {state.global_step} of {state.max_steps}: the search "
                      f"timeout ({timeout:g} s) was reached")
            trial.set_user_attr("prune_reason", reason)
            # the reporter runs first (callbacks run in order) and has timed this step
            trial.set_user_attr("step_seconds", round(reporter.step_seconds, 3))
            trial.set_user_attr("duration_s", round(time.perf_counter() - self.started, 3))
            raise optuna.TrialPruned(reason)

    return Deadline()


def run_worker(plan: Plan, space: dict[str, Any], *, storage: str, study_name: str,
               n_trials: int, timeout: float | None, output_dir: Path, worker: int = 0,
               threads: int | None = None, join: bool = False, study: Any = None,
               orphans: bool = False, after_trial: Callable[[], None] | None = None,
               progress: SearchProgress | None = None,
               trainer_callbacks: tuple[Any, ...] = ()) -> int:
    """Run trials in this process until the study holds ``n_trials`` finished or running
    trials (or ``timeout`` seconds have passed); returns how many this process ran.
    ``study``: the study when the caller has opened it already; ``orphans``: also run
    WAITING trials beyond the target (retries and slots of processes that have ended);
    ``after_trial``: called after each trial this process ran; ``progress``: reports each
    finished trial; ``trainer_callbacks``: the caller's ``TrainerCallback`` objects, given
    to every trial's Trainer."""
    optuna = optuna_module()
    if study is None:
        study = open_study(plan, space, storage=storage, study_name=study_name,
                           worker=worker, create=not join)
    if not _has_work(_states(study, storage), n_trials):
        return 0
    deadline = time.monotonic() + timeout if timeout else None
    runner = TrialRunner(plan, space, threads=threads)
    metric, direction = plan.objective
    if progress is None:
        progress = SearchProgress(n_trials=n_trials, metric=metric, direction=direction,
                                  timeout=timeout, done=counted(_states(study, storage)))
    progress.start()
    COMPLETE = optuna.trial.TrialState.COMPLETE
    host = socket.gethostname()

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        for key, value in (("seed", plan.config.train.seed), ("worker", worker),
                           ("host", host), ("pid", os.getpid()),
                           ("schema_fingerprint", plan.schema.fingerprint)):
            trial.set_user_attr(key, value)
        extra = [_report_callback(trial, metric)]
        if deadline is not None and study.get_trials(deepcopy=False, states=(COMPLETE,)):
            extra.append(_deadline_callback(trial, deadline, float(timeout or 0),
                                            reporter=extra[0]))
        try:
            tracking = tracking_callbacks(plan.config.train.report_to,
                                          logs_dir=output_dir / LOGS,
                                          run_name=f"trial-{trial.number}")
            outcome = runner.run(params, callbacks=(*extra, *tracking, *trainer_callbacks))
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", failure_reason(exc))
            raise
        from labelwise.scoring.metrics import primary_metrics

        trial.set_user_attr("metrics", primary_metrics(outcome.metrics))
        trial.set_user_attr("duration_s", round(outcome.seconds, 3))
        trial.set_user_attr("step_seconds", round(outcome.step_seconds, 3))
        trial.set_user_attr("findings", outcome.diagnosis.to_dict()["findings"])
        save_if_best(outcome, number=trial.number, direction=direction, output_dir=output_dir,
                     tokenizer=runner.prepared.tokenizer,
                     extra={"params": params, "study": study_name})
        return outcome.value

    def log_trial(study: Any, trial: Any) -> None:
        runner.release()  # after every trial, whatever its state: the trial's memory back
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason", "")
        try:
            best = (float(study.best_value), int(study.best_trial.number))
        except ValueError:
            best = None
        progress.finished(trial.number, trial.state.name, trial.value, trial.params,
                          reason=reason, best=best,
                          note=brief(trial.user_attrs.get("findings") or ()))
        if after_trial is not None:
            after_trial()

    ran = 0
    with frozen_heap():  # the runner's data and weights: out of every collection's scan
        # Past the deadline only for this process's first trial while none has completed
        # (its setup can outlast a short budget): the search always ends with a model.
        while (deadline is None or time.monotonic() < deadline
               or (ran == 0 and not study.get_trials(deepcopy=False, states=(COMPLETE,)))):
            with claim_lock(storage, study_name):  # count and claim as one step
                trials = _states(study, storage)
                waiting = sum(1 for t in trials if t.state.name == "WAITING")
                running = sum(1 for t in trials if t.state.name == "RUNNING")
                if counted(trials) + running + waiting < n_trials:
                    study.enqueue_trial({})  # this process's slot: a WAITING trial, numbered now
                elif not (orphans and waiting):
                    break  # every slot is taken; WAITING ones belong to other processes
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[log_trial],
                           gc_after_trial=True)  # runs the oldest WAITING trial
            ran += 1
    return ran


def wait_for_others(study: Any, storage: str, poll: Callable[[], None] = lambda: None
                    ) -> None:
    """Wait while other processes (``--join``, ``--workers``) still run trials of the study,
    calling ``poll`` every 2 seconds.

    A process that died is noticed by the heartbeat. Journal storage has none, so there the
    wait ends once no trial has finished for twice the longest trial (at least 2 minutes).
    """
    seen: tuple[int, ...] | None = None
    changed = time.monotonic()
    while True:
        trials = _states(study, storage)
        running = tuple(t.number for t in trials if t.state.name == "RUNNING")
        if not running:
            return
        poll()
        longest = max([t.duration.total_seconds() for t in trials if t.duration] or [60.0])
        if running != seen:
            logger.info("waiting for %d trial(s) that other processes run: %s", len(running),
                        ", ".join(str(n) for n in running))
            seen, changed = running, time.monotonic()
        elif time.monotonic() - changed > max(2 * longest, 120.0):
            logger.warning("trial(s) %s still RUNNING with no sign of life; trials.csv shows "
                           "them as RUNNING", ", ".join(str(n) for n in running))
            return
        time.sleep(2.0)


class _Announcer:
    """Hands each trial of the study that finishes during this call, whichever process ran
    it, to the search callbacks, once."""

    def __init__(self, study: Any, callbacks: Sequence[TrialCallback]) -> None:
        self.study = study
        self.callbacks = tuple(callbacks)
        self.seen = {t.number for t in study.get_trials(deepcopy=False)
                     if t.state.name in FINISHED} if self.callbacks else set()

    def __call__(self) -> None:
        if not self.callbacks:
            return
        for record in collect(self.study):
            if record.state in FINISHED and record.number not in self.seen:
                self.seen.add(record.number)
                notify(self.callbacks, record)


class OptunaBackend(SearchBackend):
    """Optuna with SQLite (default), an RDB URL or a journal file; N worker processes here,
    and any number of ``--join`` processes elsewhere.

    Args:
        storage: Optuna storage URL (default: the SQLite file ``OUTPUT/study.db``).
        study_name: Study name (default ``"labelwise"``).
        workers: Worker processes on this machine, each with its share of the cores.
        join: Add this process's trials to a study another machine started in ``storage``.
        n_trials_given: With ``join``, ``False`` takes ``n_trials`` from the study.
        trainer_callbacks: ``transformers.TrainerCallback`` objects given to every trial's
            Trainer; trials in this process only (``workers=1``).
    """

    name = "optuna"

    def __init__(self, *, storage: str | None = None, study_name: str | None = None,
                 workers: int = 1, join: bool = False, n_trials_given: bool = True,
                 trainer_callbacks: Sequence[Any] = ()) -> None:
        if join and not storage:
            raise ConfigError("--join needs the storage of the study to join",
                              fix="pass the first machine's --storage URL (postgresql://... "
                              "or journal:///shared/path)", code="LW334")
        if workers < 1:
            raise ConfigError(f"workers={workers} runs no trial", fix="pass workers=1 or more",
                              code="LW334")
        if trainer_callbacks and workers > 1:
            raise ConfigError("trainer callbacks run in this process, but with workers="
                              f"{workers} the trials run in others",
                              fix="pass workers=1, or use train.report_to for tracking",
                              code="LW338")
        self.trainer_callbacks = tuple(trainer_callbacks)
        self.storage = storage
        self.study_name = study_name
        self.workers = workers
        self.join = join
        self.n_trials_given = n_trials_given

    @property
    def trials_in_process(self) -> bool:  # type: ignore[override]
        """One worker: every trial runs in the calling process."""
        return self.workers == 1

    def run(self, plan: Plan, *, space: dict[str, Any], output_dir: Path, n_trials: int,
            timeout: float | None, callbacks: Sequence[TrialCallback] = ()) -> SearchResult:
        pins = self._gpu_pins(plan) if self.workers > 1 and not self.join else []
        storage = self.storage or default_storage(output_dir)
        name = self.study_name or "labelwise"
        if self.join:
            plan = _joined_trial_length(plan, space, storage=storage, study_name=name)
        study = open_study(plan, space, storage=storage, study_name=name, create=not self.join)
        announce = _Announcer(study, callbacks)
        if self.join and not self.n_trials_given:
            n_trials = int(study.user_attrs.get(TARGET_ATTR, n_trials))
        elif not self.join:
            study.set_user_attr(TARGET_ATTR, n_trials)
        if not self.join:
            study.set_user_attr(TRIAL_ATTR, trial_length_of(plan))
        trials = _states(study, storage)
        done = counted(trials)
        started = time.perf_counter()
        if done:
            logger.info("%s study '%s': %d trial(s) finished, target %d",
                        "joining" if self.join else "resuming", name, done, n_trials)
        metric, direction = plan.objective
        progress = SearchProgress(n_trials=n_trials, metric=metric, direction=direction,
                                  timeout=timeout, done=done)
        if self.workers == 1 or self.join:
            run_worker(plan, space, storage=storage, study_name=name, n_trials=n_trials,
                       timeout=timeout, output_dir=output_dir, join=self.join, study=study,
                       after_trial=announce, progress=progress,
                       trainer_callbacks=self.trainer_callbacks)
        elif _has_work(trials, n_trials):
            self._spawn(plan, storage, name, n_trials, timeout, output_dir, announce, pins)
        if self.join:
            announce()
            progress.close()
            records = collect(study)
            write_trials_csv(records, output_dir / "trials.csv", space)
            return summarize(plan, records, output_dir=output_dir, storage=storage,
                             study_name=name, wall_seconds=time.perf_counter() - started)
        while True:  # trials of other processes, and retries of the ones that died
            wait_for_others(study, storage, poll=announce)
            if not any(t.state.name == "WAITING" for t in _states(study, storage)):
                break
            run_worker(plan, space, storage=storage, study_name=name, n_trials=n_trials,
                       timeout=None, output_dir=output_dir, study=study, orphans=True,
                       after_trial=announce, progress=progress,
                       trainer_callbacks=self.trainer_callbacks)
        announce()
        progress.close()
        records = collect(study)
        write_trials_csv(records, output_dir / "trials.csv", space)
        return finish_best(plan, space, records, output_dir=output_dir, storage=storage,
                           study_name=name, wall_seconds=time.perf_counter() - started)

    def _gpu_pins(self, plan: Plan) -> list[str | None]:
        """``CUDA_VISIBLE_DEVICES`` of each worker (see :mod:`._gpus`); checked before the
        study is opened."""
        from labelwise.tuning._gpus import gpu_assignment, visible_gpu_ids

        gpus: list[str] = []
        if plan.config.train.device != "cpu":
            from labelwise.training.device import device_facts

            gpus = visible_gpu_ids(device_facts().cuda_devices,
                                   os.environ.get("CUDA_VISIBLE_DEVICES"))
        search = plan.config.search
        pins = gpu_assignment(self.workers, gpus, search.trials_per_gpu if search else 1)
        if gpus:
            logger.info("workers on GPUs: %s (search.trials_per_gpu %d)",
                        ", ".join(f"{i}->GPU {g}" for i, g in enumerate(pins)),
                        search.trials_per_gpu if search else 1)
        return pins

    def _spawn(self, plan: Plan, storage: str, name: str, n_trials: int,
               timeout: float | None, output_dir: Path, poll: Callable[[], None],
               pins: list[str | None] | None = None) -> None:
        cores = len(os.sched_getaffinity(0))
        threads = max(1, cores // self.workers)
        spec = output_dir / ".worker.json"
        spec.write_text(json.dumps({"config": plan.config.model_dump(mode="json"),
                                    "source": plan.source, "storage": storage, "study": name,
                                    "timeout": timeout, "output_dir": str(output_dir)}))
        procs = []
        for i in range(self.workers):
            cmd = [sys.executable, "-m", "labelwise.tuning._worker", str(spec), "--worker",
                   str(i), "--n-trials", str(n_trials), "--threads", str(threads)]
            env = dict(os.environ)
            if pins and pins[i] is not None:
                env["CUDA_VISIBLE_DEVICES"] = str(pins[i])  # this worker's one GPU
            procs.append(subprocess.Popen(cmd, env=env))
        try:
            while alive := [p for p in procs if p.poll() is None]:
                poll()  # the trials the workers finished, to the search callbacks
                try:
                    alive[0].wait(timeout=2.0)
                except subprocess.TimeoutExpired:
                    pass
            codes = [p.returncode for p in procs]
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        if any(codes):
            raise ConfigError(f"{sum(1 for c in codes if c)} worker process(es) exited with "
                              f"codes {codes}", fix="see the worker output above",
                              code="LW352")

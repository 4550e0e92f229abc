"""The Optuna backend: the embedded default.

Storage is a SQLite file in the output dir unless ``--storage`` names another (PostgreSQL,
MySQL, or ``journal:///path`` for Optuna's journal file on a shared filesystem). The study
records the schema fingerprint, the data fingerprints, the space and the objective; running
the same command again resumes it, and resuming with other data, labels or space is refused
with the difference. Trials of a process that died are failed by Optuna's heartbeat and
retried (``RetryFailedTrialCallback``). Each trial runs under ``catch=(Exception,)``: an
exception, a NaN loss or an out-of-memory error fails that trial, with the reason stored,
and the search goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labelwise.errors import ConfigError, MissingDependencyError, SchemaMismatchError
from labelwise._preflight import Plan
from labelwise.tuning._base import SearchBackend, SearchResult
from labelwise.tuning._output import collect, finish_best, write_trials_csv
from labelwise.tuning._runner import TrialRunner, failure_reason, save_if_best
from labelwise.tuning._space import space_to_json, suggest

__all__ = ["OptunaBackend", "open_study", "study_key", "run_worker", "counted"]

logger = logging.getLogger("labelwise")
HEARTBEAT = int(os.environ.get("LABELWISE_HEARTBEAT", "30"))
GRACE = int(os.environ.get("LABELWISE_GRACE", str(3 * HEARTBEAT)))


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingDependencyError("tuning needs optuna", fix="pip install "
                                     "'labelwise[tune]'", code="LW401") from None
    return optuna


def default_storage(output_dir: Path) -> str:
    return f"sqlite:///{output_dir.resolve() / 'study.db'}"


def _storage(url: str) -> Any:
    import warnings

    optuna = _optuna()
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():  # the heartbeat API is marked experimental in Optuna 5
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=2)
        return _make_storage(optuna, url, retry)


def _make_storage(optuna: Any, url: str, retry: Any) -> Any:
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        path = url.removeprefix("journal://")
        return optuna.storages.JournalStorage(JournalFileBackend(path))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT, grace_period=GRACE,
                                      heartbeat_stale_trial_callback=retry, **kwargs)


def study_key(plan: Plan, space: dict[str, Any]) -> dict[str, Any]:
    """What a study is bound to: labels, data, space and objective."""
    return {"schema_fingerprint": plan.schema.fingerprint,
            "data_fingerprints": {s: plan.data.fingerprint(s) for s in ("train", "valid")},
            "space": space_to_json(space),
            "objective": list(plan.objective)}


def _sampler(plan: Plan, worker: int) -> Any:
    optuna = _optuna()
    search = plan.config.search
    seed = (search.seed if search else 42) + worker
    if search is not None and search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)


def _pruner(plan: Plan) -> Any:
    optuna = _optuna()
    kind = plan.config.search.pruner if plan.config.search else "median"
    if kind == "none":
        return optuna.pruners.NopPruner()
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0)


def open_study(plan: Plan, space: dict[str, Any], *, storage: str, study_name: str,
               worker: int = 0) -> Any:
    """Create or load the study; refuse one bound to other data, labels or space."""
    optuna = _optuna()
    study = optuna.create_study(study_name=study_name, storage=_storage(storage),
                                sampler=_sampler(plan, worker), pruner=_pruner(plan),
                                direction=plan.objective[1], load_if_exists=True)
    key = study_key(plan, space)
    saved = study.user_attrs.get("labelwise")
    if saved is None:
        study.set_user_attr("labelwise", key)
    elif saved != key:
        changed = [k for k in key if saved.get(k) != key[k]]
        detail = "; ".join(f"{k}: {json.dumps(saved.get(k))[:120]} -> "
                           f"{json.dumps(key[k])[:120]}" for k in changed)
        raise SchemaMismatchError(f"study '{study_name}' was started with other "
                                  f"{', '.join(changed)} ({detail})", where=f"storage {storage}",
                                  fix="use the same data, labels and space to resume, or "
                                  "another --study / --output-dir", code="LW351")
    return study


def counted(study: Any) -> int:
    """Trials that count toward ``n_trials``: complete, pruned, and failed by an error
    (not the stale trials of a dead process, which are retried)."""
    optuna = _optuna()
    states = optuna.trial.TrialState
    n = 0
    for t in study.get_trials(deepcopy=False):
        if t.state in (states.COMPLETE, states.PRUNED):
            n += 1
        elif t.state == states.FAIL and "fail_reason" in t.user_attrs:
            n += 1
    return n


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    from filelock import FileLock

    with FileLock(str(path)):
        yield


def run_worker(plan: Plan, space: dict[str, Any], *, storage: str, study_name: str,
               n_trials: int, timeout: float | None, output_dir: Path, worker: int = 0,
               threads: int | None = None) -> None:
    """Run up to ``n_trials`` trials of the study in this process."""
    optuna = _optuna()
    study = open_study(plan, space, storage=storage, study_name=study_name, worker=worker)
    runner = TrialRunner(plan, space, threads=threads)
    metric, direction = plan.objective
    lock = lambda: _file_lock(output_dir / ".best.lock")  # noqa: E731
    from transformers import TrainerCallback

    class Report(TrainerCallback):
        """Feeds the pruner at each evaluation (never at the last one: a trial that ran to
        the end is complete) and times the optimizer steps, pruned trials included."""

        def __init__(self, trial: Any) -> None:
            self.trial = trial
            self.started = time.perf_counter()
            self.step_seconds = 0.0
            self._step = 0.0

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._step = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.step_seconds += time.perf_counter() - self._step

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                        **kw: Any) -> None:
            value = (metrics or {}).get(f"eval_{metric}")
            if value is None:
                return
            self.trial.report(float(value), state.global_step)
            if state.global_step < state.max_steps and self.trial.should_prune():
                reason = f"pruned at step {state.global_step}: {metric}={value:.4f}"
                self.trial.set_user_attr("prune_reason", reason)
                self.trial.set_user_attr("step_seconds", round(self.step_seconds, 3))
                self.trial.set_user_attr("duration_s",
                                         round(time.perf_counter() - self.started, 3))
                raise optuna.TrialPruned(reason)

    def objective(trial: Any) -> float:
        params = suggest(trial, space)
        trial.set_user_attr("seed", plan.config.train.seed)
        trial.set_user_attr("worker", worker)
        try:
            outcome = runner.run(params, callbacks=(Report(trial),))
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("fail_reason", failure_reason(exc))
            runner.release()
            raise
        from labelwise.metrics import primary_metrics

        trial.set_user_attr("metrics", primary_metrics(outcome.metrics))
        trial.set_user_attr("duration_s", round(outcome.seconds, 3))
        trial.set_user_attr("step_seconds", round(outcome.step_seconds, 3))
        save_if_best(outcome, number=trial.number, direction=direction, output_dir=output_dir,
                     tokenizer=runner.prepared.tokenizer, lock=lock,
                     extra={"params": params, "study": study_name})
        return outcome.value

    def log_trial(study: Any, trial: Any) -> None:
        value = f"{trial.value:.4f}" if trial.value is not None else "-"
        reason = trial.user_attrs.get("fail_reason") or trial.user_attrs.get("prune_reason", "")
        try:
            best = f"{study.best_value:.4f} (trial {study.best_trial.number})"
        except ValueError:
            best = "-"
        logger.info("trial %d %s value=%s params=%s best=%s%s", trial.number, trial.state.name,
                    value, trial.params, best, f" [{reason}]" if reason else "")

    study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,),
                   callbacks=[log_trial], gc_after_trial=True)


class OptunaBackend(SearchBackend):
    """Optuna with SQLite (default), an RDB URL or a journal file; N worker processes."""

    name = "optuna"

    def __init__(self, *, storage: str | None = None, study_name: str | None = None,
                 workers: int = 1, source: str | None = None) -> None:
        self.storage = storage
        self.study_name = study_name
        self.workers = workers
        self.source = source

    def run(self, plan: Plan, *, space: dict[str, Any], output_dir: Path, n_trials: int,
            timeout: float | None, callbacks: tuple[Any, ...] = ()) -> SearchResult:
        storage = self.storage or default_storage(output_dir)
        name = self.study_name or "labelwise"
        study = open_study(plan, space, storage=storage, study_name=name)
        done = counted(study)
        remaining = max(0, n_trials - done)
        started = time.perf_counter()
        if done:
            logger.info("resuming study '%s': %d trial(s) finished, %d to run", name, done,
                        remaining)
        if remaining and self.workers == 1:
            run_worker(plan, space, storage=storage, study_name=name, n_trials=remaining,
                       timeout=timeout, output_dir=output_dir)
        elif remaining:
            self._spawn(plan, storage, name, remaining, timeout, output_dir)
        wall = time.perf_counter() - started
        study = open_study(plan, space, storage=storage, study_name=name)
        records = collect(study)
        write_trials_csv(records, output_dir / "trials.csv", space)
        return finish_best(plan, study, records, output_dir=output_dir, storage=storage,
                           study_name=name, wall_seconds=wall)

    def _spawn(self, plan: Plan, storage: str, name: str, remaining: int,
               timeout: float | None, output_dir: Path) -> None:
        cores = len(os.sched_getaffinity(0))
        threads = max(1, cores // self.workers)
        shares = [remaining // self.workers + (i < remaining % self.workers)
                  for i in range(self.workers)]
        spec = output_dir / ".worker.json"
        spec.write_text(json.dumps({"config": plan.config.model_dump(mode="json"),
                                    "source": self.source, "storage": storage, "study": name,
                                    "timeout": timeout, "output_dir": str(output_dir)}))
        procs = []
        for i, share in enumerate(shares):
            if share == 0:
                continue
            cmd = [sys.executable, "-m", "labelwise.tuning._worker", str(spec), "--worker",
                   str(i), "--n-trials", str(share), "--threads", str(threads)]
            procs.append(subprocess.Popen(cmd))
        try:
            codes = [p.wait() for p in procs]
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
        if any(codes):
            raise ConfigError(f"{sum(1 for c in codes if c)} worker process(es) exited with "
                              f"codes {codes}", fix="see the worker output above",
                              code="LW352")

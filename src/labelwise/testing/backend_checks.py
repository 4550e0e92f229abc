"""A conformance suite for search backends: the MUSTs of :class:`labelwise.tuning.SearchBackend`,
checked by running real searches of a tiny random BERT (2 trials of 4 steps each).

Every check is a function ``check_...(subject)`` that raises ``AssertionError`` with what went
wrong. Run them all on one backend, or one pytest test per check, the way scikit-learn's
``parametrize_with_checks`` does for estimators::

    from labelwise.testing.backend_checks import check_backend, parametrize_with_checks

    check_backend("optuna")  # a registered name, an instance, or a factory of either

    @parametrize_with_checks({"mine": lambda: MyBackend()})
    def test_backend(subject, check):
        check(subject)

A :class:`BackendUnderTest` runs each search the checks read once and keeps its result, so
the checks of one subject share four searches: two trials that complete, the same call again
(a resume), two trials that fail (the model's weights hold NaN), and a search stopped by its
timeout. Each search gets its own output directory under the subject's work directory; a
backend must keep its state per output directory, or be given as a factory that makes a fresh
one per search.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labelwise.plan.config import RunConfig, config_from_dict
from labelwise.tuning import SearchBackend, SearchResult, TrialRecord, tune
from labelwise.tuning._base import FINISHED

__all__ = ["BackendUnderTest", "SearchRun", "CHECKS", "check_backend",
           "parametrize_with_checks", "check_runs_n_trials", "check_records_each_trial",
           "check_best_dir_holds_the_best_trial", "check_config_is_not_mutated",
           "check_callbacks_see_each_finished_trial_once",
           "check_failing_trials_are_recorded_and_the_search_goes_on",
           "check_resume_runs_no_finished_trial_again", "check_timeout_stops_the_search"]

BackendSpec = str | SearchBackend | Callable[[], str | SearchBackend]
N_TRIALS = 2
SEED = 7
LR = {"low": 1e-3, "high": 1e-2}
BATCH_SIZES = [8, 16]
_WORDS = "film plot story actor scene music city river".split()


def _rows(n: int, seed: int) -> list[dict[str, str]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        label = ["neg", "pos"][i % 2]
        words = [rnd.choice(_WORDS) for _ in range(rnd.randint(2, 6))]
        words.insert(rnd.randint(0, len(words)), "good great" if label == "pos" else "bad awful")
        rows.append({"text": " ".join(words), "label": label})
    return rows


@dataclass
class SearchRun:
    """One finished search: its result, the config as given and after the call, and the
    records the search callbacks received, in order."""

    result: SearchResult
    config: RunConfig
    config_before: dict[str, Any]
    config_after: dict[str, Any]
    announced: list[TrialRecord]


@dataclass
class BackendUnderTest:
    """A backend and the searches the checks read, each run once on first use.

    Args:
        backend: A registered name, a :class:`SearchBackend`, or a callable returning either
            (called once per search).
        workdir: Where the model, data and output directories go (default: a temporary
            directory removed when this object is).
        name: Shown in test ids and messages.
    """

    backend: BackendSpec
    workdir: Path | None = None
    name: str = ""
    _runs: dict[str, SearchRun] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.workdir is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="labelwise-backend-checks-"))
            weakref.finalize(self, shutil.rmtree, self.workdir, True)
        self.name = self.name or (self.backend if isinstance(self.backend, str) else
                                  getattr(self.backend, "name", type(self.backend).__name__))

    def __str__(self) -> str:
        return self.name

    def make(self) -> str | SearchBackend:
        if isinstance(self.backend, (str, SearchBackend)):
            return self.backend
        return self.backend()

    @property
    def root(self) -> Path:
        assert self.workdir is not None
        return self.workdir

    def _model(self, kind: str) -> Path:
        from labelwise.testing._tiny import make_tiny_bert

        path = self.root / f"model-{kind}"
        if path.exists():
            return path
        words = [*_WORDS, "good", "great", "bad", "awful"]
        make_tiny_bert(path, vocab_words=words)
        if kind == "nan":  # a real failure in any process: every training loss is NaN
            import torch
            from safetensors.torch import load_file, save_file

            weights = load_file(path / "model.safetensors")
            for key in weights:
                if "LayerNorm" in key:
                    weights[key] = torch.full_like(weights[key], float("nan"))
            save_file(weights, path / "model.safetensors", metadata={"format": "pt"})
        return path

    def _data(self) -> dict[str, str]:
        import pandas as pd

        out = {}
        for split, n, seed in (("train", 64, 1), ("valid", 24, 2)):
            path = self.root / f"{split}.csv"
            if not path.exists():
                pd.DataFrame(_rows(n, seed)).to_csv(path, index=False)
            out[split] = str(path)
        return out

    def config(self, key: str, *, model: str = "ok", n_trials: int = N_TRIALS,
               timeout: float | None = None) -> RunConfig:
        """The run config of search ``key``: ``n_trials`` of 4 steps, no pruning."""
        return config_from_dict({
            "data": self._data(),
            "model": {"name_or_path": str(self._model(model)), "max_length": 32},
            "train": {"epochs": 1, "batch_size": 16, "evals_per_epoch": 1, "seed": SEED},
            "search": {"n_trials": n_trials, "timeout": timeout, "sampler": "random",
                       "seed": SEED, "pruner": "none",
                       "objective": {"metric": "accuracy", "direction": "maximize"},
                       "space": {"train.learning_rate": {"type": "float", "log": True, **LR},
                                 "train.batch_size": {"type": "categorical",
                                                      "choices": BATCH_SIZES}}},
            "output_dir": str(self.root / key)})

    def search(self, key: str, **kwargs: Any) -> SearchRun:
        """Run search ``key`` (once; later calls return the kept run)."""
        if key not in self._runs:
            config = kwargs.pop("config", None) or self.config(key, **kwargs)
            self._runs[key] = self._tune(config)
        return self._runs[key]

    def _tune(self, config: RunConfig) -> SearchRun:
        before = config.model_dump(mode="json")
        announced: list[TrialRecord] = []
        result = tune(config, backend=self.make(), callbacks=(announced.append,))
        return SearchRun(result, config, before, config.model_dump(mode="json"), announced)

    def plain(self) -> SearchRun:
        """Two trials that complete."""
        return self.search("plain")

    def resumed(self) -> tuple[SearchRun, SearchRun]:
        """The plain search, then the same call again."""
        first = self.plain()
        if "resumed" not in self._runs:
            self._runs["resumed"] = self._tune(first.config)
        return first, self._runs["resumed"]


def _where(subject: BackendUnderTest, run: SearchRun) -> str:
    return (f"backend {subject}, output {run.result.output_dir}, trials "
            f"{[(t.number, t.state, t.value, t.reason) for t in run.result.trials]}")


def _model_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("model.safetensors"))


def _csv(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def check_runs_n_trials(subject: BackendUnderTest) -> None:
    """The search runs ``n_trials`` trials, numbered from 0, each in a finished state, and
    leaves ``trials.csv`` and ``search.json``."""
    run = subject.plain()
    trials = run.result.trials
    where = _where(subject, run)
    assert [t.number for t in trials] == list(range(N_TRIALS)), where
    assert all(t.state == "COMPLETE" for t in trials), where
    out = run.result.output_dir
    assert (out / "trials.csv").exists() and (out / "search.json").exists(), where
    summary = json.loads((out / "search.json").read_text())
    assert summary["counts"] == {"COMPLETE": N_TRIALS}, (summary, where)


def check_records_each_trial(subject: BackendUnderTest) -> None:
    """Each trial records its params (inside the space), value, state, validation metrics,
    seed and duration, in the result and in ``trials.csv`` alike."""
    run = subject.plain()
    where = _where(subject, run)
    metric = run.result.objective[0]
    for t in run.result.trials:
        assert set(t.params) == {"train.learning_rate", "train.batch_size"}, where
        lr = t.params["train.learning_rate"]
        assert LR["low"] <= lr <= LR["high"], where
        assert t.params["train.batch_size"] in BATCH_SIZES, where
        assert t.value is not None and math.isfinite(t.value), where
        assert math.isclose(t.metrics.get(metric, math.nan), t.value, rel_tol=1e-6), \
            (t.metrics, where)
        assert t.seed == SEED, (t.seed, where)
        assert t.duration_s is not None and t.duration_s > 0, where
        assert t.step_seconds is not None and 0 < t.step_seconds <= t.duration_s, where
    rows = _csv(run.result.output_dir / "trials.csv")
    assert [(int(r["number"]), r["state"]) for r in rows] == \
        [(t.number, t.state) for t in run.result.trials], (rows, where)
    for r, t in zip(rows, run.result.trials):
        assert math.isclose(float(r["value"]), t.value or math.nan), (r, where)
        assert math.isclose(float(r["train.learning_rate"]), t.params["train.learning_rate"])
        assert int(r["train.batch_size"]) == t.params["train.batch_size"], (r, where)
        assert int(r["seed"]) == SEED, (r, where)


def check_best_dir_holds_the_best_trial(subject: BackendUnderTest) -> None:
    """``best/`` holds the best trial's model (and it predicts); it is the only model on
    disk; the result names that trial, its value and params."""
    from labelwise.training.predict import predict

    run = subject.plain()
    result, where = run.result, _where(subject, run)
    best = max(result.trials, key=lambda t: (t.value, -t.number))  # earliest on ties
    assert result.best_trial == best.number and result.best_value == best.value, where
    assert result.best_params == best.params, where
    assert result.best_dir == result.output_dir / "best", where
    manifest = json.loads((result.best_dir / "labelwise.json").read_text())
    assert manifest["trial"] == best.number, (manifest.get("trial"), where)
    assert manifest["params"] == best.params, (manifest.get("params"), where)
    assert _model_files(result.output_dir) == [result.best_dir / "model.safetensors"], \
        (_model_files(result.output_dir), where)
    assert predict(result.best_dir, ["good great film"]).labels[0] in ("neg", "pos")


def check_config_is_not_mutated(subject: BackendUnderTest) -> None:
    """The search leaves the config it was given as it was."""
    run = subject.plain()
    assert run.config_after == run.config_before, _where(subject, run)


def check_callbacks_see_each_finished_trial_once(subject: BackendUnderTest) -> None:
    """Each search callback gets the record of every trial that finished, once, as the
    result records it."""
    run = subject.plain()
    where = _where(subject, run)
    seen = sorted(run.announced, key=lambda t: t.number)
    assert [t.number for t in seen] == [t.number for t in run.result.trials], \
        ([t.number for t in run.announced], where)
    for got, final in zip(seen, run.result.trials):
        assert (got.state, got.params, got.value) == (final.state, final.params, final.value), \
            (got, final)


def check_failing_trials_are_recorded_and_the_search_goes_on(subject: BackendUnderTest) -> None:
    """A trial whose training fails (here: a NaN loss) is FAIL with its reason; the search
    goes on to the next trial, returns, and publishes no model."""
    run = subject.search("failing", model="nan")
    result, where = run.result, _where(subject, run)
    assert [t.number for t in result.trials] == list(range(N_TRIALS)), where
    for t in result.trials:
        assert t.state == "FAIL" and t.value is None, where
        assert "nan" in t.reason.lower(), where
    assert [t.number for t in sorted(run.announced, key=lambda t: t.number)] == \
        list(range(N_TRIALS)), where
    assert result.best_trial is None and result.best_dir is None, where
    assert _model_files(result.output_dir) == [], where
    rows = _csv(result.output_dir / "trials.csv")
    assert [r["state"] for r in rows] == ["FAIL"] * N_TRIALS, where
    assert all(r["reason"] for r in rows), where


def check_resume_runs_no_finished_trial_again(subject: BackendUnderTest) -> None:
    """The same call again, once the search has finished, runs no trial: it returns the same
    trials and leaves ``best/`` as it was."""
    first, again = subject.resumed()
    where = _where(subject, again)
    assert again.announced == [], ([t.number for t in again.announced], where)
    assert [(t.number, t.state, t.value, t.params) for t in again.result.trials] == \
        [(t.number, t.state, t.value, t.params) for t in first.result.trials], where
    assert again.result.best_trial == first.result.best_trial, where
    manifest = json.loads((again.result.output_dir / "best" / "labelwise.json").read_text())
    assert manifest["trial"] == first.result.best_trial, where


def check_timeout_stops_the_search(subject: BackendUnderTest) -> None:
    """With a timeout far below what ``n_trials`` take, the search returns with fewer
    trials, each recorded in a finished state; a trial stopped at the timeout is PRUNED
    and says so."""
    n = 20  # 20 trials take minutes
    run = subject.search("timeout", n_trials=n, timeout=3.0)
    result, where = run.result, _where(subject, run)
    assert len(result.trials) < n, where
    assert all(t.state in FINISHED for t in result.trials), where
    for t in result.trials:
        if t.state == "PRUNED":
            assert "timeout" in t.reason, where
    assert sorted(t.number for t in run.announced) == [t.number for t in result.trials], where


CHECKS: tuple[Callable[[BackendUnderTest], None], ...] = (
    check_runs_n_trials, check_records_each_trial, check_best_dir_holds_the_best_trial,
    check_config_is_not_mutated, check_callbacks_see_each_finished_trial_once,
    check_failing_trials_are_recorded_and_the_search_goes_on,
    check_resume_runs_no_finished_trial_again, check_timeout_stops_the_search)


def check_backend(backend: BackendSpec | BackendUnderTest, *, workdir: Path | None = None
                  ) -> None:
    """Run every check on ``backend``; the first that fails raises ``AssertionError``."""
    subject = backend if isinstance(backend, BackendUnderTest) else \
        BackendUnderTest(backend, workdir)
    for check in CHECKS:
        check(subject)


def _pairs(backends: Mapping[str, BackendSpec]) -> Iterator[tuple[BackendUnderTest, Any]]:
    for name, spec in backends.items():
        subject = BackendUnderTest(spec, name=name)
        for check in CHECKS:
            yield subject, check


def parametrize_with_checks(backends: Mapping[str, BackendSpec]) -> Any:
    """A pytest decorator: one test per (backend, check), with ids like
    ``optuna-check_runs_n_trials``; the test receives ``subject`` and ``check``.

    The checks of one backend share its searches, so run them in one process (they are
    independent of order, each starts the searches it reads)."""
    import pytest

    pairs = list(_pairs(backends))
    return pytest.mark.parametrize(
        ("subject", "check"), pairs,
        ids=[f"{subject.name}-{check.__name__}" for subject, check in pairs])

"""How long each trial of a search trains: derived from the budget and the measured speed.

A search with a wall-clock budget (``search.timeout``) that leaves ``train.epochs``,
``train.max_steps`` and ``train.evals_per_epoch`` to labelwise (not in the config, not in
the space) gets them from this rule, with the speed measured on the first optimizer steps
of the search's own model and data (``labelwise.training.speed``):

* **epochs**: the most of 3, 2, 1, 0.5 and 0.25 that leaves room for at least 3 full
  trials in the budget (or for ``n_trials``, when fewer). The five tuned configs of the
  benchmark table (``bench/configs/tune_*.yaml``) trained 2 or 3 epochs a trial and
  completed 2 to 6 trials in 27.5 minutes, the pruner stopping the rest early. Room for 6
  full trials, tried first, chose 1 epoch on sst2 and go_emotions at the speed of the
  space's smallest batch and lost 3 and 5 points of test score to the old fixed 3 epochs
  (``BENCHMARKS.md``): on these sets a trial's length buys more than a trial's count.
  0.5 and 0.25 epochs are for sets too large to train once per trial in the budget.
* **evals_per_epoch**: about 4 evaluations a trial, the points where the pruner can stop
  a weak trial: ``round(4 / epochs)`` (3 epochs: 1, 2 epochs: 2, 1 epoch: 4), fewer when
  the evaluations would take more than a fifth of the training time.
* **pruner** (when ``search.pruner`` is ``auto``, the default): successive halving over
  those evaluations, so that short trials screen and the promising ones run to the end.
  Optuna's ``SuccessiveHalvingPruner`` with a minimum of 1 evaluation and a reduction
  factor of 3 lets a trial go on past evaluation 1 (then 3, 9) only while it is in the
  best third of the trials that reached it (the best one, until 3 have); Ray's ASHA does
  the same with ``search.ray``'s ``grace_period`` and ``reduction_factor``. The median
  pruner, ``auto``'s choice for trials of a length the user set, waits for 5 finished
  trials: in a budget with room for 3 or 4 full trials it would stop none.

A full trial costs ``epochs * (epoch + evals_per_epoch * evaluation)`` seconds. Each
process of the search measures at the threads a trial gets, so ``--workers`` processes
that share the cores each see the slower speed and run in parallel: room is counted as
``timeout / trial_seconds * workers``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["TrialBudget", "trial_budget", "BUDGET_KEYS", "EPOCH_LADDER", "MIN_FULL_TRIALS",
           "EVALS_PER_TRIAL", "MAX_EVAL_SHARE", "BUDGET_PRUNER", "SHA_MIN_EVALUATIONS",
           "SHA_REDUCTION", "user_trial_length"]

EPOCH_LADDER = (3.0, 2.0, 1.0, 0.5, 0.25)
MIN_FULL_TRIALS = 3  # why 3, not 6: the module docstring (epochs)
EVALS_PER_TRIAL = 4
MAX_EVAL_SHARE = 0.2
BUDGET_PRUNER = "successive_halving"  # what search.pruner: auto becomes under this rule
SHA_MIN_EVALUATIONS = 1  # successive halving's first rung, then x SHA_REDUCTION each
SHA_REDUCTION = 3
# the config keys this rule sets; a user who sets or searches any of them keeps them all
BUDGET_KEYS = ("train.epochs", "train.evals_per_epoch", "train.max_steps")


@dataclass(frozen=True)
class TrialBudget:
    """Epochs and evaluations of every trial, and the figures they follow from."""

    epochs: float
    evals_per_epoch: int
    epoch_seconds: float  # one epoch of training at the measured speed
    eval_seconds: float  # one evaluation of the validation split
    timeout: float
    parallel: int = 1

    @property
    def trial_seconds(self) -> float:
        return self.epochs * (self.epoch_seconds + self.evals_per_epoch * self.eval_seconds)

    @property
    def full_trials(self) -> float:
        return self.timeout / max(self.trial_seconds, 1e-9) * self.parallel

    @property
    def evaluations(self) -> int:
        """Evaluations a full trial makes."""
        return max(1, math.ceil(self.epochs * self.evals_per_epoch - 1e-9))

    @property
    def rungs(self) -> tuple[int, ...]:
        """The evaluations where successive halving may stop a trial (not the last one:
        a trial that ran to the end is complete)."""
        out, rung = [], SHA_MIN_EVALUATIONS
        while rung < self.evaluations:
            out.append(rung)
            rung *= SHA_REDUCTION
        return tuple(out)

    def params(self, *, pruner: str = "auto") -> dict[str, Any]:
        """The trial config keys this budget sets; ``search.pruner`` too when the user's
        ``pruner`` is ``auto``."""
        out: dict[str, Any] = {"train.epochs": self.epochs,
                               "train.evals_per_epoch": self.evals_per_epoch}
        if pruner == "auto":
            out["search.pruner"] = BUDGET_PRUNER
        return out

    def reasons(self) -> dict[str, str]:
        """Why each value, one line each (the plan prints them once)."""
        epoch = _duration(self.epoch_seconds)
        room = self.full_trials
        few = " (set search.timeout higher for more)" if room < MIN_FULL_TRIALS else ""
        return {
            "train.epochs": f"{_duration(self.timeout)} budget, ~{epoch} an epoch, room for "
                            f"{room:.0f} full trial(s){few}",
            "train.evals_per_epoch": f"{_evaluations(self.evaluations)} a trial for the "
                                     "pruner, "
                                     f"~{_duration(self.eval_seconds)} each",
            "search.pruner": _halving_reason(self.rungs, self.evaluations),
        }

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "evals_per_epoch": self.evals_per_epoch,
                "epoch_seconds": round(self.epoch_seconds, 2),
                "eval_seconds": round(self.eval_seconds, 2), "timeout": self.timeout,
                "parallel": self.parallel, "full_trials": round(self.full_trials, 1)}

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> TrialBudget:
        """The budget :meth:`to_dict` wrote (``full_trials`` is derived, not read)."""
        return cls(epochs=saved["epochs"], evals_per_epoch=saved["evals_per_epoch"],
                   epoch_seconds=saved["epoch_seconds"], eval_seconds=saved["eval_seconds"],
                   timeout=saved["timeout"], parallel=saved.get("parallel", 1))


def _halving_reason(rungs: tuple[int, ...], evaluations: int) -> str:
    if not rungs:
        return f"auto, trials of {_evaluations(evaluations)}: none to stop a trial at"
    at = " and ".join(str(r) for r in rungs)
    return (f"auto, trials of {_evaluations(evaluations)}: a trial goes on past evaluation "
            f"{at} only while among the best that reached it, so more of the budget goes "
            "to promising settings")


def _evaluations(n: int) -> str:
    return f"{n} evaluation" + ("" if n == 1 else "s")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def trial_budget(*, timeout: float, epoch_seconds: float, eval_seconds: float,
                 n_trials: int, parallel: int = 1) -> TrialBudget:
    """The epochs and evaluations of every trial (the rule in the module docstring).

    Args:
        timeout: The search's budget in seconds.
        epoch_seconds: One epoch of training, measured.
        eval_seconds: One evaluation of the validation split, measured.
        n_trials: The search's trial count: room for more full trials than it runs is
            not needed.
        parallel: Trials that run at once, each at the measured speed.
    """
    if timeout <= 0 or epoch_seconds <= 0 or eval_seconds < 0 or n_trials < 1:
        raise ValueError("timeout, epoch_seconds and n_trials must be positive")
    need = min(MIN_FULL_TRIALS, n_trials)
    chosen: TrialBudget | None = None
    for epochs in EPOCH_LADDER:
        chosen = TrialBudget(epochs, _evals(epochs, epoch_seconds, eval_seconds),
                             epoch_seconds, eval_seconds, float(timeout), parallel)
        if chosen.full_trials >= need:
            break
    assert chosen is not None
    return chosen


def _evals(epochs: float, epoch_seconds: float, eval_seconds: float) -> int:
    evals = max(1, round(EVALS_PER_TRIAL / epochs))
    if eval_seconds > 0:  # evaluations at most a fifth of the training time
        most = MAX_EVAL_SHARE * epoch_seconds / eval_seconds  # may overflow to inf
        if most < evals:
            evals = max(1, math.floor(most))
    return evals


def user_trial_length(*, train_fields: set[str], space: dict[str, Any]) -> str | None:
    """The trial-length key the user set or searches, said for the log (they then keep
    all of them), or ``None``. ``train_fields``: the ``train`` keys the user gave
    (``TrainConfig.model_fields_set`` of the config as given)."""
    given = [k for k in BUDGET_KEYS if k.split(".", 1)[1] in train_fields]
    if given:
        return f"{given[0]} is set in the config"
    searched = [k for k in BUDGET_KEYS if k in space]
    return f"{searched[0]} is searched" if searched else None

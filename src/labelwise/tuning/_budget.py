"""How long each trial trains, decided once per search (the rule: :mod:`labelwise.plan.budget`).

The first process of a search measures the speed and chooses; the decision is written to
``tune.json``, so that resuming the search reuses it instead of measuring again, and to
the Optuna study (``labelwise_trial``), where ``--join`` processes on other machines read
it and train their trials the same length.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

from labelwise.plan.budget import TrialBudget, trial_budget, user_trial_length
from labelwise.plan.config import CategoricalDistribution
from labelwise.plan.preflight import Decision, Plan
from labelwise.plan.space import apply_params, max_length_over

__all__ = ["trial_length", "with_trial_length", "configured_pruner"]

logger = logging.getLogger("labelwise")


def with_trial_length(plan: Plan, params: dict[str, Any], reasons: dict[str, str]) -> Plan:
    """``plan`` whose trials train ``params`` (``train.epochs``, ``train.evals_per_epoch``),
    each decision with its reason in the plan."""
    decisions = tuple(Decision(k.split(".", 1)[1], v, reasons[k]) for k, v in params.items()
                      if v is not None)
    base = dataclasses.replace(plan, measured=plan.measured + decisions)
    return base.for_trial(apply_params(plan.config, params))


def _slowest(plan: Plan, space: dict[str, Any]) -> Plan:
    """The trial that trains slowest per epoch: the smallest batch, the longest rows."""
    params: dict[str, Any] = {"model.max_length": max_length_over(plan.config, space)}
    dist = space.get("train.batch_size")
    if isinstance(dist, CategoricalDistribution):
        params["train.batch_size"] = min(int(v) for v in dist.choices)
    elif dist is not None:
        params["train.batch_size"] = int(dist.low)
    return plan.for_trial(apply_params(plan.config, params))


def trial_length(plan: Plan, space: dict[str, Any], *, timeout: float | None, n_trials: int,
                 parallel: int, join: bool, train_fields: set[str],
                 saved: dict[str, Any] | None) -> tuple[Plan, TrialBudget | None]:
    """The search's plan with its trials' epochs and evaluations chosen, and the budget
    they follow from (``None``: the config's own, or the rule does not apply).

    ``train_fields``: the ``train`` keys the user gave (``TrainConfig.model_fields_set``
    of the config as given); ``saved``: the budget a search being resumed chose
    (``tune.json``)."""
    user = user_trial_length(train_fields=train_fields, space=space)
    if user is not None:
        logger.debug("trial length as configured: %s", user)
        return plan, None
    if saved is not None:
        budget = TrialBudget.from_dict(saved)
        reasons = {k: f"{why}; chosen when the search started" for k, why in
                   budget.reasons().items()}
        params = budget.params(pruner=configured_pruner(plan))
        return with_trial_length(plan, params, reasons), budget
    if join or not timeout:  # a joiner takes the study's (OptunaBackend); no budget: the config's
        return plan, None
    import torch

    from labelwise.training.speed import measure_speed
    from labelwise.training.train import load_base_state, prepare

    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // max(1, parallel)))
    try:
        probe = _slowest(plan, space)
        prepared = prepare(probe)  # at the space's longest max_length, like the trials
        prepared.base_state = load_base_state(probe)
        speed = measure_speed(prepared, probe)
    finally:
        torch.set_num_threads(threads)
    budget = trial_budget(timeout=timeout, epoch_seconds=speed.epoch_seconds,
                          eval_seconds=speed.eval_seconds, n_trials=n_trials,
                          parallel=parallel)
    logger.debug("speed measured in %.1f s on %d steps", speed.seconds, speed.steps)
    params = budget.params(pruner=configured_pruner(plan))
    return with_trial_length(plan, params, budget.reasons()), budget


def configured_pruner(plan: Plan) -> str:
    """``search.pruner`` of the plan's config (``auto`` when there is no search section)."""
    search = plan.config.search
    return search.pruner if search is not None else "auto"

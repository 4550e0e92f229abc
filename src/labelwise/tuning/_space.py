"""Search-space entries sampled by an Optuna trial (the space itself is in
:mod:`labelwise.plan.space`)."""

from __future__ import annotations

from typing import Any

from labelwise.plan.config import FloatDistribution, IntDistribution

__all__ = ["suggest"]


def suggest(trial: Any, space: dict[str, Any]) -> dict[str, Any]:
    """Sample every entry of ``space`` with an Optuna trial."""
    params: dict[str, Any] = {}
    for key, dist in space.items():
        if isinstance(dist, FloatDistribution):
            params[key] = trial.suggest_float(key, dist.low, dist.high, log=dist.log,
                                              step=dist.step)
        elif isinstance(dist, IntDistribution):
            params[key] = trial.suggest_int(key, dist.low, dist.high, log=dist.log,
                                            step=dist.step)
        else:
            params[key] = trial.suggest_categorical(key, list(dist.choices))
    return params

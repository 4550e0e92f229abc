"""The default search space, and search-space entries as Optuna distributions.

Default space (used when ``search.space`` is absent), for the MiniLM default and
BERT-family models on a CPU budget:

* ``train.learning_rate``: log-uniform in [5e-5, 5e-4]. A plain Trainer script at the
  classic BERT rate 5e-5 for one epoch left GoEmotions' 28-label head untrained (macro-F1
  0.00) and TREC at 0.93 accuracy (the measurement quoted in the tuning issue); MiniLM
  trained with labelwise at 1e-4 for one epoch reached 0.852 (sst2), 0.890 (ag_news) and
  0.938 (trec) test accuracy (bench/bench_datasets.py, BENCHMARKS.md), and the best rates
  both searches found on TREC (bench/bench_tune.py) were 1.0e-4 and 1.4e-4.
  Sentence-embedding checkpoints like MiniLM want higher rates than BERT's classic 2e-5 to
  5e-5; GoEmotions at 3e-4 for two epochs did not learn either (flat loss), so the range
  spans a decade around 1.5e-4 and lets the pruner drop the rates that fail.
* ``train.head_learning_rate``: log-uniform in [1e-4, 3e-3]: the new head's own rate. On
  GoEmotions (28 labels, 10,000 rows, one epoch at 1e-4, head bias at the label prior) a head
  at 1e-3 reached validation macro-F1 0.39 against 0.36 with the head at the encoder's rate
  (and 0.09 with a zero-bias head; bench/bench_head.py); a new head has no pretrained
  features to protect. The best trials of the 30-minute tunes chose 4e-4 to 3.5e-3.
* ``train.batch_size``: 16 or 32 (on 2 CPU cores, smaller batches give more updates in
  the same time).
* ``train.weight_decay``: uniform in [0, 0.1].
* ``train.warmup_ratio``: 0.0 or 0.1.

Epochs stay as configured (``train.epochs``): they set the budget of each trial, which the
pruner then cuts.
"""

from __future__ import annotations

from typing import Any

from labelwise.plan.config import (CategoricalDistribution, FloatDistribution, IntDistribution,
                              RunConfig)

__all__ = ["default_space", "search_space", "suggest", "max_length_over"]

DEFAULT_SPACE: dict[str, Any] = {
    "train.learning_rate": FloatDistribution(type="float", low=5e-5, high=5e-4, log=True),
    "train.head_learning_rate": FloatDistribution(type="float", low=1e-4, high=3e-3,
                                                  log=True),
    "train.batch_size": CategoricalDistribution(type="categorical", choices=[16, 32]),
    "train.weight_decay": FloatDistribution(type="float", low=0.0, high=0.1),
    "train.warmup_ratio": CategoricalDistribution(type="categorical", choices=[0.0, 0.1]),
}


def default_space() -> dict[str, Any]:
    return dict(DEFAULT_SPACE)


def search_space(config: RunConfig) -> tuple[dict[str, Any], str]:
    """The space to search and where it came from (``"config"`` or ``"default"``)."""
    if config.search is not None and config.search.space:
        return dict(config.search.space), "config"
    return default_space(), "default"


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


def max_length_over(config: RunConfig, space: dict[str, Any]) -> int:
    """The longest ``model.max_length`` any trial can use (tokenize once at it)."""
    dist = space.get("model.max_length")
    if dist is None:
        return config.model.max_length
    if isinstance(dist, CategoricalDistribution):
        return max(int(v) for v in dist.choices)
    return int(dist.high)


def space_to_json(space: dict[str, Any]) -> dict[str, Any]:
    return {k: v.model_dump() for k, v in sorted(space.items())}

"""The search space: the default one, validation, and what a search derives from it.

Validation: every key a real, tunable config field, every range valid. Keys that would
change the label encoding between trials are refused with the reason; keys that change the
head/loss contract are allowed, and :func:`space_points` gives preflight every categorical
choice and range end to derive and check the contract for.

Default space (used when ``search.space`` is absent), for the MiniLM default and
BERT-family models on a CPU budget:

* ``train.learning_rate``: log-uniform, scaled to the encoder's width (``hidden_size``
  in its ``config.json``): [5e-5, 5e-4] up to 512 wide (MiniLM, small BERTs; measured
  here, below), [1e-5, 1e-4] up to 768 (BERT-base, RoBERTa-base, DistilBERT: their papers
  fine-tuned at 2e-5 to 5e-5 and 1e-5 to 3e-5), [5e-6, 5e-5] wider (the large models,
  unstable at base rates), and [1e-5, 1e-4] when the width is unknown. For MiniLM: a plain Trainer script at the
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

import difflib
import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from labelwise.plan.config import (CategoricalDistribution, FloatDistribution, RunConfig,
                                   field_paths)
from labelwise.findings import Finding, Where

__all__ = ["check_space", "space_points", "ENCODING_KEYS", "CONTRACT_KEYS", "apply_params",
           "DEFAULT_SPACE", "default_space", "search_space", "max_length_over", "space_to_json",
           "encoder_width", "learning_rate_range"]

# Keys whose value decides the label encoding: never searched.
ENCODING_KEYS = {
    "data.task": "it decides the task, and so the label encoding",
    "data.classes": "it decides the class order, and so the label ids",
    "data.label_columns": "it decides which labels are learned",
    "data.label_sep": "it decides how label strings are split into classes",
    "data.positive": "it decides which class is positive",
    "model.num_labels": "it is fixed by the schema",
    "model.problem_type": "it is fixed by the schema",
}
# Keys that change the head or loss: allowed, contract checked for every choice.
CONTRACT_KEYS = frozenset({
    "model.binary_head", "train.loss", "train.label_smoothing", "train.label_smoothing_mode",
    "train.class_weights", "train.pos_weight", "train.focal_gamma",
})
_FIXED_PREFIXES = {
    "data.": "data settings are fixed for a search: every trial must see the same splits",
    "search.": "search settings configure the search itself",
    "output_dir": "the output directory is fixed for a search",
    "model.name_or_path": "the base model is fixed for a search (run one search per model)",
    "model.trust_remote_code": "it is a security setting, not a hyperparameter",
    "model.revision": "the base model is fixed for a search",
    "train.threads": "threads are set per worker from the available cores",
}


DEFAULT_SPACE: dict[str, Any] = {
    "train.learning_rate": FloatDistribution(type="float", low=5e-5, high=5e-4, log=True),
    "train.head_learning_rate": FloatDistribution(type="float", low=1e-4, high=3e-3,
                                                  log=True),
    "train.batch_size": CategoricalDistribution(type="categorical", choices=[16, 32]),
    "train.weight_decay": FloatDistribution(type="float", low=0.0, high=0.1),
    "train.warmup_ratio": CategoricalDistribution(type="categorical", choices=[0.0, 0.1]),
}


# (widest encoder, learning-rate range): see the module docstring
LEARNING_RATES = ((512, (5e-5, 5e-4)), (768, (1e-5, 1e-4)), (None, (5e-6, 5e-5)))
UNKNOWN_WIDTH_RATES = (1e-5, 1e-4)


def encoder_width(model_config: Mapping[str, Any] | None) -> int | None:
    """The encoder's hidden width from its ``config.json`` (``None``: not said)."""
    cfg = model_config or {}
    for key in ("hidden_size", "d_model", "dim", "n_embd"):
        if isinstance(cfg.get(key), int):
            return int(cfg[key])
    return None


def learning_rate_range(width: int | None) -> tuple[float, float]:
    if width is None:
        return UNKNOWN_WIDTH_RATES
    return next(rates for most, rates in LEARNING_RATES if most is None or width <= most)


def default_space(model_config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The default space for a model (its ``config.json``; ``None``: MiniLM's)."""
    space = dict(DEFAULT_SPACE)
    if model_config is not None:
        low, high = learning_rate_range(encoder_width(model_config))
        space["train.learning_rate"] = FloatDistribution(type="float", low=low, high=high,
                                                         log=True)
    return space


def search_space(config: RunConfig, *, model_config: Mapping[str, Any] | None = None
                 ) -> tuple[dict[str, Any], str]:
    """The space to search and where it came from: ``"config"``, or ``"default"`` with the
    encoder width it was scaled to. ``model_config``: the model's ``config.json`` (read
    from ``model.name_or_path`` when not given)."""
    if config.search is not None and config.search.space:
        return dict(config.search.space), "config"
    if model_config is None:
        from labelwise.plan.model_ref import resolve_model

        model_config = resolve_model(config.model.name_or_path,
                                     revision=config.model.revision).config or {}
    width = encoder_width(model_config)
    low, high = learning_rate_range(width)
    wide = f"a {width}-wide encoder" if width else "an encoder of unknown width"
    return default_space(model_config), (f"default space, learning rate {low:.0e} to {high:.0e} "
                                         f"for {wide}")


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


def _loc(source: str | None, key: str) -> Where:
    return Where(file=source, detail=f"key search.space.{key}")


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    if data.get(section) is None:  # an optional section left out (search): its defaults
        data[section] = {}
    data[section][name] = value


def apply_params(config: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """A new, validated config with dotted ``params`` applied (the trial's config)."""
    data = config.model_dump()
    for key, value in params.items():
        _set(data, key, value)
    return RunConfig.model_validate(data)


def check_space(config: RunConfig, *, source: str | None = None) -> list[Finding]:
    """Findings for every bad search-space entry (LW311-LW315)."""
    space = (config.search.space if config.search else None) or {}
    known = [p for p in field_paths() if not p.startswith("search.")]
    out: list[Finding] = []
    for key, dist in space.items():
        if key in ENCODING_KEYS:
            out.append(Finding("LW312", "error", f"search space key '{key}' would change the "
                               f"label encoding between trials: {ENCODING_KEYS[key]}",
                               _loc(source, key), f"remove {key} from the search space"))
            continue
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            out.append(Finding("LW311", "error", f"search space key '{key}' is not a config "
                               f"field{hint}", _loc(source, key),
                               "use a dotted config key such as train.learning_rate"))
            continue
        fixed = next((why for p, why in _FIXED_PREFIXES.items() if key.startswith(p)), None)
        if fixed:
            out.append(Finding("LW315", "error", f"search space key '{key}' cannot be "
                               f"searched: {fixed}", _loc(source, key),
                               f"remove {key} from the search space"))
            continue
        for value in _ends(dist):
            try:
                apply_params(config, {key: value})
            except ValidationError as exc:
                msg = exc.errors()[0]["msg"].lower().rstrip(".")
                out.append(Finding("LW314", "error", f"search space '{key}' reaches "
                                   f"{value!r}, outside the field's valid values: {msg}",
                                   _loc(source, key), "narrow the range or fix the choices"))
                break
    return out


def _ends(dist: Any) -> list[Any]:
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    return [dist.low, dist.high]


def space_points(config: RunConfig) -> list[dict[str, Any]]:
    """Assignments of the contract keys preflight must check: every categorical choice
    crossed with every range end (at most 256 points)."""
    space = (config.search.space if config.search else None) or {}
    keys = [k for k in space if k in CONTRACT_KEYS]
    if not keys:
        return []
    grids = [_ends(space[k]) for k in keys]
    points = [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grids)]
    return points[:256]

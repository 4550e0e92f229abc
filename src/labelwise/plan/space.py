"""Search-space validation: every key a real, tunable config field, every range valid.

Keys that would change the label encoding between trials are refused with the reason; keys
that change the head/loss contract are allowed, and :func:`space_points` gives preflight
every categorical choice and range end to derive and check the contract for.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from labelwise.plan.config import CategoricalDistribution, RunConfig, field_paths
from labelwise.findings import Finding, Where

__all__ = ["check_space", "space_points", "ENCODING_KEYS", "CONTRACT_KEYS", "apply_params"]

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


def _loc(source: str | None, key: str) -> Where:
    return Where(file=source, detail=f"key search.space.{key}")


def _set(data: dict[str, Any], key: str, value: Any) -> None:
    section, _, name = key.partition(".")
    data.setdefault(section, {})[name] = value


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

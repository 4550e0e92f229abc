"""``search.refit: true``: retrain the best params on train + validation, replace ``best/``.

The refit model keeps the decision thresholds the best trial tuned on validation (the
validation rows are training rows now, so nothing is left to tune them on); its test
metrics are computed with them. ``labelwise.json`` records ``"refit": true``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

import numpy as np

from labelwise.outputs.model_dir import publish, save_model_dir
from labelwise.outputs.names import MANIFEST
from labelwise.scoring.thresholds import Thresholds
from labelwise.training.tokens import Encoded
from labelwise.tuning._base import SearchResult
from labelwise.tuning._output import _add_test
from labelwise.tuning._runner import TrialRunner
from labelwise.training.train import fit

__all__ = ["refit_best", "concat"]

logger = logging.getLogger("labelwise")


def concat(a: Encoded, b: Encoded) -> Encoded:
    """Rows of ``a`` then rows of ``b``."""
    types = (np.concatenate([a.type_ids, b.type_ids])
             if a.type_ids is not None and b.type_ids is not None else None)
    offsets = np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]])
    return Encoded(np.concatenate([a.ids, b.ids]), types, offsets,
                   max(a.max_length, b.max_length))


def refit_best(plan, space: dict, result: SearchResult) -> None:  # type: ignore[no-untyped-def]
    """Retrain ``result.best_params`` on train + valid and publish it as ``best/``."""
    if result.best_dir is None:
        logger.warning("refit skipped: no complete trial")
        return
    best = result.best_dir
    manifest = json.loads((best / MANIFEST).read_text())
    runner = TrialRunner(plan, space)
    prepared = runner.prepared
    trial_plan = runner.trial_plan(result.best_params)
    merged = dataclasses.replace(
        prepared,
        encoded={**prepared.encoded, "train": concat(prepared.encoded["train"],
                                                    prepared.encoded["valid"])},
        labels={**prepared.labels, "train": np.concatenate([prepared.labels["train"],
                                                           prepared.labels["valid"]])})
    with tempfile.TemporaryDirectory(prefix="labelwise-refit-") as work:
        fitted = fit(merged, plan=trial_plan, work=Path(work), save=False)
    thresholds = (Thresholds.from_dict(manifest["thresholds"]) if manifest.get("thresholds")
                  else None)
    staging = best.parent / ".best.refit"
    save_model_dir(staging, plan=trial_plan, model=fitted.model, tokenizer=prepared.tokenizer,
                   metrics={}, thresholds=thresholds,
                   stats={"trial": result.best_trial, "steps": fitted.steps,
                          "step_seconds": round(fitted.step_seconds, 3)},
                   log_history=fitted.log_history,
                   extra={"trial": result.best_trial, "refit": True,
                          "params": result.best_params,
                          "search_valid_metrics": manifest["metrics"].get("valid")})
    publish(staging, best, overwrite=True)
    _add_test(trial_plan, best)
    logger.info("refit trial %s's params on train + valid: %s", result.best_trial, best)

"""What a search leaves behind: ``trials.csv``, ``best/`` with test metrics, ``search.json``."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from labelwise._preflight import Plan
from labelwise.tuning._base import SearchResult, TrialRecord
from labelwise.tuning._runner import BEST_MARKER

__all__ = ["collect", "write_trials_csv", "finish_best", "test_metrics_of"]

logger = logging.getLogger("labelwise")


def collect(study: Any) -> list[TrialRecord]:
    """Every trial of the study as a :class:`TrialRecord`, in number order."""
    out = []
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    retried = {t.system_attrs["failed_trial"]: t.number for t in trials
               if "failed_trial" in t.system_attrs}
    for t in trials:
        reason = t.user_attrs.get("fail_reason") or t.user_attrs.get("prune_reason") or ""
        if t.state.name == "FAIL" and not reason:  # no error was recorded: the process died
            again = retried.get(t.number)
            reason = "process died" + (f" (retried as trial {again})" if again is not None
                                       else "")
        duration = t.user_attrs.get("duration_s")
        if duration is None and t.datetime_start and t.datetime_complete:
            duration = round((t.datetime_complete - t.datetime_start).total_seconds(), 3)
        out.append(TrialRecord(number=t.number, state=t.state.name, params=dict(t.params),
                               value=t.value, metrics=dict(t.user_attrs.get("metrics", {})),
                               duration_s=duration, step_seconds=t.user_attrs.get(
                                   "step_seconds"), seed=t.user_attrs.get("seed"),
                               reason=reason))
    return out


def write_trials_csv(records: list[TrialRecord], path: Path, space: dict[str, Any]) -> None:
    """number, state, value, one column per param and per metric, duration, seed, reason."""
    params = list(space)
    metrics = sorted({m for r in records for m in r.metrics})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "state", "value", *params, *metrics, "duration_s",
                         "step_seconds", "seed", "reason"])
        for r in records:
            writer.writerow([r.number, r.state, "" if r.value is None else r.value,
                             *(r.params.get(p, "") for p in params),
                             *(r.metrics.get(m, "") for m in metrics),
                             "" if r.duration_s is None else r.duration_s,
                             "" if r.step_seconds is None else r.step_seconds,
                             "" if r.seed is None else r.seed, r.reason])
    tmp.replace(path)


def test_metrics_of(plan: Plan, model_dir: Path) -> dict[str, Any] | None:
    """Test metrics of a saved model dir, with its saved thresholds (test chooses nothing)."""
    if "test" not in plan.data.splits:
        return None
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from labelwise.contract import HeadContract
    from labelwise.evaluation import evaluate_logits
    from labelwise.inference import predict_logits
    from labelwise.thresholds import Thresholds
    from labelwise.tokens import encode_texts
    from labelwise.training_targets import to_targets

    manifest = json.loads((model_dir / "labelwise.json").read_text())
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = plan.data
    pairs = ([str(t) for t in data.frames["test"][data.text_pair_column]]
             if data.text_pair_column else None)
    encoded = encode_texts(tokenizer, data.texts("test"), pairs,
                           max_length=int(manifest["max_length"]))
    logits = predict_logits(model, encoded, pad_id=tokenizer.pad_token_id or 0)
    contract = HeadContract.from_dict(manifest["contract"])  # the best trial's own contract
    targets = to_targets(plan.schema.encode(data.labels("test"), split="test"), contract)
    saved_thr = manifest.get("thresholds")
    thresholds = Thresholds.from_dict(saved_thr) if saved_thr else None
    metrics, _ = evaluate_logits(np.asarray(logits), targets, contract=contract,
                                 schema=plan.schema, thresholds=thresholds)
    return metrics


def _add_test(plan: Plan, best: Path) -> None:
    metrics = test_metrics_of(plan, best)
    if metrics is None:
        return
    path = best / "metrics.json"
    all_metrics = json.loads(path.read_text()) if path.exists() else {}
    all_metrics["test"] = metrics
    (best / "metrics.json").write_text(json.dumps(all_metrics, indent=2) + "\n")
    manifest = json.loads((best / "labelwise.json").read_text())
    manifest.setdefault("metrics", {})["test"] = {k: v for k, v in metrics.items()
                                   if isinstance(v, (int, float)) or v is None}
    (best / "labelwise.json").write_text(json.dumps(manifest, indent=2) + "\n")
    from labelwise.model_card import write_model_card

    write_model_card(best)  # again, now with the test metrics


def finish_best(plan: Plan, study: Any, records: list[TrialRecord], *, output_dir: Path,
                storage: str, study_name: str, wall_seconds: float) -> SearchResult:
    """Check ``best/`` against the study, add its test metrics, write ``search.json``."""
    best_dir = output_dir / "best"
    marker = output_dir / BEST_MARKER
    best_trial = best_value = None
    best_params: dict[str, Any] = {}
    complete = [r for r in records if r.state == "COMPLETE"]
    if complete:
        best_trial, best_value = study.best_trial.number, study.best_value
        best_params = dict(study.best_trial.params)
        saved = json.loads(marker.read_text())["trial"] if marker.exists() else None
        if saved != best_trial:
            logger.warning("best/ holds trial %s, but the study's best is trial %s (its "
                           "process ended before saving); rerun to replace it", saved,
                           best_trial)
        manifest = json.loads((best_dir / "labelwise.json").read_text()) \
            if best_dir.exists() else {}
        if best_dir.exists() and "test" not in manifest.get("metrics", {}):
            _add_test(plan, best_dir)
    steps = sum(r.step_seconds or 0.0 for r in records)
    durations = sum(r.duration_s or 0.0 for r in records)
    stats = {"wall_seconds_this_run": round(wall_seconds, 3),
             "trials": len(records), "trial_seconds": round(durations, 3),
             "step_seconds": round(steps, 3),
             "outside_steps_share_of_trials": round(1 - steps / durations, 4) if durations
             else None}
    result = SearchResult(output_dir, best_dir if best_dir.exists() else None, best_trial,
                          best_value, best_params, plan.objective, tuple(records), storage,
                          study_name, stats)
    summary = {"study": study_name, "storage": storage, "objective": list(plan.objective),
               "best_trial": best_trial, "best_value": best_value, "best_params": best_params,
               "counts": result.counts(), "stats": stats}
    (output_dir / "search.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return result

"""What a search leaves behind: ``trials.csv``, ``best/`` with test metrics, ``search.json``."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.outputs.names import (BEST_DIR, BEST_MARKER, MANIFEST, METRICS,
                                     SEARCH_SUMMARY)
from labelwise.plan.preflight import Plan
from labelwise.tuning._base import SearchResult, TrialRecord
from labelwise.plan.contract import HeadContract, to_targets
from labelwise.scoring.evaluation import evaluate_logits
from labelwise.scoring.thresholds import Thresholds
from labelwise.training.tokens import encode_texts
from labelwise.outputs.model_card import write_model_card
from labelwise.tuning._storage import display_url
from labelwise.tuning._runner import rerun_as_best

__all__ = ["collect", "write_trials_csv", "finish_best", "summarize", "test_metrics_of"]

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
                               reason=reason,
                               findings=tuple(t.user_attrs.get("findings") or ())))
    return out


def write_trials_csv(records: list[TrialRecord], path: Path, space: dict[str, Any]) -> None:
    """number, state, value, one column per param and per metric, duration, seed, reason,
    and the findings after training (``CODE message`` joined by ``; ``)."""
    params = list(space)
    metrics = sorted({m for r in records for m in r.metrics})
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["number", "state", "value", *params, *metrics, "duration_s",
                         "step_seconds", "seed", "reason", "findings"])
        for r in records:
            writer.writerow([r.number, r.state, "" if r.value is None else r.value,
                             *(r.params.get(p, "") for p in params),
                             *(r.metrics.get(m, "") for m in metrics),
                             "" if r.duration_s is None else r.duration_s,
                             "" if r.step_seconds is None else r.step_seconds,
                             "" if r.seed is None else r.seed, r.reason,
                             "; ".join(f"{f['code']} {f['message']}" for f in r.findings)])
    tmp.replace(path)


def test_metrics_of(plan: Plan, model_dir: Path) -> dict[str, Any] | None:
    """Test metrics of a saved model dir, with its saved thresholds (test chooses nothing)."""
    if "test" not in plan.data.splits:
        return None
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from labelwise.training.forward import predict_logits

    manifest = json.loads((model_dir / MANIFEST).read_text())
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    data = plan.data
    pairs = (data.text_slices("test", data.text_pair_column) if data.text_pair_column
             else None)
    encoded = encode_texts(tokenizer, data.text_slices("test"), pairs,
                           max_length=int(manifest["max_length"]))
    logits = predict_logits(model, encoded, pad_id=tokenizer.pad_token_id or 0)
    contract = HeadContract.from_dict(manifest["contract"])  # the best trial's own contract
    coded = data.coded("test", plan.schema)
    targets = to_targets(plan.schema.encode_coded(coded, split="test"), contract)
    saved_thr = manifest.get("thresholds")
    thresholds = Thresholds.from_dict(saved_thr) if saved_thr else None
    metrics, _ = evaluate_logits(np.asarray(logits), targets, contract=contract,
                                 schema=plan.schema, thresholds=thresholds)
    return metrics


def _add_test(plan: Plan, best: Path) -> None:
    metrics = test_metrics_of(plan, best)
    if metrics is None:
        return
    path = best / METRICS
    all_metrics = json.loads(path.read_text()) if path.exists() else {}
    all_metrics["test"] = metrics
    path.write_text(json.dumps(all_metrics, indent=2) + "\n")
    manifest = json.loads((best / MANIFEST).read_text())
    manifest.setdefault("metrics", {})["test"] = {k: v for k, v in metrics.items()
                                   if isinstance(v, (int, float)) or v is None}
    (best / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    write_model_card(best)  # again, now with the test metrics


def _best_record(records: list[TrialRecord], direction: str) -> TrialRecord | None:
    complete = [r for r in records if r.state == "COMPLETE" and r.value is not None]
    if not complete:
        return None
    sign = -1.0 if direction == "maximize" else 1.0  # the best value; the earliest on ties
    return min(complete, key=lambda r: (sign * r.value, r.number))


def summarize(plan: Plan, records: list[TrialRecord], *, output_dir: Path, storage: str,
              study_name: str, wall_seconds: float) -> SearchResult:
    """The :class:`SearchResult` of ``records`` as they are, and ``search.json``."""
    best = _best_record(records, plan.objective[1])
    best_dir = output_dir / BEST_DIR
    steps = sum(r.step_seconds or 0.0 for r in records)
    durations = sum(r.duration_s or 0.0 for r in records)
    stats = {"wall_seconds_this_run": round(wall_seconds, 3),
             "trials": len(records), "trial_seconds": round(durations, 3),
             "step_seconds": round(steps, 3),
             "outside_steps_share_of_trials": round(1 - steps / durations, 4) if durations
             else None}
    result = SearchResult(output_dir, best_dir if best_dir.exists() else None,
                          best.number if best else None, best.value if best else None,
                          dict(best.params) if best else {}, plan.objective, tuple(records),
                          display_url(storage), study_name, stats)
    summary = {"study": study_name, "storage": display_url(storage),
               "objective": list(plan.objective), "best_trial": result.best_trial,
               "best_value": result.best_value, "best_params": result.best_params,
               "counts": result.counts(), "stats": stats}
    (output_dir / SEARCH_SUMMARY).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return result


def finish_best(plan: Plan, space: dict[str, Any], records: list[TrialRecord], *,
                output_dir: Path, storage: str, study_name: str, wall_seconds: float
                ) -> SearchResult:
    """Make ``best/`` hold the search's best trial, add its test metrics, write
    ``search.json``.

    When another machine ran the best trial (``--join``), its params are trained here
    once more, so ``best/`` is always the best trial's model.
    """
    best = _best_record(records, plan.objective[1])
    best_dir = output_dir / BEST_DIR
    marker = output_dir / BEST_MARKER
    if best is not None:
        saved = json.loads(marker.read_text())["trial"] if marker.exists() else None
        if saved != best.number:
            logger.info("the best trial %d ran in another process whose model is not here "
                        "(best/ holds %s): training its params here", best.number, saved)
            value = rerun_as_best(plan, space, number=best.number, params=best.params,
                                  output_dir=output_dir, study_name=study_name)
            logger.info("trial %d's params reached %s=%.4f here (%.4f in the search)",
                        best.number, plan.objective[0], value, best.value)
        manifest = json.loads((best_dir / MANIFEST).read_text()) \
            if best_dir.exists() else {}
        if best_dir.exists() and "test" not in manifest.get("metrics", {}):
            _add_test(plan, best_dir)
    return summarize(plan, records, output_dir=output_dir, storage=storage,
                     study_name=study_name, wall_seconds=wall_seconds)

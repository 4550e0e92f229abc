"""The HTML report of a run: one self-contained ``report.html`` that opens offline.

``write_report(output_dir)`` reads a ``labelwise train`` output dir (it holds
``labelwise.json``) or a ``labelwise tune`` output dir (it holds ``tune.json``; its model is
``best/``) and writes one HTML file with plotly.js inlined once. Sections:

* the label schema and the audit findings, recomputed with
  :func:`labelwise.data.inspection.inspect_data` from the data sources recorded in
  ``labelwise.json`` (when the files are gone the report says so);
* the findings after training: what the model cannot do (a class never predicted, a
  collapsed model, a run that learned nothing, thresholds at the edge, overfitting; see
  :mod:`labelwise.scoring.diagnosis`), from ``metrics.json``;
* the label distribution per split (``plot-label-distribution``);
* training and validation curves from ``train_log.jsonl`` (``plot-curves``);
* the confusion matrix (binary, multiclass: ``plot-confusion``), per-label precision,
  recall and F1 (multilabel: ``plot-per-label``), predicted vs true values (regression:
  ``plot-regression``), and threshold curves on validation (binary, multilabel:
  ``plot-thresholds``);
* for a search: the objective history (``plot-history``), parameter importances
  (``plot-importance``), parallel coordinates (``plot-parallel``) and the trials table.

Every plot is a ``<div class="plot" id="plot-..." data-plot="...">``. plotly, torch,
transformers and optuna are imported inside the functions.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.report._plots import esc, fmt, kv_table, note, search_sections, table
from labelwise.data.inspection import inspect_recorded
from labelwise.errors import DataError, LabelwiseError, MissingDependencyError
from labelwise.outputs.names import (BEST_DIR, MANIFEST, METRICS, REPORT, TRAIN_LOG,
                                     TUNE_MARKER, not_an_output_dir)
from labelwise.labels.schema import LabelSchema
from labelwise.training.predict import predict_split
from labelwise.report import _plots
from labelwise.scoring.thresholds import threshold_curve

__all__ = ["MAX_THRESHOLD_LABELS", "REPORT_NAME", "write_report"]

logger = logging.getLogger("labelwise")
REPORT_NAME = REPORT
MAX_THRESHOLD_LABELS = 12
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222}
header{background:#1f3b57;color:#fff;padding:16px 32px}header a{color:#cfe3ff}
main{padding:8px 32px 48px;max-width:1400px}h2{border-bottom:1px solid #ddd;padding-top:12px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f6f8}.note{color:#7a4b00;background:#fff7e0;padding:6px 10px}
.error{color:#b00020;font-weight:600}.warning{color:#a15c00}.info{color:#555}
.plot{margin:12px 0}nav a{margin-right:12px}code{background:#f4f6f8;padding:1px 4px}
"""


@dataclass
class _Run:
    """What the report reads from an output dir."""

    output_dir: Path
    kind: str  # "train" or "search"
    model_dir: Path | None
    manifest: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    schema: Any = None
    inspection: Any = None
    notes: list[str] = field(default_factory=list)


def write_report(output_dir: str | Path, *, path: str | Path | None = None) -> Path:
    """Write the HTML report of a train or tune output dir.

    Args:
        output_dir: The ``--output-dir`` of ``labelwise train`` or ``labelwise tune``.
        path: Where to write (default ``OUTPUT_DIR/report.html``).

    Returns:
        The path of the written report.

    Raises:
        DataError: ``output_dir`` is not a labelwise train or tune output dir.
        MissingDependencyError: plotly is not installed.
    """
    try:
        import plotly.offline
    except ImportError:
        raise MissingDependencyError("the report needs plotly", fix="pip install 'labelwise[train]'",
                                     code="LW401") from None
    run = _read_run(Path(output_dir).expanduser())
    sections: list[tuple[str, str, str]] = []
    if run.kind == "search":
        sections += search_sections(run.output_dir, run.manifest)
    if run.kind == "search" and run.model_dir is not None:
        trial = run.manifest.get("trial")
        sections.append(("best", f"Best model (trial {trial})", f"<p><code>{esc(run.model_dir)}"
                         "</code>: the model of the best trial; the sections below describe "
                         "it.</p>"))
    if run.model_dir is not None:
        sections += _model_sections(run)
    else:
        sections.append(("model", "Best model", note("no trial finished, so there is no "
                                                       "best/ model to report on")))
    target = Path(path) if path is not None else run.output_dir / REPORT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    page = _page(run, sections, plotly.offline.get_plotlyjs())
    from labelwise.outputs.safety import write_atomic

    return write_atomic(target, page)  # the old report or the new one; no temp file left


# --- reading -----------------------------------------------------------------------------


def _read_run(out: Path) -> _Run:
    fix = "pass the --output-dir of labelwise train or labelwise tune"
    if not out.is_dir():
        raise DataError("output directory not found", where=f"file {out}", fix=fix,
                        code="LW403")
    if (out / TUNE_MARKER).exists():
        best = out / BEST_DIR
        run = _Run(out, "search", best if (best / MANIFEST).exists() else None)
    elif (out / MANIFEST).exists():
        run = _Run(out, "train", out)
    else:
        raise not_an_output_dir(out)
    if run.model_dir is None:
        return run
    run.manifest = json.loads((run.model_dir / MANIFEST).read_text())
    run.schema = LabelSchema.from_dict(run.manifest["schema"])
    metrics_file = run.model_dir / METRICS
    run.metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    log_file = run.model_dir / TRAIN_LOG
    if log_file.exists():
        run.log = [json.loads(line) for line in log_file.read_text().splitlines() if line]
    _inspect(run)
    return run


def _inspect(run: _Run) -> None:
    """Re-read and re-audit the recorded data; a note instead of a failure when it is gone."""
    try:
        run.inspection = inspect_recorded(run.manifest)
    except LabelwiseError as err:
        run.notes.append(f"the training data could not be read again, so the audit, the "
                         f"label distribution and the prediction plots are missing: {err}")
        return
    data = run.inspection.data
    if data is None:
        return
    if data.schema.fingerprint != run.schema.fingerprint:
        run.notes.append(f"the data now give another label schema ({data.schema.fingerprint}, "
                         f"the model has {run.schema.fingerprint}): the labels changed since "
                         "training")
    saved = (run.manifest.get("plan") or {}).get("data_fingerprints") or {}
    changed = [s for s in data.splits if s in saved and saved[s] != data.fingerprint(s)]
    if changed:
        run.notes.append(f"split(s) {', '.join(changed)} changed since training (data "
                         "fingerprints differ): the plots show the data as they are now")


def _split_data(run: _Run, *splits: str) -> tuple[str, Any] | None:
    """The first of ``splits`` present in the re-read data, and that data."""
    data = run.inspection.data if run.inspection is not None else None
    for split in splits:
        if data is not None and split in data.splits:
            return split, data
    return None


def _predict(run: _Run, split: str, data: Any) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the model on one split and the split's encoded targets."""
    assert run.model_dir is not None  # the model sections run only with a model
    pair = data.text_pair_column
    pairs = [str(t) for t in data.frames[split][pair]] if pair else None
    y = run.schema.encode_coded(data.coded(split, run.schema), split=split)
    preds = predict_split(run.model_dir, data.texts(split), text_pairs=pairs)
    return preds.scores, y


# --- sections ----------------------------------------------------------------------------


def _model_sections(run: _Run) -> list[tuple[str, str, str]]:
    schema, task = run.schema, run.schema.task.value
    objective = (run.manifest.get("plan") or {}).get("objective") or {}
    out = [("schema", "Labels and audit", _schema_html(run)),
           ("metrics", "Metrics", _metrics_table(run.manifest.get("metrics") or {})),
           ("after-training", "After training", _after_training_html(run))]
    dist = run.inspection.distribution if run.inspection is not None else {}
    if task == "regression":
        values = _regression_values(run)
        body = (_plots.plot_div(_plots.regression_histograms(values, schema.targets),
                                "plot-label-distribution", "label-distribution")
                if values else note("no data to plot"))
    else:
        body = (_plots.plot_div(_plots.label_distribution(dist), "plot-label-distribution",
                                "label-distribution") if dist else note("no data to plot"))
    out.append(("distribution", "Label distribution", body))
    fig = _plots.training_curves(run.log, str(objective.get("metric", "loss")))
    out.append(("curves", "Training curves", _plots.plot_div(fig, "plot-curves", "curves")
                if fig is not None else note(f"{TRAIN_LOG} holds no loss or evaluation")))
    split = "test" if "test" in run.metrics else "valid" if "valid" in run.metrics else None
    m = run.metrics.get(split or "", {})
    if task in ("binary", "multiclass"):
        body = (_plots.plot_div(_plots.confusion(m["confusion_matrix"], schema.label_names,
                                                 split or ""), "plot-confusion", "confusion",
                                height=max(420, 60 + 40 * schema.num_labels))
                if "confusion_matrix" in m else note(f"{METRICS} holds no confusion matrix"))
        out.append(("confusion", "Confusion matrix", body))
    if task == "multilabel":
        body = (_plots.plot_div(_plots.per_label(m["per_label"], split or ""),
                                "plot-per-label", "per-label")
                if "per_label" in m else note(f"{METRICS} holds no per-label table"))
        out.append(("per-label", "Per-label precision, recall and F1", body))
    if task == "regression":
        out.append(("regression", "Predicted vs true", _regression_html(run)))
    if task in ("binary", "multilabel"):
        out.append(("thresholds", "Decision thresholds", _thresholds_html(run)))
    out.append(("suspect-labels", "Suspect labels (in-sample)", _suspects_html(run)))
    return out


SUSPECTS_SHOWN = 20


def _suspects_html(run: _Run) -> str:
    """Validation rows the trained model confidently contradicts: cleanlab on the model's
    own validation outputs. In-sample for threshold tuning and model selection, so a
    shortlist to review, not an estimate of the noise rate."""
    from labelwise.scoring.label_errors import issues_from_predictions

    found_split = _split_data(run, "valid")
    if found_split is None:
        return note("the validation data could not be read again")
    split, data = found_split
    try:
        scores, y = _predict(run, split, data)
        found = issues_from_predictions(
            schema=run.schema, targets=y, predictions=scores, rows=data.frames[split].index,
            split=split, texts=data.texts(split), method="in_sample")
    except MissingDependencyError as err:
        return note(str(err))
    excluded = ((run.manifest.get("plan") or {}).get("config") or {}).get("data", {}).get(
        "exclude_rows")
    head = (f"<p>{len(found.suspects)} of {found.rows} validation rows whose label the trained "
            "model confidently contradicts (cleanlab, on the model's own validation "
            "outputs). <b>In-sample</b>: these rows chose the thresholds and the best "
            "checkpoint, so treat this as a shortlist to review; <code>labelwise inspect "
            "TRAIN --label-errors fast</code> gives out-of-fold results for the training "
            "file.</p>")
    if excluded:
        head += f"<p>This run left out the rows listed in <code>{esc(excluded)}</code>.</p>"
    if not found.suspects:
        return head
    counts = table(["given label", "suspect rows"],
                   [[k, v] for k, v in found.per_class.items() if v])
    rows = [[x.row, _plain_label(x.given), _plain_label(x.suggested), f"{x.score:.3f}",
             x.text[:160]] for x in found.suspects[:SUSPECTS_SHOWN]]
    more = (f"<p>… and {len(found.suspects) - SUSPECTS_SHOWN} more.</p>"
            if len(found.suspects) > SUSPECTS_SHOWN else "")
    return head + counts + table(["row", "given", "model says", "label quality", "text"],
                                 rows) + more


def _plain_label(value: Any) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value) or "(none)"
    return str(value)


def _schema_html(run: _Run) -> str:
    s = run.schema
    plan = run.manifest.get("plan") or {}
    rows = [("task", s.task.value),
            ("targets" if s.task.value == "regression" else "classes",
             ", ".join(s.label_names)),
            ("positive class", s.positive), ("label format", s.label_format),
            ("label column(s)", ", ".join(s.columns)), ("evidence", s.evidence),
            ("schema fingerprint", s.fingerprint),
            ("base model", (plan.get("model") or {}).get("description")),
            ("objective", "{metric} ({direction})".format(**plan["objective"])
             if plan.get("objective") else None),
            ("data", "; ".join(f"{k}: {v}" for k, v in (plan.get("sources") or {}).items())),
            ("data fingerprints", "; ".join(f"{k}: {v}" for k, v in
                                            (plan.get("data_fingerprints") or {}).items()))]
    parts = [kv_table([(k, v) for k, v in rows if v not in (None, "")])]
    parts += [note(n) for n in run.notes]
    if run.inspection is not None:
        found = list(run.inspection.findings)
        parts.append(f"<h3>Audit findings ({len(found)})</h3>")
        if found:
            parts.append(table(["level", "code", "message", "where", "fix"], [
                [f'<span class="{f.level}">{f.level}</span>', esc(f.code), esc(f.message),
                 esc(str(f.where)), esc(f.fix)] for f in found], escape=False))
        else:
            parts.append("<p>No findings: the labels are clean.</p>")
    return "\n".join(parts)


def _after_training_html(run: _Run) -> str:
    """The findings after training, judged on validation, with the numbers behind them."""
    from labelwise.scoring.diagnosis import CODES, Diagnosis

    saved = run.metrics.get("after_training") or run.manifest.get("after_training")
    if saved is None:
        why = ("the model was retrained on train + validation (search.refit), so no "
               "validation rows are left to judge it on" if run.manifest.get("refit") else
               "this model dir records no findings after training")
        return note(why)
    diagnosis = Diagnosis.from_dict(saved)
    parts = ["<p>What the trained model cannot do, judged on the validation split "
             "(the test split chooses nothing).</p>"]
    if diagnosis.findings:
        parts.append(table(["level", "code", "message", "where", "fix"], [
            [f'<span class="{f.level}">{f.level}</span>', esc(f.code), esc(f.message),
             esc(str(f.where)), esc(f.fix)] for f in diagnosis.findings], escape=False))
    else:
        parts.append("<p>No findings: every class is predicted, the model did not collapse, "
                     "the losses fell below the prior's, no threshold sits at an edge and "
                     "validation is close to training.</p>")
    checks = [(k, json.dumps(v) if isinstance(v, (dict, list)) else v)
              for k, v in diagnosis.checks.items()]
    if checks:
        parts.append("<h3>Judged on</h3>" + kv_table(checks))
    parts.append("<details><summary>Every check</summary>" + kv_table(list(CODES.items()))
                 + "</details>")
    return "\n".join(parts)


def _metrics_table(metrics: dict[str, Any]) -> str:
    splits = list(metrics)
    names: list[str] = []
    for split in splits:
        names += [k for k in metrics[split] if k not in names]
    return table(["metric", *splits], [[n, *(fmt(metrics[s].get(n)) for s in splits)]
                                        for n in names]) if names else note("no metrics")


def _regression_values(run: _Run) -> dict[str, np.ndarray]:
    data = run.inspection.data if run.inspection is not None else None
    if data is None:
        return {}
    out = {}
    for split in data.splits:
        values, ok = run.schema.encode_coded_lenient(data.coded(split, run.schema))
        out[split] = values[ok]
    return out


def _regression_html(run: _Run) -> str:
    found = _split_data(run, "test", "valid")
    if found is None:
        return note("no test or validation data to predict on")
    split, data = found
    try:
        pred, y = _predict(run, split, data)
    except LabelwiseError as err:
        return note(f"could not predict on the {split} split: {err}")
    return _plots.plot_div(_plots.regression_scatter(y, pred, run.schema.targets, split),
                           "plot-regression", "regression")


def _thresholds_html(run: _Run) -> str:
    s, saved = run.schema, run.manifest.get("thresholds")
    names = [str(s.positive)] if s.task.value == "binary" else list(s.label_names)
    values = list(saved["values"]) if saved else [0.5] * len(names)
    methods = list(saved["methods"]) if saved else ["default"] * len(names)
    f1 = list(saved["f1"]) if saved else [None] * len(names)
    parts = [table(["label", "threshold", "method", "validation F1"], [
        [n, fmt(v), m, fmt(f)]
        for n, v, m, f in zip(names, values, methods, f1, strict=False)])]
    found = _split_data(run, "valid")
    if found is None:
        return "\n".join(parts + [note("no validation data: no threshold curves")])
    split, data = found
    try:
        scores, y = _predict(run, split, data)
    except LabelwiseError as err:
        return "\n".join(parts + [note(f"could not predict on validation: {err}")])
    if s.task.value == "binary":
        columns = [(names[0], y, scores[:, 1], values[0])]
    else:
        train = (run.inspection.distribution.get("train") or {})
        order = sorted(range(len(names)), key=lambda j: -(train.get(names[j])
                                                          or float(y[:, j].sum())))
        columns = [(names[j], y[:, j], scores[:, j], values[j])
                   for j in order[:MAX_THRESHOLD_LABELS]]
        if len(names) > MAX_THRESHOLD_LABELS:
            parts.append(note(f"curves of the {MAX_THRESHOLD_LABELS} most frequent of "
                               f"{len(names)} labels"))
    curves = [(n, threshold_curve(yy.astype(np.int64), ss), v) for n, yy, ss, v in columns]
    height = 340 * ((len(curves) + 2) // 3) + 80
    parts.append(_plots.plot_div(_plots.threshold_curves(curves), "plot-thresholds",
                                 "thresholds", height=height))
    return "\n".join(parts)


# --- the page ----------------------------------------------------------------------------


def _page(run: _Run, sections: list[tuple[str, str, str]], plotly_js: str) -> str:
    kind = "search" if run.kind == "search" else "training run"
    title = f"labelwise report: {run.output_dir.name} ({kind})"
    created = run.manifest.get("created", "")
    versions = ", ".join(f"{k} {v}" for k, v in (run.manifest.get("versions") or {}).items())
    nav = "".join(f'<a href="#{sid}">{esc(name)}</a>' for sid, name, _ in sections)
    body = "\n".join(f'<section id="{sid}"><h2>{esc(name)}</h2>\n{content}</section>'
                     for sid, name, content in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f"<title>{esc(title)}</title>\n<style>{_CSS}</style>\n"
            f'<script type="text/javascript">{plotly_js}</script>\n</head><body>\n'
            f"<header><h1>{esc(title)}</h1><p>{esc(run.output_dir.resolve())} &middot; model "
            f"saved {esc(created)} &middot; report written {esc(stamp)}</p>"
            f"<p>{esc(versions)}</p><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n"
            "</body></html>\n")

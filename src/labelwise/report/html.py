"""The HTML report of a run: one self-contained ``report.html`` that opens offline.

``write_report(output_dir)`` reads a ``labelwise train`` output dir (it holds
``labelwise.json``) or a ``labelwise tune`` output dir (it holds ``tune.json``; its model is
``best/``) and writes one HTML file with plotly.js inlined once. Sections:

* the label schema and the audit findings, recomputed with
  :func:`labelwise.data.inspection.inspect_data` from the data sources recorded in
  ``labelwise.json`` (when the files are gone the report says so);
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

from labelwise.report._plots import esc, fmt, kv_table, note, table
from labelwise.data.inspection import inspect_recorded
from labelwise.errors import DataError, LabelwiseError, MissingDependencyError

__all__ = ["MAX_THRESHOLD_LABELS", "REPORT_NAME", "write_report"]

logger = logging.getLogger("labelwise")
REPORT_NAME = "report.html"
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
        raise MissingDependencyError("the report needs plotly", fix="pip install plotly",
                                     code="LW401") from None
    run = _read_run(Path(output_dir).expanduser())
    sections: list[tuple[str, str, str]] = []
    if run.kind == "search":
        from labelwise.report._plots import search_sections

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
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(target)
    return target


# --- reading -----------------------------------------------------------------------------


def _read_run(out: Path) -> _Run:
    fix = "pass the --output-dir of labelwise train or labelwise tune"
    if not out.is_dir():
        raise DataError("output directory not found", where=f"file {out}", fix=fix,
                        code="LW403")
    if (out / "tune.json").exists():
        best = out / "best"
        run = _Run(out, "search", best if (best / "labelwise.json").exists() else None)
    elif (out / "labelwise.json").exists():
        run = _Run(out, "train", out)
    else:
        raise DataError("not a labelwise output directory (no labelwise.json or tune.json)",
                        where=f"file {out}", fix=fix, code="LW403")
    if run.model_dir is None:
        return run
    from labelwise.labels.schema import LabelSchema

    run.manifest = json.loads((run.model_dir / "labelwise.json").read_text())
    run.schema = LabelSchema.from_dict(run.manifest["schema"])
    metrics_file = run.model_dir / "metrics.json"
    run.metrics = json.loads(metrics_file.read_text()) if metrics_file.exists() else {}
    log_file = run.model_dir / "train_log.jsonl"
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
    from labelwise.training.predict import predict_split

    assert run.model_dir is not None  # the model sections run only with a model
    pair = data.text_pair_column
    pairs = [str(t) for t in data.frames[split][pair]] if pair else None
    y = run.schema.encode(data.labels(split), split=split)
    preds = predict_split(run.model_dir, data.texts(split), text_pairs=pairs)
    return preds.scores, y


# --- sections ----------------------------------------------------------------------------


def _model_sections(run: _Run) -> list[tuple[str, str, str]]:
    from labelwise.report import _plots

    schema, task = run.schema, run.schema.task.value
    objective = (run.manifest.get("plan") or {}).get("objective") or {}
    out = [("schema", "Labels and audit", _schema_html(run)),
           ("metrics", "Metrics", _metrics_table(run.manifest.get("metrics") or {}))]
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
                if fig is not None else note("train_log.jsonl holds no loss or evaluation")))
    split = "test" if "test" in run.metrics else "valid" if "valid" in run.metrics else None
    m = run.metrics.get(split or "", {})
    if task in ("binary", "multiclass"):
        body = (_plots.plot_div(_plots.confusion(m["confusion_matrix"], schema.label_names,
                                                 split or ""), "plot-confusion", "confusion",
                                height=max(420, 60 + 40 * schema.num_labels))
                if "confusion_matrix" in m else note("metrics.json holds no confusion matrix"))
        out.append(("confusion", "Confusion matrix", body))
    if task == "multilabel":
        body = (_plots.plot_div(_plots.per_label(m["per_label"], split or ""),
                                "plot-per-label", "per-label")
                if "per_label" in m else note("metrics.json holds no per-label table"))
        out.append(("per-label", "Per-label precision, recall and F1", body))
    if task == "regression":
        out.append(("regression", "Predicted vs true", _regression_html(run)))
    if task in ("binary", "multilabel"):
        out.append(("thresholds", "Decision thresholds", _thresholds_html(run)))
    return out


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
        values, ok = run.schema.encode_lenient(data.labels(split))
        out[split] = values[ok]
    return out


def _regression_html(run: _Run) -> str:
    from labelwise.report import _plots

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
    from labelwise.report import _plots
    from labelwise.scoring.thresholds import threshold_curve

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

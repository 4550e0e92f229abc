"""The pieces of the HTML report: plotly figures, HTML tables and notes, search sections.

Every figure builder takes plain data (lists, dicts, numpy arrays) and returns a
``plotly.graph_objects.Figure``; :func:`plot_div` turns a figure into the HTML of one plot:
an outer ``<div id="plot-..." data-plot="...">`` around plotly's own graph div and its
``Plotly.newPlot`` call. plotly.js itself is inlined once by the report, never here.
:func:`search_sections` builds the sections of a search from ``trials.csv``,
``search.json`` and the Optuna study.

plotly, pandas and optuna are imported inside the functions, so importing this module
loads numpy only.
"""

from __future__ import annotations

import html
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.outputs.names import SEARCH_SUMMARY, STUDY_DB, TRIALS, TUNE_MARKER

__all__ = [
    "PLOT_CONFIG", "confusion", "esc", "fmt", "importances", "kv_table", "label_distribution",
    "note", "objective_history", "parallel", "per_label", "plot_div", "regression_histograms",
    "regression_scatter", "search_sections", "table", "threshold_curves", "training_curves",
]

PLOT_CONFIG = {"displaylogo": False, "responsive": True}
_COLORS = {"train": "#4c78a8", "valid": "#f58518", "test": "#54a24b",
           "precision": "#4c78a8", "recall": "#f58518", "f1": "#54a24b"}


Section = tuple[str, str, str]  # (anchor id, title, HTML)


def esc(value: Any) -> str:
    """HTML-escaped text (``None`` is empty)."""
    return html.escape("" if value is None else str(value))


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, ``None`` as ``-``."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def note(text: str) -> str:
    """A highlighted paragraph saying what is missing and why."""
    return f'<p class="note">{esc(text)}</p>'


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, escape: bool = True) -> str:
    """An HTML table; cells are escaped unless ``escape=False`` (they are HTML already)."""
    cell = esc if escape else str
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column table of names and values."""
    return "<table>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>"
                               for k, v in rows) + "</table>"


def _go() -> Any:
    import plotly.graph_objects as go

    return go


def _subplots(n: int, titles: Sequence[str], *, cols: int = 3, **kw: Any) -> tuple[Any, int]:
    from plotly.subplots import make_subplots

    cols = max(1, min(cols, n))
    rows = max(1, math.ceil(n / cols))
    return make_subplots(rows=rows, cols=cols, subplot_titles=list(titles), **kw), cols


def plot_div(fig: Any, plot_id: str, kind: str, *, height: int = 420) -> str:
    """The HTML of one plot: ``<div class="plot" id=plot_id data-plot=kind>`` + the graph."""
    fig.update_layout(height=height, template="plotly_white")
    if fig.layout.margin.l is None:
        fig.update_layout(margin={"l": 60, "r": 30, "t": 60, "b": 60})
    inner = fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"{plot_id}-graph",
                        config=PLOT_CONFIG)
    return (f'<div class="plot" id="{html.escape(plot_id)}" '
            f'data-plot="{html.escape(kind)}">{inner}</div>')


def label_distribution(counts: Mapping[str, Mapping[str, int]]) -> Any:
    """Grouped bars: rows per class (or label), one bar group per split."""
    go = _go()
    fig = go.Figure()
    for split, row in counts.items():
        total = sum(row.values()) or 1
        names = list(row)
        fig.add_bar(name=split, x=names, y=[row[n] for n in names],
                    marker_color=_COLORS.get(split),
                    customdata=[100 * row[n] / total for n in names],
                    hovertemplate="%{x}: %{y} rows (%{customdata:.1f}%)<extra>" + split
                    + "</extra>")
    fig.update_layout(barmode="group", title="Label distribution per split",
                      xaxis_title="label", yaxis_title="rows", xaxis_type="category")
    return fig


def regression_histograms(values: Mapping[str, np.ndarray], targets: Sequence[str]) -> Any:
    """One histogram per target, the splits overlaid."""
    fig, cols = _subplots(len(targets), targets)
    for j, _ in enumerate(targets):
        row, col = j // cols + 1, j % cols + 1
        for split, arr in values.items():
            fig.add_histogram(x=arr[:, j], name=split, legendgroup=split, opacity=0.6,
                              marker_color=_COLORS.get(split), showlegend=j == 0,
                              histnorm="percent", bingroup=j + 1, nbinsx=30,
                              row=row, col=col)
    fig.update_yaxes(title_text="% of the split's rows", col=1)
    fig.update_layout(barmode="overlay", title="Target distribution per split")
    return fig


def training_curves(log: Sequence[Mapping[str, Any]], metric: str) -> Any | None:
    """Loss vs step (training and validation) and the validation objective vs step."""
    train = [(r["step"], r["loss"]) for r in log if "loss" in r and "step" in r]
    evals = [(r["step"], r["eval_loss"]) for r in log if "eval_loss" in r and "step" in r]
    key = "eval_loss" if metric == "loss" else f"eval_{metric}"
    objective = [(r["step"], r[key]) for r in log if key in r and "step" in r]
    if not (train or evals or objective):
        return None
    fig, _ = _subplots(2, ["loss", f"validation {metric}"], cols=2)
    for name, points, color in (("training loss", train, "#4c78a8"),
                                ("validation loss", evals, "#f58518")):
        if points:
            fig.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                            mode="lines+markers", line_color=color, row=1, col=1)
    if objective:
        fig.add_scatter(x=[p[0] for p in objective], y=[p[1] for p in objective],
                        name=f"validation {metric}", mode="lines+markers",
                        line_color="#54a24b", row=1, col=2)
    fig.update_xaxes(title_text="step")
    fig.update_layout(title="Training and validation curves")
    return fig


def confusion(matrix: Sequence[Sequence[int]], names: Sequence[str], split: str) -> Any:
    """A confusion-matrix heatmap: rows are true classes, columns predicted ones."""
    go = _go()
    z = np.asarray(matrix, dtype=float)
    share = z / np.maximum(z.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=z, x=list(names), y=list(names), colorscale="Blues",
                               text=z.astype(int), texttemplate="%{text}",
                               customdata=share * 100,
                               hovertemplate="true %{y}, predicted %{x}: %{z} rows "
                               "(%{customdata:.1f}% of the true class)<extra></extra>"))
    fig.update_layout(title=f"Confusion matrix ({split})")
    fig.update_xaxes(title_text="predicted", type="category")
    fig.update_yaxes(title_text="true", type="category", autorange="reversed")
    return fig


def per_label(rows: Sequence[Mapping[str, Any]], split: str) -> Any:
    """Precision, recall and F1 per label as grouped bars."""
    go = _go()
    names = [str(r["label"]) for r in rows]
    fig = go.Figure()
    for key in ("precision", "recall", "f1"):
        fig.add_bar(name=key, x=names, y=[r[key] for r in rows], marker_color=_COLORS[key],
                    customdata=[r.get("support") for r in rows],
                    hovertemplate="%{x}: " + key + " %{y:.3f} (support %{customdata})"
                    "<extra></extra>")
    fig.update_layout(barmode="group", title=f"Per-label precision, recall and F1 ({split})",
                      yaxis_range=[0, 1.05], xaxis_type="category")
    return fig


def regression_scatter(y_true: np.ndarray, y_pred: np.ndarray, targets: Sequence[str],
                       split: str) -> Any:
    """Predicted vs true value, one panel per target, with the identity line."""
    fig, cols = _subplots(len(targets), targets)
    for j, _ in enumerate(targets):
        row, col = j // cols + 1, j % cols + 1
        a, b = y_true[:, j], y_pred[:, j]
        fig.add_scatter(x=a, y=b, mode="markers", name="rows", legendgroup="rows",
                        showlegend=j == 0, marker={"color": "#4c78a8", "opacity": 0.7},
                        row=row, col=col)
        lo, hi = float(min(a.min(), b.min())), float(max(a.max(), b.max()))
        fig.add_scatter(x=[lo, hi], y=[lo, hi], mode="lines", name="y = x",
                        legendgroup="ident", showlegend=j == 0,
                        line={"dash": "dash", "color": "#888"}, row=row, col=col)
    fig.update_xaxes(title_text="true")
    fig.update_yaxes(title_text="predicted")
    fig.update_layout(title=f"Predicted vs true ({split})")
    return fig


def threshold_curves(curves: Sequence[tuple[str, Mapping[str, Sequence[float]], float]]) -> Any:
    """F1, precision and recall vs threshold per label; the chosen threshold as a line."""
    fig, cols = _subplots(len(curves), [c[0] for c in curves])
    for i, (_, curve, chosen) in enumerate(curves):
        row, col = i // cols + 1, i % cols + 1
        for key in ("f1", "precision", "recall"):
            fig.add_scatter(x=curve["threshold"], y=curve[key], name=key, legendgroup=key,
                            showlegend=i == 0, mode="lines", line_color=_COLORS[key],
                            row=row, col=col)
        fig.add_vline(x=chosen, line_dash="dash", line_color="#d62728", row=row, col=col,
                      annotation_text=f"{chosen:.3f}", annotation_position="top right")
    fig.update_xaxes(title_text="threshold", range=[0, 1])
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(title="Threshold curves on validation (dashed: the chosen threshold)")
    return fig


def objective_history(numbers: Sequence[int], values: Sequence[float], metric: str,
                      direction: str) -> Any:
    """The objective of each complete trial and the best value so far."""
    go = _go()
    best: list[float] = []
    for v in values:
        best.append(v if not best else max(best[-1], v) if direction == "maximize"
                    else min(best[-1], v))
    fig = go.Figure()
    fig.add_scatter(x=list(numbers), y=list(values), mode="markers", name=metric,
                    marker={"size": 9, "color": "#4c78a8"})
    fig.add_scatter(x=list(numbers), y=best, mode="lines", name="best so far",
                    line={"shape": "hv", "color": "#d62728"})
    fig.update_layout(title=f"Objective history ({metric}, {direction})",
                      xaxis_title="trial", yaxis_title=metric, xaxis_tick0=0,
                      xaxis_dtick=max(1, math.ceil((max(numbers, default=0) + 1) / 15)))
    return fig


def importances(values: Mapping[str, float]) -> Any:
    """Parameter importances as horizontal bars, the most important on top."""
    go = _go()
    items = sorted(values.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h",
                           marker_color="#4c78a8",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(title="Parameter importances (optuna)", xaxis_title="importance")
    return fig


def parallel(columns: Mapping[str, Sequence[Any]], value: Sequence[float], metric: str) -> Any:
    """Parallel coordinates over the parameters and the objective, coloured by it.

    Text (categorical) parameters get one tick per choice; a positive parameter spanning
    more than two decades is shown as its log10.
    """
    go = _go()
    dims = []
    for name, raw in columns.items():
        numeric = _floats(raw)
        if numeric is None:
            choices = sorted({str(v) for v in raw})
            index = {c: i for i, c in enumerate(choices)}
            dims.append({"label": name, "values": [index[str(v)] for v in raw],
                         "tickvals": list(range(len(choices))), "ticktext": choices})
        elif numeric.min() > 0 and numeric.max() / numeric.min() > 100:
            dims.append({"label": f"log10({name})", "values": np.log10(numeric).tolist()})
        else:
            dims.append({"label": name, "values": numeric.tolist()})
    dims.append({"label": metric, "values": list(value)})
    fig = go.Figure(go.Parcoords(dimensions=dims, line={
        "color": list(value), "colorscale": "Viridis", "showscale": True,
        "colorbar": {"title": {"text": metric}}}))
    fig.update_layout(title="Parameters and objective of the complete trials",
                      margin={"l": 80, "r": 80, "t": 90, "b": 40})
    return fig


def _floats(raw: Sequence[Any]) -> np.ndarray | None:
    try:
        arr = np.asarray([float(v) for v in raw], dtype=float)
    except (TypeError, ValueError):
        return None
    return arr if np.all(np.isfinite(arr)) else None


# --- the search --------------------------------------------------------------------------


def search_sections(output_dir: Path, manifest: Mapping[str, Any]) -> list[Section]:
    """Objective history, parameter importances, parallel coordinates and the trials table.

    Args:
        output_dir: A ``labelwise tune`` output dir.
        manifest: ``best/labelwise.json`` (``{}`` without a best model); gives the
            objective when ``search.json`` is missing.
    """
    import pandas as pd

    info, summary = _json(output_dir / TUNE_MARKER), _json(output_dir / SEARCH_SUMMARY)
    planned = (manifest.get("plan") or {}).get("objective") or {}
    metric, direction = summary.get("objective") or [planned.get("metric", "value"),
                                                     planned.get("direction", "maximize")]
    csv = output_dir / TRIALS
    if not csv.exists():
        return [("search", "Search", note(f"{TRIALS} is missing: no search run has "
                                          "finished in this directory yet"))]
    frame = pd.read_csv(csv)
    done = frame[(frame["state"] == "COMPLETE") & frame["value"].notna()].sort_values("number")
    params = [c for c in frame.columns if "." in c]  # space keys are dotted: train.x
    counts = ", ".join(f"{n} {state.lower()}" for state, n in
                       frame["state"].value_counts().sort_index().items())
    rows = [("study", summary.get("study") or info.get("study")),
            ("storage", summary.get("storage") or info.get("storage")),
            ("objective", f"{metric} ({direction})"), ("trials", f"{len(frame)}: {counts}"),
            ("best trial", summary.get("best_trial")), ("best value", summary.get("best_value")),
            ("best params", json.dumps(summary.get("best_params") or {}))]
    out: list[Section] = [("search", "Search", kv_table([r for r in rows if r[1] is not None]))]
    if done.empty:
        out.append(("history", "Objective history", note("no complete trial yet")))
    else:
        fig = objective_history(done["number"].tolist(), done["value"].tolist(), metric,
                                direction)
        out.append(("history", "Objective history", plot_div(fig, "plot-history", "history")))
    out.append(("importance", "Parameter importances",
                _importance_html(output_dir, info, summary, len(done))))
    if done.empty or not params:
        body = note("parallel coordinates need complete trials and a search space")
    else:
        fig = parallel({p: done[p].tolist() for p in params}, done["value"].tolist(), metric)
        body = plot_div(fig, "plot-parallel", "parallel", height=460)
    out.append(("parallel", "Parallel coordinates", body))
    trials = frame.to_html(index=False, na_rep="", border=0, classes="trials",
                           float_format=lambda v: f"{v:.4g}")
    out.append(("trials", "Trials", f'<div style="overflow-x:auto">{trials}</div>'))
    return out


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.exists() else {}


def _importance_html(output_dir: Path, info: Mapping[str, Any], summary: Mapping[str, Any],
                     n_complete: int) -> str:
    if n_complete < 2:
        return note(f"parameter importances need at least 2 complete trials; this search "
                    f"has {n_complete}")
    try:
        import optuna
    except ImportError:
        return note("parameter importances need optuna: pip install 'labelwise[tune]'")
    url = (info.get("storage") or summary.get("storage")
           or f"sqlite:///{(output_dir / STUDY_DB).resolve()}")
    name = info.get("study") or summary.get("study") or "labelwise"
    storage: Any = url
    if url.startswith("journal://"):
        from optuna.storages.journal import JournalFileBackend

        storage = optuna.storages.JournalStorage(JournalFileBackend(
            url.removeprefix("journal://")))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            study = optuna.load_study(study_name=name, storage=storage)
            values = optuna.importance.get_param_importances(study)
        except Exception as exc:  # noqa: BLE001 - an unreachable storage, a degenerate study
            return note(f"could not compute parameter importances from {url}: "
                        f"{type(exc).__name__}: {exc}")
    if not values:
        return note("the study has no parameters to rank")
    said = {str(w.message) for w in caught if issubclass(w.category, UserWarning)}
    return "\n".join([plot_div(importances(values), "plot-importance", "importance",
                               height=max(300, 120 + 40 * len(values))),
                      *(note(f"optuna: {m}") for m in sorted(said))])

"""Wrong labels, not only malformed ones: cleanlab's finders on out-of-fold model outputs.

This module is the part that needs no model: given each row's encoded label and an
out-of-fold prediction for it (class or label probabilities, or regression outputs), it
runs cleanlab's own finder for the task and returns typed results with findings.

* binary, multiclass: ``cleanlab.filter.find_label_issues`` (``filter_by=
  "low_self_confidence"``: the rows of lowest self-confidence, as many as cleanlab's
  confident joint counts as mislabelled) and ``cleanlab.rank.get_label_quality_scores``
  (self-confidence);
* multilabel: ``cleanlab.multilabel_classification.filter.find_label_issues`` and its
  ``rank.get_label_quality_scores``;
* regression: ``cleanlab.regression.rank.get_label_quality_scores`` on the predictions;
  a row is flagged when its residual is an outlier: more than 3 robust standard deviations
  (1.4826 x the median absolute residual) from the prediction on some target.

Near-duplicate texts with different labels come from embeddings: pairs whose cosine
similarity is at least ``similarity`` and whose labels differ, leaving out pairs of
identical normalised text (the audit already reports those as conflicts, LW11x).

cleanlab is imported on first use, so this module stays light.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import require
from labelwise.findings import Finding, Findings, Where, format_value
from labelwise.labels.inference import Task
from labelwise.labels.schema import LabelSchema

__all__ = ["SuspectLabel", "NearDuplicate", "LabelErrors", "issues_from_predictions",
           "near_duplicates", "METHODS"]

METHODS = ("fast", "thorough", "in_sample")
_ROBUST_SD = 1.4826
_OUTLIER_SDS = 3.0


@dataclass(frozen=True)
class SuspectLabel:
    """One row whose label the model's out-of-fold prediction contradicts.

    Attributes:
        row: 0-based data row in that split's file.
        split: The split (``train`` for the training file).
        given: The label as given (a class value, a tuple of class values, or floats).
        suggested: What the model predicts instead.
        score: cleanlab's label-quality score in [0, 1]; low means likely wrong.
        text: The row's text.
    """

    row: int
    split: str
    given: Any
    suggested: Any
    score: float
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"row": self.row, "split": self.split, "given": _plain(self.given),
                "suggested": _plain(self.suggested), "score": round(self.score, 6),
                "text": self.text}


@dataclass(frozen=True)
class NearDuplicate:
    """Two rows whose texts embed almost the same but whose labels differ."""

    rows: tuple[int, int]
    split: str
    labels: tuple[Any, Any]
    similarity: float

    def to_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows), "split": self.split,
                "labels": [_plain(v) for v in self.labels],
                "similarity": round(self.similarity, 4)}


@dataclass(frozen=True)
class LabelErrors:
    """What :func:`labelwise.find_label_errors` found.

    Attributes:
        suspects: Rows whose label looks wrong, lowest label quality first.
        near_duplicates: Near-identical texts with different labels.
        method: ``fast`` (linear model on frozen-encoder embeddings), ``thorough`` (short
            fine-tunes) or ``in_sample`` (a trained model's own validation outputs).
        folds: Out-of-fold folds used (0 for ``in_sample``).
        rows: Rows scanned.
        per_class: Suspect count per given class (classification) or per target.
        findings: LW140 (suspect labels) and LW141 (near-duplicates), if any.
        seconds: Wall time.
    """

    suspects: tuple[SuspectLabel, ...]
    near_duplicates: tuple[NearDuplicate, ...]
    method: str
    folds: int
    rows: int
    per_class: dict[str, int]
    findings: Findings = field(default_factory=Findings)
    seconds: float = 0.0

    @property
    def rows_flagged(self) -> list[int]:
        return [s.row for s in self.suspects]

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "folds": self.folds, "rows": self.rows,
                "per_class": self.per_class, "seconds": round(self.seconds, 2),
                "label_errors": [s.to_dict() for s in self.suspects],
                "near_duplicates": [d.to_dict() for d in self.near_duplicates],
                "findings": [f.to_dict() for f in self.findings]}

    def to_frame(self) -> Any:
        """A pandas DataFrame of the suspects, for review (``row`` first, as
        ``data.exclude_rows`` reads it)."""
        import pandas as pd

        cols = ["row", "split", "given", "suggested", "score", "text"]
        return pd.DataFrame([s.to_dict() for s in self.suspects], columns=cols)

    def write_csv(self, path: str | Path) -> Path:
        """The suspects as a CSV for review, written atomically (a temporary file in the
        same folder, then renamed). After review, the file is what ``data.exclude_rows``
        reads: keep the rows to drop."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            self.to_frame().to_csv(tmp, index=False)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _cleanlab() -> Any:
    return require("cleanlab", what="finding label errors needs cleanlab",
                   extra="label-errors")


def issues_from_predictions(
    *,
    schema: LabelSchema,
    targets: np.ndarray,
    predictions: np.ndarray,
    rows: Sequence[int],
    split: str = "train",
    texts: Sequence[str] | None = None,
    method: str = "fast",
    folds: int = 0,
) -> LabelErrors:
    """Suspect labels from out-of-fold ``predictions`` (see the module docstring).

    Args:
        schema: The label schema.
        targets: ``schema.encode`` output of the rows: class ids ``[n]``, multi-hot
            ``[n, k]`` or floats ``[n, t]``.
        predictions: Class probabilities ``[n, k]`` (binary: ``[n, 2]``), label
            probabilities ``[n, k]`` or regression outputs ``[n, t]``, out of fold.
        rows: The file row of each entry.
        split: The split's name, for the findings.
        texts: The texts, carried into the results for review.
        method: Recorded in the result.
        folds: Recorded in the result.
    """
    _cleanlab()
    targets, preds = np.asarray(targets), np.asarray(predictions, dtype=np.float64)
    rows = np.asarray(list(rows), dtype=np.int64)
    if len(rows) != len(targets) or len(preds) != len(targets):
        raise ValueError(f"rows ({len(rows)}), targets ({len(targets)}) and predictions "
                         f"({len(preds)}) must have one entry per row")
    task = schema.task
    if task is Task.REGRESSION:
        flagged, scores, suggested = _regression(targets, preds)
    elif task is Task.MULTILABEL:
        flagged, scores, suggested = _multilabel(targets, preds)
    else:
        flagged, scores, suggested = _single(targets, preds)
    given = schema.decode(targets[flagged]) if flagged.size else []
    said = schema.decode(suggested[flagged]) if flagged.size else []
    order = np.argsort(scores[flagged], kind="stable")
    suspects = tuple(
        SuspectLabel(row=int(rows[flagged[i]]), split=split, given=_hashable(given[i]),
                     suggested=_hashable(said[i]), score=float(scores[flagged[i]]),
                     text=str(texts[flagged[i]]) if texts is not None else "")
        for i in order)
    per_class = _per_class(schema, suspects)
    findings = [_finding(schema, suspects, per_class, len(rows), split, method)] \
        if suspects else []
    return LabelErrors(suspects, (), method, folds, len(rows), per_class, Findings(findings))


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _single(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = y.astype(np.int64)
    probs = _normalised(probs)
    # low_self_confidence: as many rows as the confident joint's off-diagonal counts, but
    # the ones of lowest self-confidence rather than the off-diagonal cells' own rows. With
    # 5% of labels flipped, on the linear model's out-of-fold outputs (8,000 ag_news rows,
    # 4,952 trec rows): F1 0.663 and 0.680 against 0.577 and 0.492 for confident_learning
    # and 0.568 and 0.537 for cleanlab's default prune_by_noise_rate (BENCHMARKS.md).
    mask = find_label_issues(y, probs, filter_by="low_self_confidence",
                             min_examples_per_class=1, n_jobs=1)
    scores = get_label_quality_scores(y, probs)
    # A flagged row's suggestion is its most likely class; when the argmax is the given class
    # (confident learning can flag such a row), the most likely other class.
    other = probs.copy()
    other[np.arange(len(y)), y] = -1.0
    suggested = np.where(probs.argmax(axis=1) == y, other.argmax(axis=1), probs.argmax(axis=1))
    return np.flatnonzero(mask), np.asarray(scores, dtype=np.float64), suggested


def _multilabel(y: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cleanlab.multilabel_classification.filter import find_label_issues
    from cleanlab.multilabel_classification.rank import get_label_quality_scores

    hot = (y > 0.5).astype(np.int64)
    lists = [list(np.flatnonzero(r)) for r in hot]
    probs = np.clip(probs, 1e-6, 1 - 1e-6)
    mask = find_label_issues(labels=lists, pred_probs=probs, n_jobs=1)
    scores = get_label_quality_scores(labels=lists, pred_probs=probs)
    suggested = (probs >= 0.5).astype(np.float32)
    if hot.sum(axis=1).min() > 0:
        # Every given row has a label, so an empty suggestion is no suggestion: where no
        # label reaches 0.5, the most likely one.
        empty = np.flatnonzero(suggested.sum(axis=1) == 0)
        suggested[empty, probs[empty].argmax(axis=1)] = 1.0
    return np.flatnonzero(mask), np.asarray(scores, dtype=np.float64), suggested


def _regression(y: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from cleanlab.regression.rank import get_label_quality_scores

    y = y.reshape(len(y), -1).astype(np.float64)
    preds = preds.reshape(len(preds), -1)
    residual = np.abs(y - preds)
    mad = np.median(residual, axis=0)
    spread = np.where(mad > 0, _ROBUST_SD * mad, np.finfo(np.float64).tiny)
    outlier = (residual / spread > _OUTLIER_SDS).any(axis=1)
    scores = np.stack([get_label_quality_scores(y[:, t], preds[:, t])
                       for t in range(y.shape[1])], axis=1).min(axis=1)
    return np.flatnonzero(outlier), scores, preds.astype(np.float32)


def _normalised(probs: np.ndarray) -> np.ndarray:
    probs = np.clip(probs, 1e-9, None)
    return probs / probs.sum(axis=1, keepdims=True)


def _per_class(schema: LabelSchema, suspects: Sequence[SuspectLabel]) -> dict[str, int]:
    if schema.task is Task.REGRESSION:
        return {"rows": len(suspects)}
    counts = {str(c): 0 for c in schema.label_names}
    for s in suspects:
        for value in (s.given if isinstance(s.given, tuple) else (s.given,)):
            counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def _finding(schema: LabelSchema, suspects: Sequence[SuspectLabel], per_class: dict[str, int],
             n: int, split: str, method: str) -> Finding:
    top = ", ".join(f"{k} {v}" for k, v in sorted(per_class.items(), key=lambda kv: -kv[1])
                    if v)[:200]
    example = suspects[0]
    what = ("rows whose label the out-of-fold predictions contradict"
            if method != "in_sample" else
            "validation rows the trained model confidently contradicts (in-sample)")
    return Finding(
        "LW140", "warning",
        f"{len(suspects)} of {n} {what} ({len(suspects) / max(n, 1):.1%}; per class: {top}); "
        f"e.g. row {example.row} labelled {format_value(_plain(example.given))}, "
        f"the model says {format_value(_plain(example.suggested))}",
        Where.at(split=split, rows=[s.row for s in suspects], detail=f"method {method}"),
        "review them (--label-errors-out FILE.csv) and drop the wrong ones with "
        "data.exclude_rows, or fix the labels in the file")


def near_duplicates(*, embeddings: np.ndarray, targets: np.ndarray, rows: Sequence[int],
                    texts: Sequence[str], schema: LabelSchema, split: str = "train",
                    similarity: float = 0.95, chunk: int = 1024,
                    limit: int = 1000) -> tuple[tuple[NearDuplicate, ...], list[Finding]]:
    """Pairs of rows whose embeddings have cosine similarity ``>= similarity`` and whose
    labels differ (identical normalised texts left out), most similar first."""
    emb = np.asarray(embeddings, dtype=np.float32)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    y = np.asarray(targets)
    y = y.reshape(len(y), -1) if y.ndim > 1 else y[:, None]
    rows = np.asarray(list(rows))
    norm = [" ".join(str(t).casefold().split()) for t in texts]
    pairs: list[tuple[float, int, int]] = []
    for start in range(0, len(emb), chunk):
        sims = emb[start:start + chunk] @ emb.T
        for a, b in zip(*np.nonzero(sims >= similarity), strict=True):
            i, j = start + int(a), int(b)
            if j <= i or np.array_equal(y[i], y[j]) or norm[i] == norm[j]:
                continue
            pairs.append((float(sims[a, b]), i, j))
    pairs.sort(key=lambda p: -p[0])
    pairs = pairs[:limit]
    original = np.asarray(targets)
    picks = [i for _, i, _ in pairs] + [j for _, _, j in pairs]
    labels = schema.decode(original[picks]) if pairs else []
    half = len(pairs)
    found = tuple(NearDuplicate((int(rows[i]), int(rows[j])), split,
                                (_hashable(labels[k]), _hashable(labels[half + k])), s)
                  for k, (s, i, j) in enumerate(pairs))
    if not found:
        return found, []
    d = found[0]
    return found, [Finding(
        "LW141", "warning",
        f"{len(found)} pair(s) of near-identical texts (cosine >= {similarity:g}) with "
        f"different labels; e.g. rows {d.rows[0]} and {d.rows[1]} labelled "
        f"{format_value(_plain(d.labels[0]))} and {format_value(_plain(d.labels[1]))}",
        Where.at(split=split, rows=[r for p in found for r in p.rows]),
        "check which label is right, or whether the two texts really mean different things")]

"""``inspect``: load, infer the schema, audit, and summarise, before any model exists."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from labelwise.data.auditing import audit, audit_frames
from labelwise.data.loading import LoadedData, exclude, load_splits, read_splits
from labelwise.errors import DataError, LabelError
from labelwise.findings import Findings
from labelwise.labels.inference import Task
from labelwise.labels.schema import LabelSchema

__all__ = ["Inspection", "inspect_data", "inspect_recorded", "distribution"]


@dataclass(frozen=True)
class Inspection:
    """What ``labelwise inspect`` shows: the schema (or ``None``), sizes, distribution,
    findings, and how validation was carved."""

    schema: LabelSchema | None
    findings: Findings
    sizes: dict[str, int]
    distribution: dict[str, dict[str, Any]]
    sources: dict[str, str]
    data: LoadedData | None = None

    @property
    def ok(self) -> bool:
        return self.findings.ok

    def to_dict(self) -> dict[str, Any]:
        schema = self.schema
        carve = self.data.carve if self.data is not None else None
        return {
            "ok": self.ok,
            "task": schema.task.value if schema else None,
            "num_labels": schema.num_labels if schema else None,
            "classes": list(schema.classes) if schema else [],
            "targets": list(schema.targets) if schema else [],
            "positive": schema.positive if schema else None,
            "label_format": schema.label_format if schema else None,
            "evidence": schema.evidence if schema else None,
            "fingerprint": schema.fingerprint if schema else None,
            "schema": schema.to_dict() if schema else None,
            "sizes": self.sizes,
            "sources": self.sources,
            "distribution": self.distribution,
            "carve": carve.to_dict() if carve else None,
            "findings": [f.to_dict() for f in self.findings],
        }


def distribution(data: LoadedData) -> dict[str, dict[str, Any]]:
    """Per split: class counts (classification) or mean/sd/min/max per target (regression)."""
    schema = data.schema
    out: dict[str, dict[str, Any]] = {}
    for split in data.splits:
        coded = data.coded(split)
        if schema.task is Task.REGRESSION:
            good = [v for v in coded.rows() if not isinstance(v, Exception)]
            stats = {}
            for t, name in enumerate(schema.targets):
                col = [v[t] for v in good if math.isfinite(v[t])]
                mean = sum(col) / len(col) if col else float("nan")
                var = sum((x - mean) ** 2 for x in col) / max(len(col) - 1, 1) if col else 0.0
                stats[name] = {"mean": round(mean, 4), "sd": round(math.sqrt(var), 4),
                               "min": min(col, default=None), "max": max(col, default=None)}
            out[split] = stats
            continue
        counts, fit = coded.class_counts(schema.task is Task.MULTILABEL)
        row = {str(c): counts[c] for c in schema.classes}
        unfit = len(coded.cells) - fit
        if unfit:
            row["(unfit)"] = unfit
        out[split] = row
    return out


def inspect_data(
    *,
    train: Any,
    valid: Any = None,
    test: Any = None,
    text_column: str = "text",
    text_pair_column: str | None = None,
    label_columns: str | Sequence[str] = ("label",),
    task: str = "auto",
    classes: Sequence[Any] | None = None,
    label_sep: str | None = None,
    positive: Any = None,
    valid_size: float = 0.1,
    seed: int = 42,
    exclude_rows: Any = None,
) -> Inspection:
    """Load the splits, infer the schema and audit everything; never loads a model.

    A label problem that prevents a schema (one class, a stray value in a binary task...)
    becomes an error finding next to the text checks, instead of an exception.

    Raises:
        DataError: The input is unusable (missing file, unreadable format, unknown column).
    """
    try:
        data = load_splits(train=train, valid=valid, test=test, text_column=text_column,
                           text_pair_column=text_pair_column, label_columns=label_columns,
                           task=task, classes=classes, label_sep=label_sep, positive=positive,
                           valid_size=valid_size, seed=seed, exclude_rows=exclude_rows)
    except LabelError as err:
        raw = read_splits(train=train, valid=valid, test=test, text_column=text_column,
                          text_pair_column=text_pair_column, label_columns=label_columns)
        if exclude_rows is not None:
            raw = exclude(raw, exclude_rows)
        frames = {s: t.frame for s, t in raw.tables.items()}
        more = audit_frames(frames, text_column=text_column, label_columns=raw.label_columns,
                            text_pair_column=text_pair_column)
        return Inspection(None, Findings([err.to_finding(split="train"), *more]),
                          {s: len(f) for s, f in frames.items()}, {},
                          {s: t.source for s, t in raw.tables.items()})
    return Inspection(data.schema, audit(data), {s: len(data.frames[s]) for s in data.splits},
                      distribution(data), dict(data.sources), data)


def inspect_recorded(manifest: dict[str, Any]) -> Any:
    """Re-run :func:`~labelwise.data.inspection.inspect_data` on the data a model was trained on.

    Reads the data section of the resolved config in ``labelwise.json`` (files, columns,
    task, carving seed), so a carved validation split comes out the same.

    Returns:
        The :class:`~labelwise.data.inspection.Inspection`.

    Raises:
        DataError: The manifest records no data, or the files cannot be read any more.
    """
    d = ((manifest.get("plan") or {}).get("config") or {}).get("data")
    if not d:
        raise DataError("the model's labelwise.json records no data section",
                        fix="re-save the model with labelwise train", code="LW403")
    try:
        return inspect_data(
            train=d["train"], valid=d.get("valid"), test=d.get("test"),
            text_column=d.get("text_column", "text"),
            text_pair_column=d.get("text_pair_column"),
            label_columns=d.get("label_columns") or ["label"], task=d.get("task", "auto"),
            classes=d.get("classes"), label_sep=d.get("label_sep"), positive=d.get("positive"),
            valid_size=d.get("valid_size", 0.1), seed=d.get("split_seed", 42),
            exclude_rows=d.get("exclude_rows"))
    except OSError as err:
        raise DataError(f"cannot read the training data again: {err}",
                        fix="restore the data files at the recorded paths") from None

"""How many rows ``model.max_length`` cuts, per split, measured with the model's tokenizer.

Cheap: only the fast tokenizer's ``tokenizer.json`` is read (the ``tokenizers`` package, no
weights, no torch, no transformers). A model without a ``tokenizer.json`` is not measured.
A split of more than :data:`SAMPLE` rows is measured on a seeded sample of that many rows
(the share then comes within about one point of the whole split's, at a fixed cost: the
tokenizer reads ~3,000 ag_news texts a second on one core here), and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.data.auditing import SPLIT_WORDS
from labelwise.data.io import rows_where
from labelwise.findings import Finding, Where
from labelwise.plan.model_ref import ModelRef

__all__ = ["Truncation", "measure_truncation", "truncation_findings", "MOST", "SAMPLE"]

MOST = 0.5  # a split with more than this share of rows cut is a warning (LW131)
SAMPLE = 5_000  # rows measured per split at most: a share's 95% interval is within ±1.4 points


@dataclass(frozen=True)
class Truncation:
    """Rows longer than ``max_length`` tokens (special tokens included), per split.

    ``measured`` rows of each split were tokenized (all of them, or a seeded sample of a
    large split); ``cut`` and ``longest`` count among those."""

    max_length: int
    rows: dict[str, int]
    cut: dict[str, int]
    longest: dict[str, int]
    measured: dict[str, int] = field(default_factory=dict)

    def seen(self, split: str) -> int:
        return self.measured.get(split, self.rows[split])

    def share(self, split: str) -> float:
        return self.cut[split] / self.seen(split) if self.seen(split) else 0.0

    def summary(self) -> str:
        parts = []
        for s in self.rows:
            if self.seen(s) < self.rows[s]:
                parts.append(f"{SPLIT_WORDS.get(s, s)} ~{self.share(s):.1%} ({self.cut[s]} of "
                             f"a sample of {self.seen(s):,} of {self.rows[s]:,})")
            else:
                parts.append(f"{SPLIT_WORDS.get(s, s)} {self.share(s):.1%} ({self.cut[s]} of "
                             f"{self.rows[s]})")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "rows": self.rows, "truncated": self.cut,
                "longest": self.longest, "measured": {s: self.seen(s) for s in self.rows},
                "share": {s: round(self.share(s), 4) for s in self.rows}}


def _tokenizer_file(model: ModelRef) -> Path | None:
    if model.local:
        path = Path(model.name_or_path) / "tokenizer.json"
        return path if path.is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - comes with transformers
        return None
    found = try_to_load_from_cache(model.name_or_path, "tokenizer.json")
    return Path(found) if isinstance(found, str) else None


def measure_truncation(model: ModelRef, data: Any, *, max_length: int,
                       sample: int | None = None) -> Truncation | None:
    """Count the rows of every split that ``max_length`` truncates (in a seeded sample of
    ``sample`` rows where a split is larger); ``None`` when the model has no
    ``tokenizer.json`` or the ``tokenizers`` package is missing."""
    sample = SAMPLE if sample is None else sample
    path = _tokenizer_file(model)
    if path is None:
        return None
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rows, cut, longest, measured = {}, {}, {}, {}
    columns = [c for c in (data.text_column, data.text_pair_column) if c]
    for split in data.splits:
        frame = data.frames[split][columns]
        rows[split] = len(frame)
        if len(frame) > sample:
            picked = np.zeros(len(frame), dtype=bool)
            picked[np.random.default_rng(0).choice(len(frame), sample, replace=False)] = True
            frame = rows_where(frame, picked)  # chunk by chunk: no copy of the whole column
        texts = [str(t) for t in frame[data.text_column].tolist()]
        if data.text_pair_column:
            pairs = [str(t) for t in frame[data.text_pair_column].tolist()]
            inputs: list[Any] = list(zip(texts, pairs, strict=True))
        else:
            inputs = texts
        lengths = [len(e.ids) for e in tokenizer.encode_batch_fast(inputs)] if inputs else []
        measured[split] = len(lengths)
        cut[split] = sum(n > max_length for n in lengths)
        longest[split] = max(lengths, default=0)
    return Truncation(max_length, rows, cut, longest, measured)


def truncation_findings(found: Truncation | None, *, source: str | None = None
                        ) -> list[Finding]:
    """A warning (LW131) when ``max_length`` cuts most rows of a split."""
    if found is None:
        return []
    most = [s for s in found.rows if found.share(s) > MOST]
    if not most:
        return []
    worst = max(most, key=found.share)
    sampled = "sampled " if found.seen(worst) < found.rows[worst] else ""
    return [Finding("LW131", "warning", f"model.max_length={found.max_length} truncates most "
                    f"rows: {found.summary()}; the longest {sampled}"
                    f"{SPLIT_WORDS.get(worst, worst)} row "
                    f"has {found.longest[worst]} tokens", Where(split=worst, file=source,
                                                                 detail="key model.max_length"),
                    "raise model.max_length (the model allows up to its position limit), or "
                    "accept that the model reads only the start of each text")]

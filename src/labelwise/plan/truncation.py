"""How many rows ``model.max_length`` cuts, per split, measured with the model's tokenizer.

Cheap: only the fast tokenizer's ``tokenizer.json`` is read (the ``tokenizers`` package, no
weights, no torch, no transformers). A model without a ``tokenizer.json`` is not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.data.auditing import SPLIT_WORDS
from labelwise.findings import Finding, Where
from labelwise.plan.model_ref import ModelRef

__all__ = ["Truncation", "measure_truncation", "truncation_findings", "MOST"]

MOST = 0.5  # a split with more than this share of rows cut is a warning (LW131)


@dataclass(frozen=True)
class Truncation:
    """Rows longer than ``max_length`` tokens (special tokens included), per split."""

    max_length: int
    rows: dict[str, int]
    cut: dict[str, int]
    longest: dict[str, int]

    def share(self, split: str) -> float:
        return self.cut[split] / self.rows[split] if self.rows[split] else 0.0

    def summary(self) -> str:
        return ", ".join(f"{SPLIT_WORDS.get(s, s)} {self.share(s):.1%} ({self.cut[s]} of "
                         f"{self.rows[s]})" for s in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {"max_length": self.max_length, "rows": self.rows, "truncated": self.cut,
                "longest": self.longest,
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


def measure_truncation(model: ModelRef, data: Any, *, max_length: int) -> Truncation | None:
    """Count the rows of every split that ``max_length`` truncates; ``None`` when the model
    has no ``tokenizer.json`` or the ``tokenizers`` package is missing."""
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
    rows, cut, longest = {}, {}, {}
    for split in data.splits:
        texts = data.texts(split)
        if data.text_pair_column:
            pairs = [str(t) for t in data.frames[split][data.text_pair_column].tolist()]
            inputs: list[Any] = list(zip(texts, pairs, strict=True))
        else:
            inputs = texts
        lengths = [len(e.ids) for e in tokenizer.encode_batch(inputs)] if inputs else []
        rows[split] = len(lengths)
        cut[split] = sum(n > max_length for n in lengths)
        longest[split] = max(lengths, default=0)
    return Truncation(max_length, rows, cut, longest)


def truncation_findings(found: Truncation | None, *, source: str | None = None
                        ) -> list[Finding]:
    """A warning (LW131) when ``max_length`` cuts most rows of a split."""
    if found is None:
        return []
    most = [s for s in found.rows if found.share(s) > MOST]
    if not most:
        return []
    worst = max(most, key=found.share)
    return [Finding("LW131", "warning", f"model.max_length={found.max_length} truncates most "
                    f"rows: {found.summary()}; the longest {SPLIT_WORDS.get(worst, worst)} row "
                    f"has {found.longest[worst]} tokens", Where(split=worst, file=source,
                                                                 detail="key model.max_length"),
                    "raise model.max_length (the model allows up to its position limit), or "
                    "accept that the model reads only the start of each text")]

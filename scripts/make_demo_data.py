"""Build the demo sample shipped in ``src/labelwise/demo`` from the GoEmotions files.

GoEmotions (Demszky et al., 2020) is Apache-2.0. The sample keeps each row's text and
original emotion list, and adds ``sentiment``: the emotion's group in the GoEmotions
taxonomy (positive / negative / ambiguous, and neutral), for rows whose emotions all fall in
one group. Rows are drawn with a fixed seed: mostly positive and negative, with a few
neutral rows, the way a third class slips into data believed binary.

    python scripts/make_demo_data.py ../shared/data/go_emotions
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

POSITIVE = {"admiration", "amusement", "approval", "caring", "desire", "excitement",
            "gratitude", "joy", "love", "optimism", "pride", "relief"}
NEGATIVE = {"anger", "annoyance", "disappointment", "disapproval", "disgust", "embarrassment",
            "fear", "grief", "nervousness", "remorse", "sadness"}
AMBIGUOUS = {"confusion", "curiosity", "realization", "surprise"}
SIZES = {"train": (300, 300, 24), "validation": (80, 80, 6), "test": (80, 80, 6)}


def group(labels: list[str]) -> str | None:
    groups = set()
    for label in labels:
        groups.add("positive" if label in POSITIVE else "negative" if label in NEGATIVE
                   else "ambiguous" if label in AMBIGUOUS else "neutral")
    return groups.pop() if len(groups) == 1 else None


def main(source: Path, target: Path) -> None:
    rng = random.Random(20261123)
    for split, (n_pos, n_neg, n_neu) in SIZES.items():
        rows = [json.loads(line) for line in (source / f"{split}.jsonl").open(encoding="utf-8")]
        by = {"positive": [], "negative": [], "neutral": []}
        for row in rows:
            g = group(row["labels"])
            if g in by:
                by[g].append({"text": row["text"], "labels": row["labels"], "sentiment": g})
        picked = (rng.sample(by["positive"], n_pos) + rng.sample(by["negative"], n_neg)
                  + rng.sample(by["neutral"], n_neu))
        rng.shuffle(picked)
        name = "valid" if split == "validation" else split
        with (target / f"{name}.jsonl").open("w", encoding="utf-8") as out:
            for row in picked:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parents[1] / "src/labelwise/demo")

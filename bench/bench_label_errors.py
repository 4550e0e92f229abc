"""Label-error detection on planted noise: precision, recall, F1 and wall time.

On each dataset's train split with ``--flip`` of the labels flipped uniformly at random
(seeded), three detectors run in the same process:

* ``baseline``: cleanlab's ``find_label_issues`` (defaults) on out-of-fold probabilities
  of a plain ``LogisticRegression`` over frozen MiniLM sentence embeddings (5 folds);
* ``fast``: ``labelwise.find_label_errors(method="fast")``;
* ``thorough``: ``labelwise.find_label_errors(method="thorough")`` with the dataset's
  config from bench/configs/ (``--thorough`` to run it: k fine-tunes).

    python bench/bench_label_errors.py [--datasets ag_news,trec,sst2] [--rows 8000]
        [--flip 0.05] [--thorough] [--out bench/results/label_errors.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CONFIGS = Path(__file__).resolve().parent / "configs"


def planted(name: str, rows: int, flip: float, seed: int) -> tuple[pd.DataFrame, set[int]]:
    df = pd.read_csv(DATA / name / "train.csv")
    if rows:
        df = df.sample(n=min(rows, len(df)), random_state=seed).reset_index(drop=True)
    rng = np.random.default_rng(seed)
    classes = sorted(df["label"].astype(str).unique())
    df["label"] = df["label"].astype(str)
    flipped = rng.choice(len(df), size=int(round(flip * len(df))), replace=False)
    for i in flipped:
        df.loc[i, "label"] = rng.choice([c for c in classes if c != df.loc[i, "label"]])
    return df, set(int(i) for i in flipped)


def score(flagged: set[int], truth: set[int], seconds: float) -> dict[str, float]:
    tp = len(flagged & truth)
    p = tp / max(len(flagged), 1)
    r = tp / max(len(truth), 1)
    return {"flagged": len(flagged), "planted": len(truth), "precision": round(p, 3),
            "recall": round(r, 3), "f1": round(2 * p * r / max(p + r, 1e-12), 3),
            "seconds": round(seconds, 1)}


def baseline(df: pd.DataFrame) -> set[int]:
    """The plain recipe: LR on frozen MiniLM embeddings, 5 folds, cleanlab's defaults."""
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from labelwise.training.label_errors import embed_texts

    emb = embed_texts(df["text"].astype(str).tolist(), progress=False)
    classes = sorted(df["label"].unique())
    y = df["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    probs = cross_val_predict(LogisticRegression(max_iter=1000), emb, y, cv=5,
                              method="predict_proba")
    return set(np.flatnonzero(find_label_issues(y, probs)).tolist())


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, object]:
    from labelwise import find_label_errors

    df, truth = planted(name, args.rows, args.flip, args.seed)
    out: dict[str, object] = {"rows": len(df)}
    start = time.perf_counter()
    out["baseline"] = score(baseline(df), truth, time.perf_counter() - start)
    print(name, "baseline", out["baseline"], flush=True)
    start = time.perf_counter()
    found = find_label_errors(train=df, valid=df.iloc[:50], folds=5, seed=args.seed,
                              progress=False)
    out["fast"] = score(set(found.rows_flagged), truth, time.perf_counter() - start)
    print(name, "fast", out["fast"], flush=True)
    if args.thorough:
        from labelwise.plan.config import load_config

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.csv"
            df.to_csv(path, index=False)
            base = load_config(CONFIGS / f"{name}.yaml")
            config = base.model_copy(update={"data": base.data.model_copy(
                update={"train": str(path), "valid": str(path), "test": None})})
            start = time.perf_counter()
            found = find_label_errors(config=config, method="thorough", folds=args.folds,
                                      seed=args.seed, progress=False)
            out["thorough"] = score(set(found.rows_flagged), truth,
                                    time.perf_counter() - start)
        print(name, "thorough", out["thorough"], flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ag_news,trec,sst2")
    parser.add_argument("--rows", type=int, default=8000, help="0: the whole train split")
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thorough", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench/results/label_errors.json"))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {"machine": {"cpus": len(os.sched_getaffinity(0)),
                           "python": platform.python_version()},
               "command": " ".join(sys.argv), "flip": args.flip, "datasets": {}}
    for name in args.datasets.split(","):
        results["datasets"][name] = run_dataset(name, args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

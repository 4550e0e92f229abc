"""Label-error detection on planted noise: precision, recall, F1 and wall time.

On each dataset's train split with ``--flip`` of the labels flipped uniformly at random
(seeded), three detectors run in the same process:

* ``baseline``: cleanlab's ``find_label_issues`` (defaults) on out-of-fold probabilities
  of a plain ``LogisticRegression`` over frozen MiniLM sentence embeddings (5 folds);
* ``fast``: ``labelwise.find_label_errors(method="fast")``;
* ``thorough``: ``labelwise.find_label_errors(method="thorough")`` with the dataset's
  config from bench/configs/ and ``--thorough-epochs`` (3, labelwise's default) per fold
  (``--thorough`` to run it: k fine-tunes).

    python bench/bench_label_errors.py [--datasets ag_news,trec,sst2] [--rows 8000]
        [--flip 0.05] [--thorough] [--out bench/results/label_errors.json]

``--effect``: what cleaning buys. ag_news, a seeded train sample (``--effect-rows``) with
``--effect-flip`` of the labels flipped, trained with ``labelwise.train``, the ag_news
bench config and ``--effect-epochs`` (3, labelwise's default) (a) on the noisy labels,
(b) on the noisy file with ``data.exclude_rows`` set to the rows ``find_label_errors``
flagged, (c) on the clean labels; test accuracy of each
on the same test sample and the share of the lost accuracy that (b) wins back. With
``--effect-seeds 42,43,...`` the three trainings run once per training seed (the noise,
the samples and the detection stay those of ``--seed``), and the means are compared.
``--effect-relabel`` adds (d): the noisy file with each flagged row's label replaced by the
suggested one (a reviewer accepting every suggestion), with the share of the loss it wins
back.

``--real NAME``: ``fast`` on a real, unplanted train split (``--rows`` sample, 0: all) and
its lowest-quality suspects, for review.

Every result carries the 1/5/15-minute load averages before and after it: the 2 cores
may be shared with other jobs.
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


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages (other jobs share the cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def baseline(df: pd.DataFrame) -> tuple[set[int], float]:
    """The plain recipe: LR on frozen MiniLM embeddings, 5 folds, cleanlab's defaults.
    Returns the flagged rows and the seconds spent embedding."""
    from cleanlab.filter import find_label_issues
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    from labelwise.training.label_errors import embed_texts

    start = time.perf_counter()
    emb = embed_texts(df["text"].astype(str).tolist(), progress=False)
    embed_seconds = time.perf_counter() - start
    classes = sorted(df["label"].unique())
    y = df["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    probs = cross_val_predict(LogisticRegression(max_iter=1000), emb, y, cv=5,
                              method="predict_proba")
    return set(np.flatnonzero(find_label_issues(y, probs)).tolist()), embed_seconds


class Spy:
    """Wraps a module-level function of ``labelwise.training.label_errors`` (the name
    ``find_label_errors`` calls): the seconds spent in it, its last arguments and result."""

    def __init__(self, name: str) -> None:
        self.name, self.seconds, self.args, self.result = name, 0.0, (), None

    def __enter__(self) -> Spy:
        from labelwise.training import label_errors as module

        self.module, self.original = module, getattr(module, self.name)

        def spied(*args: object, **kwargs: object) -> object:
            start = time.perf_counter()
            try:
                self.args, self.result = args, self.original(*args, **kwargs)
                return self.result
            finally:
                self.seconds += time.perf_counter() - start

        setattr(module, self.name, spied)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.module, self.name, self.original)


def finetunes_only(spy: Spy) -> set[int]:
    """The rows cleanlab flags from the fine-tunes' out-of-fold outputs alone (what
    ``thorough`` gave before it averaged them with the linear model's)."""
    from labelwise.scoring.label_errors import issues_from_predictions
    from labelwise.training.label_errors import _training_file

    _, data, texts, y, _, _ = spy.args
    rows = _training_file(data)[2]
    found = issues_from_predictions(schema=data.schema, targets=y, predictions=spy.result,
                                    rows=rows, texts=texts, method="thorough")
    return set(found.rows_flagged)


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, object]:
    from labelwise import find_label_errors

    df, truth = planted(name, args.rows, args.flip, args.seed)
    out: dict[str, object] = {"rows": len(df)}
    before, start = load(), time.perf_counter()
    flagged, embed_seconds = baseline(df)
    out["baseline"] = score(flagged, truth, time.perf_counter() - start)
    out["baseline"].update(embed_seconds=round(embed_seconds, 1), load_before=before,
                           load_after=load())
    print(name, "baseline", out["baseline"], flush=True)
    before, start = load(), time.perf_counter()
    with Spy("embed_texts") as timer:
        found = find_label_errors(train=df, valid=df.iloc[:50], label_columns=["label"],
                                  folds=5, seed=args.seed, progress=False)
    out["fast"] = score(set(found.rows_flagged), truth, time.perf_counter() - start)
    out["fast"].update(embed_seconds=round(timer.seconds, 1), load_before=before,
                       load_after=load())
    out["fast_seconds_vs_baseline"] = round(out["fast"]["seconds"]
                                            / max(out["baseline"]["seconds"], 1e-9), 2)
    print(name, "fast", out["fast"], flush=True)
    if args.thorough:
        from labelwise.plan.config import load_config

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "train.csv"
            df.to_csv(path, index=False)
            base = load_config(CONFIGS / f"{name}.yaml")
            config = base.model_copy(update={
                "data": base.data.model_copy(
                    update={"train": str(path), "valid": str(path), "test": None}),
                "train": base.train.model_copy(update={"epochs": args.thorough_epochs})})
            before, start = load(), time.perf_counter()
            with Spy("embed_texts") as embed, Spy("_finetune_oof") as tunes:
                found = find_label_errors(config=config, method="thorough",
                                          folds=args.folds, seed=args.seed, progress=False)
            out["thorough"] = score(set(found.rows_flagged), truth,
                                    time.perf_counter() - start)
            out["thorough"].update(embed_seconds=round(embed.seconds, 1),
                                   finetune_seconds=round(tunes.seconds, 1),
                                   load_before=before, load_after=load())
            out["thorough_finetunes_only"] = score(finetunes_only(tunes), truth,
                                                   tunes.seconds)
        print(name, "thorough", out["thorough"], flush=True)
        print(name, "thorough, fine-tunes only", out["thorough_finetunes_only"], flush=True)
    return out


def train_accuracy(config: object, work: Path, name: str) -> dict[str, object]:
    """``labelwise.train`` on ``config`` into ``work/name``; test accuracy and wall time."""
    from labelwise import train

    run = config.model_copy(update={"output_dir": str(work / name)})
    before, start = load(), time.perf_counter()
    result = train(run, overwrite=True)
    return {"test_accuracy": round(float(result.metrics["test"]["accuracy"]), 4),
            "seconds": round(time.perf_counter() - start, 1), "load_before": before,
            "load_after": load()}


def effect(args: argparse.Namespace) -> dict[str, object]:
    """ag_news: train on noisy labels (a), without the flagged rows (b), on clean labels (c).

    (b) is the user path: ``find_label_errors`` on the noisy training file, its suspects
    written as the review CSV (``write_csv``), the run config's ``data.exclude_rows``
    pointing at it; (d), with ``--effect-relabel``, the flagged rows given their suggested
    labels. The same config, validation and test sample for all, once per training seed.
    """
    from labelwise import find_label_errors
    from labelwise.plan.config import load_config

    name = "ag_news"
    clean = pd.read_csv(DATA / name / "train.csv").sample(
        n=args.effect_rows, random_state=args.seed).reset_index(drop=True)
    clean["label"] = clean["label"].astype(str)
    noisy, truth = planted(name, args.effect_rows, args.effect_flip, args.seed)
    assert (noisy["text"] == clean["text"]).all()  # the same rows, some labels flipped
    valid = pd.read_csv(DATA / name / "validation.csv")
    valid = valid.sample(n=min(args.effect_valid, len(valid)), random_state=args.seed)
    test = pd.read_csv(DATA / name / "test.csv")
    test = test.sample(n=min(args.effect_test, len(test)), random_state=args.seed)
    out: dict[str, object] = {"dataset": name, "train_rows": len(noisy),
                              "flip": args.effect_flip, "planted": len(truth),
                              "valid_rows": len(valid), "test_rows": len(test),
                              "detector": args.effect_method,
                              "epochs": args.effect_epochs}
    with tempfile.TemporaryDirectory(prefix="lebench-effect-") as tmp:
        work = Path(tmp)
        paths = {}
        for split, frame in (("noisy", noisy), ("clean", clean), ("valid", valid),
                             ("test", test)):
            paths[split] = work / f"{split}.csv"
            frame.to_csv(paths[split], index=False)
        base = load_config(CONFIGS / f"{name}.yaml")
        base = base.model_copy(update={
            "train": base.train.model_copy(update={"epochs": args.effect_epochs})})

        def config(train: Path, exclude: Path | None = None) -> object:
            return base.model_copy(update={"data": base.data.model_copy(update={
                "train": str(train), "valid": str(paths["valid"]), "test": str(paths["test"]),
                "exclude_rows": str(exclude) if exclude else None})})

        before, start = load(), time.perf_counter()
        found = find_label_errors(config=config(paths["noisy"]), method=args.effect_method,
                                  folds=args.folds, seed=args.seed, progress=False)
        review = found.write_csv(work / "suspects.csv")
        out["detection"] = score(set(found.rows_flagged), truth, time.perf_counter() - start)
        out["detection"].update(load_before=before, load_after=load())
        print("effect detection", out["detection"], flush=True)
        runs = {"a_noisy": ("noisy", None), "b_without_flagged": ("noisy", review),
                "c_clean": ("clean", None)}
        if args.effect_relabel:
            relabelled = noisy.copy()
            relabelled.loc[found.rows_flagged, "label"] = [
                str(x.suggested) for x in found.suspects]
            out["relabel_correct"] = int(sum(
                str(x.suggested) == clean.at[x.row, "label"] for x in found.suspects))
            paths["relabelled"] = work / "relabelled.csv"
            relabelled.to_csv(paths["relabelled"], index=False)
            runs["d_relabelled"] = ("relabelled", None)
        out["seeds"] = {}
        for seed in (int(s) for s in args.effect_seeds.split(",")):
            per_seed: dict[str, object] = {}
            for key, (train_split, exclude) in runs.items():
                run = config(paths[train_split], exclude)
                run = run.model_copy(update={"train": run.train.model_copy(
                    update={"seed": seed})})
                per_seed[key] = train_accuracy(run, work, f"{key[0]}{seed}")
                print("effect seed", seed, key, per_seed[key], flush=True)
            per_seed.update(outcome({k: per_seed[k]["test_accuracy"] for k in runs}))
            out["seeds"][str(seed)] = per_seed
    out["mean_test_accuracy"] = {k: round(sum(
        r[k]["test_accuracy"] for r in out["seeds"].values()) / len(out["seeds"]), 4)
        for k in runs}
    out.update(outcome(out["mean_test_accuracy"]))
    return out


def outcome(accuracy: dict[str, float]) -> dict[str, object]:
    """What noise cost, c - a, and the share of it won back by (b) and, if run, (d)."""
    a, c = accuracy["a_noisy"], accuracy["c_clean"]
    out = recovered(a, accuracy["b_without_flagged"], c)
    if "d_relabelled" in accuracy:
        out["recovered_fraction_relabelled"] = recovered(
            a, accuracy["d_relabelled"], c)["recovered_fraction"]
    return out


def recovered(a: float, b: float, c: float) -> dict[str, object]:
    """What noise cost (c - a) and the share of it that cleaning won back (b - a)."""
    return {"lost": round(c - a, 4),
            "recovered_fraction": round((b - a) / (c - a), 3) if c != a else None}


def real(args: argparse.Namespace) -> dict[str, object]:
    """``find_label_errors(method="fast")`` on a real, unplanted train split (the dataset's
    bench config): how many suspects, per class, and the lowest-quality ones for review.
    Candidates, not verified errors: nobody knows the true labels."""
    from labelwise import find_label_errors
    from labelwise.plan.config import load_config

    name = args.real
    base = load_config(CONFIGS / f"{name}.yaml")
    train = DATA / name / Path(base.data.train).name
    with tempfile.TemporaryDirectory(prefix="lebench-real-") as tmp:
        if args.rows:
            frame = pd.read_json(train, lines=True) if train.suffix == ".jsonl" \
                else pd.read_csv(train)
            frame = frame.sample(n=min(args.rows, len(frame)), random_state=args.seed)
            train = Path(tmp) / train.name
            if train.suffix == ".jsonl":
                frame.to_json(train, orient="records", lines=True, force_ascii=False)
            else:
                frame.to_csv(train, index=False)
        config = base.model_copy(update={"data": base.data.model_copy(update={
            "train": str(train), "valid": str(DATA / name / Path(base.data.valid).name),
            "test": None})})
        before, start = load(), time.perf_counter()
        found = find_label_errors(config=config, method="fast", folds=args.folds,
                                  seed=args.seed, progress=False)
        seconds = time.perf_counter() - start
    return {"dataset": name, "rows": found.rows, "method": found.method,
            "folds": found.folds, "seconds": round(seconds, 1), "load_before": before,
            "load_after": load(), "suspects": len(found.suspects),
            "per_class": found.per_class, "near_duplicates": len(found.near_duplicates),
            "lowest_quality": [s.to_dict() for s in found.suspects[:args.show]],
            "near_duplicate_examples": [d.to_dict() for d in found.near_duplicates[:5]]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ag_news,trec,sst2")
    parser.add_argument("--rows", type=int, default=8000, help="0: the whole train split")
    parser.add_argument("--flip", type=float, default=0.05)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--thorough", action="store_true")
    parser.add_argument("--thorough-epochs", type=float, default=3.0,
                        help="epochs of each fold's fine-tune (labelwise's default: 3)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/label_errors.json"))
    parser.add_argument("--effect", action="store_true",
                        help="only the ag_news noisy / without-flagged / clean training runs")
    parser.add_argument("--effect-rows", type=int, default=4000)
    parser.add_argument("--effect-flip", type=float, default=0.10)
    parser.add_argument("--effect-valid", type=int, default=1000)
    parser.add_argument("--effect-test", type=int, default=2000)
    parser.add_argument("--effect-epochs", type=float, default=3.0,
                        help="epochs of each training")
    parser.add_argument("--effect-method", choices=("fast", "thorough"), default="fast")
    parser.add_argument("--effect-seeds", default="42",
                        help="training seeds: each training runs once for each")
    parser.add_argument("--effect-relabel", action="store_true",
                        help="also (d): the flagged rows given their suggested labels")
    parser.add_argument("--real", default=None,
                        help="only: fast on this dataset's real train split (e.g. go_emotions)")
    parser.add_argument("--show", type=int, default=15, help="suspects kept with --real")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results = {"machine": {"cpus": len(os.sched_getaffinity(0)),
                           "python": platform.python_version()},
               "command": " ".join(sys.argv), "load_start": load()}
    if args.effect or args.real:
        results["effect" if args.effect else "real"] = effect(args) if args.effect \
            else real(args)
        results["load_end"] = load()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        print(json.dumps(results, indent=2))
        return
    results.update(flip=args.flip, datasets={},
                   thorough_epochs=args.thorough_epochs if args.thorough else None)
    from labelwise.training.label_errors import embed_texts

    embed_texts(["warm-up"] * 8, progress=False)  # imports and the first load, not timed
    for name in args.datasets.split(","):
        results["datasets"][name] = run_dataset(name, args)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        results["load_end"] = load()
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

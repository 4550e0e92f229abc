"""Data and run configs shared by the tuning tests: a tiny BERT, a separable binary task."""

from __future__ import annotations

import random

import pandas as pd

from labelwise.plan.config import config_from_dict

WORDS = "film plot story actor scene music city river".split()


def data(path, n, seed):
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        label = ["neg", "pos"][i % 2]
        key = "good great" if label == "pos" else "bad awful"
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(2, 6))]
        words.insert(rnd.randint(0, len(words)), key)
        rows.append({"text": " ".join(words), "label": label})
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def make(tmp_path, tiny_model, *, n_trials=3, space=None, search=None, train=None,
         out="out"):
    search = {"n_trials": n_trials, "objective": {"metric": "accuracy",
                                                  "direction": "maximize"},
              "space": space or {"train.learning_rate": {"type": "float", "low": 1e-3,
                                                         "high": 1e-2, "log": True}},
              **(search or {})}
    return config_from_dict({
        "data": {"train": data(tmp_path / "train.csv", 64, 1),
                 "valid": data(tmp_path / "valid.csv", 24, 2),
                 "test": data(tmp_path / "test.csv", 16, 3)},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"epochs": 1, "batch_size": 16, "evals_per_epoch": 2, **(train or {})},
        "search": search, "output_dir": str(tmp_path / out)})


# a trial at this learning rate raises inside the test Ray cluster (tests/ray_fault)
RAY_FAIL_LR = 0.002

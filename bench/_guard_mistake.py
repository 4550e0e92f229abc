"""A user's Trainer script meeting the width-3 label mistake, plain or with guard_trainer.

One-hot targets of width 3 (a third class slipped into sst2) reach a 2-logit MiniLM. Plain:
``trainer.train()`` dies in the loss ("Target size ... must be the same as input size").
``--guard``: the same script with ``labelwise.guard_trainer(trainer)`` before ``train()``.
Prints seconds from process start to the error as JSON (used by bench/bench_guard.py).

    python bench/_guard_mistake.py --data ../shared/data/sst2/train.csv [--guard]
"""

from __future__ import annotations

import argparse
import json
import os
import time

START = time.time()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--guard", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import pandas as pd
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    from labelwise.plan.model_ref import default_model_path

    model_path = str(default_model_path())
    frame = pd.read_csv(args.data).head(args.rows)
    ids = frame["label"].to_numpy().copy()
    ids[::97] = 2  # the mistake: a third class, one-hot encoded to width 3
    tok = AutoTokenizer.from_pretrained(model_path)
    ds = Dataset.from_dict({"text": frame["text"].tolist(),
                            "labels": np.eye(3, dtype=np.float32)[ids].tolist()})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=128), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    trainer = Trainer(model=model, args=TrainingArguments(
        output_dir="/tmp/guard-mistake", per_device_train_batch_size=16, max_steps=5,
        report_to=[], save_strategy="no", use_cpu=True),
        train_dataset=ds, data_collator=DataCollatorWithPadding(tok))
    error, guard_s, train_s = None, None, None
    try:
        if args.guard:
            import labelwise

            t0 = time.time()
            try:
                labelwise.guard_trainer(trainer)
            finally:
                guard_s = round(time.time() - t0, 3)
        t1 = time.time()
        try:
            trainer.train()
        finally:
            train_s = round(time.time() - t1, 3)
    except Exception as exc:  # the point of the benchmark
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    print(json.dumps({"seconds_to_error": round(time.time() - START, 3), "error": error,
                      "guard_call_s": guard_s, "train_call_s": train_s}))


if __name__ == "__main__":
    main()

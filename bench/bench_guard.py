"""guard_trainer: how soon it stops the width-3 mistake, and what it costs a training step.

    python bench/bench_guard.py [--repeats 3] [--steps 6] [--out bench/results/guard.json]

1. Time from process start to the error, for the same user script (bench/_guard_mistake.py:
   sst2, 2,000 rows, one-hot targets of width 3, a 2-logit MiniLM) plain (Transformers dies
   in the loss) and with ``labelwise.guard_trainer(trainer)`` (refused before ``train()``).
   Fresh processes, alternating plain / guarded, medians of ``--repeats`` after one warm-up.
   Also: how long ``guard_trainer`` itself takes, and how long the plain ``train()`` runs
   before Transformers' error (the part of the script after the shared prefix).
2. The per-batch guard's cost as a share of a training step: its own work on a batch (row
   ids in and out of the features, ``check_batch``; timeit, best of 5) over the median
   optimizer step of the packaged MiniLM (batch 32, sst2 rows, dynamic padding, 2 threads)
   measured in the same process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import timeit
from pathlib import Path

from _results import write_results

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def start_to_error(data: Path, guard: bool) -> dict[str, object]:
    cmd = [sys.executable, str(HERE / "_guard_mistake.py"), "--data", str(data / "sst2" /
                                                                          "train.csv")]
    proc = subprocess.run(cmd + (["--guard"] if guard else []), capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(proc.stdout.strip().splitlines()[-1])


def step_share(data: Path, steps: int, batch_size: int) -> dict[str, object]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import pandas as pd
    import torch
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    import labelwise
    from labelwise.plan.model_ref import default_model_path
    from labelwise.training.trainer import StepTimer

    torch.set_num_threads(2)
    path = str(default_model_path())
    frame = pd.read_csv(data / "sst2" / "train.csv").head(batch_size * (steps + 2))
    tok = AutoTokenizer.from_pretrained(path)
    ds = Dataset.from_dict({"text": frame["text"].tolist(), "label": frame["label"].tolist()})
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=128), batched=True)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    timer = StepTimer()
    plain = DataCollatorWithPadding(tok)
    trainer = Trainer(model=model, args=TrainingArguments(
        output_dir="/tmp/guard-step", per_device_train_batch_size=batch_size,
        max_steps=steps + 1, report_to=[], save_strategy="no", use_cpu=True,
        logging_strategy="no", disable_tqdm=True),
        train_dataset=ds, data_collator=plain, callbacks=[timer])
    labelwise.guard_trainer(trainer)
    step_times: list[float] = []
    original_end = timer.on_step_end

    def record(*a, **kw):
        before = timer.step_seconds
        original_end(*a, **kw)
        step_times.append(timer.step_seconds - before)

    timer.on_step_end = record
    trainer.train()
    steady = step_times[1:]  # the first step pays one-off allocations
    step_s = statistics.median(steady)
    # The guard's own work per batch, as in training: the dataset puts each row's id into
    # its features, the guarded collator takes them out again and checks the targets.
    from labelwise.training.guard import check_batch
    from labelwise.training.guard_trainer import ROW_KEY

    features = [dict(ds.select_columns(["input_ids", "label"])[i]) for i in range(batch_size)]
    batch = plain([{k: v for k, v in f.items()} for f in features])
    contract = trainer.labelwise_check.contract

    def guard_work() -> None:
        for i, f in enumerate(features):
            f[ROW_KEY] = i
        rows = [f.pop(ROW_KEY) for f in features]
        check_batch(contract, {"labels": batch["labels"], "row_ids": rows}, batch_index=0)

    n = 2000
    per_batch = min(timeit.repeat(guard_work, number=n, repeat=5)) / n
    return {"model": path, "batch_size": batch_size, "steps_timed": len(steady),
            "step_median_s": round(step_s, 4), "step_min_s": round(min(steady), 4),
            "step_max_s": round(max(steady), 4),
            "guard_per_batch_us": round(per_batch * 1e6, 2),
            "guard_share_of_step": per_batch / step_s}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "guard.json")
    args = parser.parse_args()
    started = time.time()
    start_to_error(args.data, True)  # warm the page cache
    runs: dict[str, list[dict[str, object]]] = {"plain": [], "guard": []}
    for _ in range(args.repeats):
        for name in ("plain", "guard"):
            runs[name].append(start_to_error(args.data, name == "guard"))
    medians = {name: statistics.median(float(r["seconds_to_error"]) for r in rs)
               for name, rs in runs.items()}
    out = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_avg_at_start": os.getloadavg()},
        "start_to_error": {
            "script": "bench/_guard_mistake.py (sst2 2,000 rows, one-hot width 3, MiniLM "
                      "num_labels=2)",
            "plain_median_s": round(medians["plain"], 2),
            "guard_median_s": round(medians["guard"], 2),
            "plain_over_guard": round(medians["plain"] / medians["guard"], 2),
            "plain_runs_s": [r["seconds_to_error"] for r in runs["plain"]],
            "guard_runs_s": [r["seconds_to_error"] for r in runs["guard"]],
            "guard_call_median_s": statistics.median(float(r["guard_call_s"])
                                                     for r in runs["guard"]),
            "plain_train_call_median_s": statistics.median(float(r["train_call_s"])
                                                           for r in runs["plain"]),
            "plain_error": runs["plain"][0]["error"], "guard_error": runs["guard"][0]["error"]},
        "per_batch": step_share(args.data, args.steps, args.batch_size),
        "load_avg_at_end": os.getloadavg(),
        "wall_s": round(time.time() - started, 1),
    }
    write_results(out, args.out)


if __name__ == "__main__":
    main()

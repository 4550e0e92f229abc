"""GPU check: what this machine trains on, plain Trainer vs labelwise on it, and a short tune.

    .venv/bin/python bench/gpu_check.py [--quick] [--rows 2000] [--steps 100] \\
        [--batch-size 32] [--data ../shared/data] [--out bench/results/gpu_check.json]

1. Device facts: torch and CUDA versions, each visible GPU (name, memory, compute
   capability, bf16), Apple MPS, and what labelwise resolves ``train.device: auto`` and
   ``train.precision: auto`` to here.
2. The same sst2 subset (the first ``--rows`` training rows, 512 validation rows), the same
   steps and batch size, trained by the plain Transformers Trainer (dynamic padding, as in
   bench/plain_trainer.py --mode b) in fp32, bf16 and fp16 where this machine has them, and
   by ``labelwise train`` with ``precision: auto``: samples/s of ``trainer.train()``
   (labelwise's includes its evaluation and checkpoint at each epoch), samples/s inside
   the optimizer steps (the ``x fp32`` column: against the plain fp32 run) and the peak GPU
   memory of each, side by side. On a machine with several GPUs the plain Trainer spreads
   each batch over all of them (``nn.DataParallel``) and labelwise trains on one: run the
   script with ``CUDA_VISIBLE_DEVICES=0`` for a one-GPU comparison.
3. A 4-trial ``labelwise tune`` (learning rate) with one worker per GPU (one worker without
   a GPU): wall time, trial states, the GPU each worker saw.

Without a GPU it runs the same steps with CPU-sized settings (400 rows, 20 steps, batch 16)
so that it keeps working where CI runs; ``--quick`` (what tests/test_gpu_check.py runs)
uses a tiny random BERT from ``labelwise.testing``, 8 steps and one thread instead of
MiniLM. Each
training runs in this process one after another; peak GPU memory is reset before each.
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
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
THREADS: list[int | None] = [None]  # --quick: 1 (a tiny model on shared cores)


def device_facts() -> dict[str, Any]:
    import torch
    import transformers

    from labelwise.plan.device import resolve_compute
    from labelwise.training.device import device_facts as facts_of

    facts = facts_of()
    gpus = []
    for i in range(facts.cuda_devices):
        props = torch.cuda.get_device_properties(i)
        gpus.append({"index": i, "name": props.name,
                     "memory_gib": round(props.total_memory / 2**30, 1),
                     "capability": f"{props.major}.{props.minor}",
                     "bf16": props.major >= 8})
    auto = resolve_compute("auto", "auto", facts)
    return {"python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "cuda": torch.version.cuda,
            "cuda_available": facts.cuda_devices > 0, "gpus": gpus, "mps": facts.mps,
            "cpu_cores": len(os.sched_getaffinity(0)),
            "labelwise_auto": {"device": auto.device, "why": auto.device_reason,
                               "precision": auto.precision, "why_precision":
                               auto.precision_reason}}


def precisions(facts: dict[str, Any]) -> list[str]:
    """The plain Trainer's precisions this machine has: fp32, bf16 (a GPU with it, or the
    CPU's autocast), fp16 (CUDA only)."""
    if facts["cuda_available"]:
        return ["fp32"] + (["bf16"] if facts["gpus"][0]["bf16"] else []) + ["fp16"]
    return ["fp32", "bf16"]


def _reset_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib() -> float | None:
    import torch

    return (round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if torch.cuda.is_available() else None)


def plain_trainer(model_path: str, train_csv: Path, *, precision: str, steps: int,
                  batch_size: int, work: Path) -> dict[str, Any]:
    """The tutorial path: datasets.map(tokenizer) -> AutoModel -> Trainer, dynamic padding."""
    import datasets
    import pandas as pd
    import torch
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments)

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    frame = pd.read_csv(train_csv)
    ds = datasets.Dataset.from_pandas(frame[["text", "label"]].rename(
        columns={"label": "labels"}))
    ds = ds.map(lambda b: tokenizer(b["text"], truncation=True, max_length=128),
                batched=True, remove_columns=["text"])
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=2)
    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(work / f"plain-{precision}"), max_steps=steps,
        per_device_train_batch_size=batch_size, learning_rate=5e-5, report_to=[],
        disable_tqdm=True, save_strategy="no", eval_strategy="no", logging_steps=10**6,
        use_cpu=not cuda and not torch.backends.mps.is_available(),
        bf16=precision == "bf16", fp16=precision == "fp16", dataloader_num_workers=0,
        seed=42)
    from transformers import TrainerCallback

    class Steps(TrainerCallback):  # time inside optimizer steps, as labelwise's StepTimer
        seconds = 0.0
        begun = 0.0

        def on_step_begin(self, *a: Any, **k: Any) -> None:
            self.begun = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            self.seconds += time.perf_counter() - self.begun

    timer = Steps()
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[timer],
                      data_collator=DataCollatorWithPadding(tokenizer))
    _reset_peak()
    started = time.perf_counter()
    out = trainer.train()
    return {"who": "plain Trainer", "precision": precision,
            "samples_per_s": round(float(out.metrics["train_samples_per_second"]), 2),
            "step_samples_per_s": round(steps * batch_size / timer.seconds, 2),
            "train_s": round(time.perf_counter() - started, 2),
            "peak_gpu_mib": _peak_mib()}


def labelwise_train(model_path: str, train_csv: Path, valid_csv: Path, *, steps: int,
                    batch_size: int, work: Path) -> dict[str, Any]:
    from labelwise.plan.config import config_from_dict
    from labelwise.training.train import train

    config = config_from_dict({
        "data": {"train": str(train_csv), "valid": str(valid_csv)},
        "model": {"name_or_path": model_path, "max_length": 128},
        "train": {"max_steps": steps, "batch_size": batch_size, "precision": "auto",
                  "evals_per_epoch": 1, "threads": THREADS[0]},
        "output_dir": str(work / "labelwise")})
    _reset_peak()
    started = time.perf_counter()
    result = train(config)
    s = result.stats
    return {"who": "labelwise train", "precision": f"auto -> {s['precision']}",
            "device": s["device"], "samples_per_s": round(float(s["samples_per_second"]), 2),
            "step_samples_per_s": round(s["steps"] * batch_size / s["step_seconds"], 2),
            "train_s": round(time.perf_counter() - started, 2),
            "peak_gpu_mib": s.get("peak_gpu_memory_mb"),
            "valid_accuracy": round(result.metrics["valid"]["accuracy"], 4)}


def labelwise_tune(model_path: str, train_csv: Path, valid_csv: Path, *, steps: int,
                   batch_size: int, work: Path, gpus: int) -> dict[str, Any]:
    from labelwise.plan.config import config_from_dict
    from labelwise.tuning import tune

    workers = max(1, gpus)
    config = config_from_dict({
        "data": {"train": str(train_csv), "valid": str(valid_csv)},
        "model": {"name_or_path": model_path, "max_length": 128},
        "train": {"max_steps": steps, "batch_size": batch_size, "evals_per_epoch": 1,
                  "threads": THREADS[0]},
        "search": {"n_trials": 4, "workers": workers, "pruner": "none",
                   "objective": {"metric": "accuracy", "direction": "maximize"},
                   "space": {"train.learning_rate": {"type": "float", "low": 1e-5,
                                                     "high": 1e-3, "log": True}}},
        "output_dir": str(work / "tune")})
    started = time.perf_counter()
    result = tune(config)
    return {"workers": workers, "gpus": gpus, "wall_s": round(time.perf_counter() - started, 1),
            "states": result.counts(), "best_value": result.best_value,
            "best_params": result.best_params}


def subset(data: Path, rows: int, work: Path) -> tuple[Path, Path]:
    import pandas as pd

    train = work / "train.csv"
    valid = work / "valid.csv"
    pd.read_csv(data / "sst2" / "train.csv").head(rows).to_csv(train, index=False)
    pd.read_csv(data / "sst2" / "validation.csv").head(512 if rows >= 512 else rows // 2
                                                        ).to_csv(valid, index=False)
    return train, valid


def table(runs: list[dict[str, Any]]) -> str:
    """samples/s of trainer.train() (labelwise's includes its evaluations and checkpoints),
    samples/s inside optimizer steps, each against the plain fp32 run, and peak memory."""
    base = runs[0]["step_samples_per_s"] or 1.0
    lines = [f"{'run':<18}{'precision':<15}{'samples/s':>10}{'in steps':>10}{'x fp32':>8}"
             f"{'peak GPU MiB':>14}"]
    for r in runs:
        peak = "-" if r["peak_gpu_mib"] is None else f"{r['peak_gpu_mib']:.0f}"
        lines.append(f"{r['who']:<18}{r['precision']:<15}{r['samples_per_s']:>10.1f}"
                     f"{r['step_samples_per_s']:>10.1f}"
                     f"{r['step_samples_per_s'] / base:>8.2f}{peak:>14}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a tiny random BERT and 8 steps (CI: checks the script works)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    facts = device_facts()
    gpu = facts["cuda_available"]
    if args.quick:
        import torch

        THREADS[0] = 1
        torch.set_num_threads(1)
    # a GPU machine: MiniLM, 2000 rows, 100 steps of 32; a CPU: the same steps, CPU-sized
    rows = args.rows or (2000 if gpu else 200 if args.quick else 400)
    steps = args.steps or (100 if gpu else 8 if args.quick else 20)
    batch = args.batch_size or (32 if gpu else 16)
    print(json.dumps({"device_facts": facts}, indent=2), flush=True)
    with tempfile.TemporaryDirectory(prefix="labelwise-gpu-check-") as tmp:
        work = Path(tmp)
        if args.quick:
            from labelwise.testing import make_tiny_bert

            words = " ".join(__import__("pandas").read_csv(
                args.data / "sst2" / "train.csv").head(rows)["text"]).split()
            model = str(make_tiny_bert(work / "tiny", vocab_words=words))
        else:
            from labelwise.plan.model_ref import default_model_path

            model = str(default_model_path())
        train_csv, valid_csv = subset(args.data, rows, work)
        runs = [plain_trainer(model, train_csv, precision=p, steps=steps, batch_size=batch,
                              work=work) for p in precisions(facts)]
        runs.append(labelwise_train(model, train_csv, valid_csv, steps=steps,
                                    batch_size=batch, work=work))
        print(table(runs), flush=True)
        tuned = labelwise_tune(model, train_csv, valid_csv, steps=steps, batch_size=batch,
                               work=work, gpus=len(facts["gpus"]))
    print(f"tune: 4 trials, {tuned['workers']} worker(s) on {tuned['gpus']} GPU(s): "
          f"{tuned['wall_s']} s, {tuned['states']}, best {tuned['best_value']}")
    out = {"machine": platform.node(), "quick": args.quick, "rows": rows, "steps": steps,
           "batch_size": batch, "model": "tiny random BERT" if args.quick else "MiniLM",
           "device_facts": facts, "train": runs, "tune": tuned}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

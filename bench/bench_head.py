"""How a new head starts and learns: GoEmotions, one epoch, three head settings.

    .venv/bin/python bench/bench_head.py [--epochs 1] [--out bench/results/head.json]

Runs from the repository root, one training at a time, through the ``labelwise train`` CLI on
``bench/configs/go_emotions.yaml`` (MiniLM, 10,000 comments, 28 labels) with the encoder at
learning rate 1e-4, 10% warmup, and:

1. ``model.head_bias: model`` — the head as Transformers initialises it (zero bias: every
   label starts at p = 0.5);
2. ``model.head_bias: prior`` — the bias at the log-odds of each label's training frequency
   (labelwise's default);
3. the prior, and ``train.head_learning_rate: 1e-3`` for the new head.

Reported: validation and test macro- and micro-F1 (thresholds tuned on validation), the
training loss at the end, wall time. The test split chooses nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VARIANTS = {
    "zero bias (model init)": ["model.head_bias=model"],
    "prior bias": ["model.head_bias=prior"],
    "prior bias + head rate 1e-3": ["model.head_bias=prior",
                                    "train.head_learning_rate=1e-3"],
}


def run(name: str, sets: list[str], epochs: float, out_dir: Path) -> dict:
    cmd = [str(ROOT / ".venv/bin/labelwise"), "train", "--config",
           "bench/configs/go_emotions.yaml", "--overwrite", "--no-report", "-o", str(out_dir),
           "--set", f"train.epochs={epochs:g}", "--set", "train.learning_rate=1e-4",
           "--set", "train.warmup_ratio=0.1", "--set", "train.evals_per_epoch=1"]
    for s in sets:
        cmd += ["--set", s]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    meta = json.loads((out_dir / "labelwise.json").read_text())
    metrics = meta["metrics"]
    log = [json.loads(line) for line in (out_dir / "train_log.jsonl").read_text().splitlines()]
    losses = [h["loss"] for h in log if "loss" in h]
    row = {"variant": name, "sets": sets, "wall_seconds": round(wall, 1),
           "last_train_loss": losses[-1] if losses else None,
           **{f"{split}_{m}": metrics[split][m] for split in ("valid", "test")
              for m in ("macro_f1", "micro_f1")},
           "command": " ".join(c if " " not in c else repr(c) for c in cmd)}
    print(f"{name}: valid macro-F1 {row['valid_macro_f1']:.3f}, test macro-F1 "
          f"{row['test_macro_f1']:.3f}, micro-F1 {row['test_micro_f1']:.3f}, last loss "
          f"{row['last_train_loss']}, {wall:.0f} s", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "head.json")
    args = parser.parse_args()
    rows = [run(name, sets, args.epochs, Path("/tmp/labelwise-bench/head") / str(i))
            for i, (name, sets) in enumerate(VARIANTS.items())]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "head_init", "dataset": "go_emotions", "epochs": args.epochs,
        "machine": {"arch": platform.machine(), "python": platform.python_version()},
        "date": time.strftime("%Y-%m-%d"), "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(main())

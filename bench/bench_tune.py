"""labelwise tune against ``Trainer.hyperparameter_search(backend="optuna")``, same run.

Same data (TREC coarse: the first --rows training rows, 0 for all 4,952, and the 500
validation rows), same model (MiniLM), same space (learning rate log-uniform 5e-5..5e-4,
batch size 16 or 32), --epochs per trial, --evals-per-epoch evaluations (each one feeds the
pruner on both sides: labelwise's median pruner, Optuna's default median pruner through
Trainer), accuracy maximised, the same time budget. Each tool runs in its own fresh
process, one after the other; labelwise once per --workers count (``1,2``: one process
with both cores, then two worker processes with a core each, as ``labelwise tune
--workers 2`` runs them).

    python bench/bench_tune.py --budget 480 --rows 2000 --out bench/results/tune.json
    python bench/bench_tune.py --budget 900 --rows 0 --epochs 2 --workers 1,2 \
        --out bench/results/tune_full_trec.json

Reported per run: finished trials (complete + pruned by the pruner) per hour of total wall
time (from process start: imports, tokenizing and model loading count), best validation
accuracy, the share of the processes' time spent outside optimizer steps, and every trial.
labelwise stops the trial that is running when the budget ends (PRUNED, with the reason
"stopped at step ..."); Trainer's search lets it finish after the budget. A stopped trial is
not counted as finished, but its time is: the count is the conservative one for labelwise.
For labelwise the share outside steps is split into the part inside trials (building the
trial's model and Trainer, evaluations, metrics) and the part outside them (imports,
tokenizing, loading the base weights, the study's bookkeeping between trials, saving
``best/``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_results

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "trec"

RUNNER = """
import json, os, sys, time
START = time.perf_counter()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from labelwise.plan.config import config_from_dict
from labelwise.tuning import tune
args = json.loads(sys.argv[1])
workers = args["workers"]
config = config_from_dict({
    "data": {"train": args["train"], "valid": args["valid"]},
    "model": {"max_length": 128},
    "train": {"epochs": args["epochs"], "evals_per_epoch": args["evals_per_epoch"]},
    "search": {"n_trials": 10000, "objective": {"metric": "accuracy", "direction": "maximize"},
               "space": {"train.learning_rate": {"type": "float", "low": 5e-5, "high": 5e-4,
                                                 "log": True},
                         "train.batch_size": {"type": "categorical", "choices": [16, 32]}}},
    "output_dir": args["out_dir"]})
search_start = time.perf_counter()
result = tune(config, timeout=args["budget"], workers=workers, overwrite=True)
wall = time.perf_counter() - search_start
counts = result.counts()
trials = [{"number": t.number, "state": t.state, "value": t.value, "params": t.params,
           "duration_s": t.duration_s, "step_seconds": t.step_seconds, "reason": t.reason}
          for t in result.trials]
stopped = sum(1 for t in trials if t["reason"].startswith("stopped at step"))
print(json.dumps({"tool": "labelwise tune", "workers": workers, "budget_s": args["budget"],
                  "setup_s": round(search_start - START, 2), "search_wall_s": round(wall, 2),
                  "total_wall_s": round(time.perf_counter() - START, 2), "states": counts,
                  "stopped_at_budget": stopped,
                  "finished_trials": counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
                  - stopped,
                  "best_objective": result.best_value, "best_params": result.best_params,
                  "step_seconds": result.stats["step_seconds"],
                  "trial_seconds": result.stats["trial_seconds"], "trials": trials}))
"""


def run(cmd: list[str]) -> dict:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd[:3]} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def derived(r: dict) -> dict:
    hours = r["total_wall_s"] / 3600
    processes = r.get("workers", 1)  # the time of every process that trains counts
    total = r["total_wall_s"] * processes
    out = {**r, "trials_per_hour": round(r["finished_trials"] / hours, 1),
           "outside_steps_share": round(1 - r["step_seconds"] / total, 4)}
    if "trial_seconds" in r:  # labelwise: where the time outside steps goes
        out["outside_breakdown"] = {
            "inside_trials": round((r["trial_seconds"] - r["step_seconds"]) / total, 4),
            "outside_trials": round((total - r["trial_seconds"]) / total, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=480)
    parser.add_argument("--rows", type=int, default=2000, help="training rows; 0: all")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--evals-per-epoch", type=int, default=1)
    parser.add_argument("--workers", default="1",
                        help="labelwise runs, one per worker count: 1, or 1,2")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "tune.json")
    args = parser.parse_args()
    import pandas as pd

    with tempfile.TemporaryDirectory() as tmp:
        train = Path(tmp) / "train.csv"
        frame = pd.read_csv(DATA / "train.csv")
        (frame.head(args.rows) if args.rows else frame).to_csv(train, index=False)
        rows = len(frame) if not args.rows else min(args.rows, len(frame))
        valid = str(DATA / "validation.csv")
        plain = derived(run([sys.executable, str(HERE / "plain_hpsearch.py"), "--train",
                             str(train), "--valid", valid, "--budget", str(args.budget),
                             "--epochs", str(args.epochs), "--evals-per-epoch",
                             str(args.evals_per_epoch)]))
        ours: list[dict] = []
        for workers in (int(w) for w in args.workers.split(",")):
            spec = {"train": str(train), "valid": valid, "budget": args.budget,
                    "epochs": args.epochs, "evals_per_epoch": args.evals_per_epoch,
                    "workers": workers, "out_dir": str(Path(tmp) / f"lw{workers}")}
            ours.append(derived(run([sys.executable, "-c", RUNNER, json.dumps(spec)])))
            # written after each run: a long benchmark keeps what it has measured
            write_results(report(args, rows, plain, ours), args.out)


def report(args: argparse.Namespace, rows: int, plain: dict, ours: list[dict]) -> dict:
    return {"benchmark": "tune_vs_hyperparameter_search",
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()}",
            "data": f"trec coarse, first {rows} train rows, 500 validation rows",
            "epochs": args.epochs, "evals_per_epoch": args.evals_per_epoch,
            "date": time.strftime("%Y-%m-%d"),
            "plain": plain, "labelwise": ours,
            "trials_per_hour_ratio": {f"workers={r['workers']}": round(
                r["trials_per_hour"] / plain["trials_per_hour"], 2) for r in ours}}

if __name__ == "__main__":
    main()

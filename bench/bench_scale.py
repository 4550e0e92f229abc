"""Wall time of one small search with 1 and 2 workers: Optuna processes and Ray Tune.

    .venv/bin/python bench/bench_scale.py [--rows 1500] [--trials 6] \\
        [--out bench/results/scale.json]

The search: TREC coarse (6 classes), the first ``--rows`` training rows and 300 validation
rows, the packaged MiniLM, one epoch a trial, batch 32, max_length 64, a fixed
learning-rate list (``--trials`` trials, the random sampler, no pruning), so every setup
runs the same trials. Four setups, run as a user runs them:

* ``optuna-1``: ``labelwise tune`` (one process, torch on both cores);
* ``optuna-2``: ``labelwise tune --workers 2`` (two processes on one SQLite study, one core
  each);
* ``ray-1``: ``labelwise tune --backend ray`` with ``search.ray.cpus_per_trial: 2`` (one
  trial at a time on a local Ray);
* ``ray-2``: the same with ``cpus_per_trial: 1`` (two trials at once).

Each setup runs twice, interleaved (A B C D A B C D), and the best wall time is reported, as
the machine is shared: every run also records the CPU share other processes took
(``other_cpu_share``, from /proc/stat). The token cache is warm for all setups (one
untimed ``labelwise tune`` with one trial runs first), so the wall times compare the
search, not tokenization.
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
from typing import Any

import pandas as pd
import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "trec"
sys.path.insert(0, str(HERE))
from bench_datasets import busy_cpu_seconds, children_cpu_seconds  # noqa: E402

SETUPS: dict[str, dict[str, Any]] = {
    "optuna-1": {"args": [], "set": {}},
    "optuna-2": {"args": ["--workers", "2"], "set": {}},
    "ray-1": {"args": ["--backend", "ray"], "set": {"search.ray.cpus_per_trial": 2}},
    "ray-2": {"args": ["--backend", "ray"], "set": {"search.ray.cpus_per_trial": 1}},
}


def write_config(work: Path, rows: int, trials: int) -> Path:
    pd.read_csv(DATA / "train.csv").head(rows).to_csv(work / "train.csv", index=False)
    pd.read_csv(DATA / "validation.csv").head(300).to_csv(work / "valid.csv", index=False)
    rates = [round(5e-5 * 1.5 ** i, 8) for i in range(trials)]
    config = {
        "data": {"train": str(work / "train.csv"), "valid": str(work / "valid.csv"),
                 "label_columns": ["label"]},
        "model": {"name_or_path": None, "max_length": 64},
        "train": {"epochs": 1, "batch_size": 32, "evals_per_epoch": 1},
        "search": {"n_trials": trials, "sampler": "random", "pruner": "none",
                   "objective": {"metric": "accuracy", "direction": "maximize"},
                   "space": {"train.learning_rate": {"type": "categorical",
                                                     "choices": rates}}},
    }
    path = work / "scale.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run(setup: str, config: Path, work: Path, env: dict[str, str]) -> dict[str, Any]:
    spec = SETUPS[setup]
    out = work / f"out-{setup}"
    exe = str(Path(sys.executable).with_name("labelwise"))
    cmd = [exe, "tune", "--config", str(config), "--output-dir", str(out), "--overwrite",
           "--no-report", *spec["args"]]
    for key, value in spec["set"].items():
        cmd += ["--set", f"{key}={value}"]
    busy, own = busy_cpu_seconds(), children_cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    own = children_cpu_seconds() - own
    other = max(0.0, busy_cpu_seconds() - busy - own)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    search = json.loads((out / "search.json").read_text())
    trials = pd.read_csv(out / "trials.csv")
    result = {"setup": setup, "command": " ".join(cmd[1:]).replace(str(work), "$WORK"),
              "wall_seconds": round(wall, 1), "cpu_seconds": round(own, 1),
              "other_cpu_share": round(other / (wall * (os.cpu_count() or 1)), 3),
              "trials": int(len(trials)), "states": trials["state"].value_counts().to_dict(),
              "trial_seconds": search["stats"]["trial_seconds"],
              "best_value": search["best_value"]}
    print(f"{setup}: {wall:.1f} s wall, other processes {result['other_cpu_share']:.0%}, "
          f"{result['states']}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="labelwise_scale_") as tmp:
        work = Path(tmp)
        config = write_config(work, args.rows, args.trials)
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LABELWISE_CACHE": str(work / "cache"),
               "RAY_USAGE_STATS_ENABLED": "0"}
        exe = str(Path(sys.executable).with_name("labelwise"))
        subprocess.run([exe, "tune", "--config", str(config), "--output-dir",
                        str(work / "warm"), "--n-trials", "1", "--no-report"], env=env,
                       check=True, capture_output=True)
        for _ in range(args.repeats):
            for setup in SETUPS:
                runs.append(run(setup, config, work, env))
    best = {s: min((r for r in runs if r["setup"] == s), key=lambda r: r["wall_seconds"])
            for s in SETUPS}
    summary = {
        "benchmark": "bench/bench_scale.py",
        "machine": {"cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
                    "python": platform.python_version()},
        "search": {"dataset": "trec", "train_rows": args.rows, "valid_rows": 300,
                   "trials": args.trials, "epochs": 1, "batch_size": 32, "max_length": 64},
        "best_wall_seconds": {s: r["wall_seconds"] for s, r in best.items()},
        "speedup_2_workers": {
            "optuna": round(best["optuna-1"]["wall_seconds"] / best["optuna-2"]["wall_seconds"],
                            3),
            "ray": round(best["ray-1"]["wall_seconds"] / best["ray-2"]["wall_seconds"], 3)},
        "runs": runs,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: summary[k] for k in ("best_wall_seconds", "speedup_2_workers")}))


if __name__ == "__main__":
    main()

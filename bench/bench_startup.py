"""Time from process start for `labelwise inspect` and `labelwise check`, and for the plain
Transformers script to die of a label mistake.

    python bench/bench_startup.py [--runs 5] [--data ../shared/data] [--out bench/results/startup.json]

Each run is a fresh process timed from spawn to exit (median, min, max of `--runs`).
`inspect` runs on every shared train file (with its validation and test files); `check`
runs on sst2 with the search block of the README. The plain script
(bench/plain_label_mistake.py) feeds one-hot targets of width 3 to a 2-logit MiniLM and
dies in the loss; labelwise refuses the same mistake in `check`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import write_results

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
SEARCH = """search:
  n_trials: 20
  objective: {metric: f1, direction: maximize, split: valid}
  space:
    train.learning_rate: {type: float, low: 1.0e-5, high: 1.0e-4, log: true}
    train.batch_size: {type: categorical, choices: [16, 32]}
"""


def flags_for(train: Path) -> list[str]:
    d, ext = train.parent, train.suffix
    flags = ["--valid", str(d / f"validation{ext}"), "--test", str(d / f"test{ext}")]
    if d.name == "go_emotions":
        flags += ["--label-column", "labels"]
    if d.name == "emobank":
        flags += ["--label-column", "V,A,D"]
    return flags


def timed(cmd: list[str]) -> tuple[float, int, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - start, proc.returncode, proc.stdout


def series(cmd: list[str], runs: int) -> dict[str, object]:
    timed(cmd)  # warm the page cache once
    results = [timed(cmd) for _ in range(runs)]
    walls = [w for w, _, _ in results]
    return {"command": " ".join(cmd), "exit_codes": sorted({c for _, c, _ in results}),
            "median_s": round(statistics.median(walls), 3), "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "startup.json")
    args = parser.parse_args()
    exe = str(Path(sys.executable).with_name("labelwise"))
    largest = max(args.data.glob("*/train.*"), key=lambda p: p.stat().st_size)
    inspect = []
    for train in sorted(args.data.glob("*/train.*"), key=lambda p: -p.stat().st_size):
        row = series([exe, "inspect", str(train), *flags_for(train)], args.runs)
        inspect.append({"dataset": train.parent.name, "largest": train == largest,
                        "file_bytes": train.stat().st_size, **row})
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sst2.yaml"
        d = args.data / "sst2"
        config.write_text(f"data: {{train: {d}/train.csv, valid: {d}/validation.csv, test: "
                          f"{d}/test.csv}}\n{SEARCH}")
        check = series([exe, "check", "--config", str(config)], args.runs)
        onehot = Path(tmp) / "onehot.csv"
        import pandas as pd

        frame = pd.read_csv(d / "train.csv")
        ids = frame["label"].to_numpy().copy()
        ids[::97] = 2
        frame["label"] = [json.dumps([int(i == k) for k in range(3)]) for i in ids]
        frame.to_csv(onehot, index=False)
        mistake = series([exe, "check", "--train", str(onehot), "--valid",
                          str(d / "validation.csv"), "--task", "binary"], args.runs)
    plain_runs = []
    for _ in range(min(args.runs, 3)):
        wall, code, out = timed([sys.executable, str(HERE / "plain_label_mistake.py"), "--data",
                                 str(args.data / "sst2" / "train.csv"), "--rows", "10000"])
        plain_runs.append({"wall_s": round(wall, 2), **json.loads(out.strip().splitlines()[-1])})
    plain_median = statistics.median(r["wall_s"] for r in plain_runs)
    out = {
        "benchmark": "startup",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "runs_each": args.runs,
        "inspect": inspect,
        "check_sst2_with_search": check,
        "check_onehot3_binary_mistake": mistake,
        "plain_trainer_onehot3_mistake": {"runs": plain_runs, "median_wall_s": plain_median},
        "ratio_plain_error_over_check_error": round(plain_median / mistake["median_s"], 1),
    }
    write_results(out, args.out)


if __name__ == "__main__":
    main()

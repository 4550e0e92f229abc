"""Every benchmark in BENCHMARKS.md, one after another (``make bench``).

    .venv/bin/python bench/run.py [--only startup,train,step,tune,datasets,vs_plain,head,scale]

Each script writes its raw results to ``bench/results/`` and prints its figures;
``bench_vs_plain.py`` also regenerates its section of BENCHMARKS.md. They run one at a
time, never two at once, since each measures speed or a wall-clock budget on the same
cores. Run them on a quiet machine: the whole set takes about 3.5 hours on 2 CPU cores
(the five-dataset comparison alone is 5 x 20 minutes of search plus the plain scripts).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STEPS = {
    "startup": ["bench_startup.py", "--runs", "5"],
    "train": ["bench_train.py", "--steps", "200", "--repeats", "2"],
    "step": ["bench_step.py"],
    "tune": ["bench_tune.py", "--budget", "180", "--rows", "2000"],
    "tune_full": ["bench_tune.py", "--budget", "900", "--rows", "0", "--epochs", "2",
                  "--workers", "2,1", "--out", "bench/results/tune_full_trec.json"],
    "datasets": ["bench_datasets.py"],
    "vs_plain": ["bench_vs_plain.py"],
    "head": ["bench_head.py"],
    "scale": ["bench_scale.py", "--rows", "1000", "--trials", "4", "--repeats", "2"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(STEPS),
                        help="comma-separated: " + ", ".join(STEPS))
    args = parser.parse_args()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in STEPS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(STEPS)}")
    for name in chosen:
        cmd = [sys.executable, str(HERE / STEPS[name][0]), *STEPS[name][1:]]
        print(f"== {name}: {' '.join(cmd[1:])}", flush=True)
        started = time.perf_counter()
        code = subprocess.run(cmd, cwd=HERE.parent).returncode
        print(f"== {name}: exit {code} after {time.perf_counter() - started:.0f} s", flush=True)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Wall time of `labelwise inspect` from process start, on the largest shared train file.

    python bench/bench_inspect.py [--runs 7] [--data ../shared/data]

Each run is a fresh process (`labelwise inspect TRAIN --valid VALID --test TEST`), timed
from spawn to exit; the median and the range are reported, with the bare interpreter
start-up measured the same way for reference. Prints one JSON object.
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
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"


def largest_train(data: Path) -> Path:
    return max(data.glob("*/train.*"), key=lambda p: p.stat().st_size)


def flags_for(train: Path) -> list[str]:
    d, ext = train.parent, train.suffix
    flags = ["--valid", str(d / f"validation{ext}"), "--test", str(d / f"test{ext}")]
    if d.name == "go_emotions":
        flags += ["--label-column", "labels"]
    if d.name == "emobank":
        flags += ["--label-column", "V,A,D"]
    return flags


def timed(cmd: list[str]) -> tuple[float, int]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    largest = largest_train(args.data)
    exe = str(Path(sys.executable).with_name("labelwise"))
    results = []
    for train in sorted(args.data.glob("*/train.*"), key=lambda p: -p.stat().st_size):
        cmd = [exe, "inspect", str(train), *flags_for(train)]
        timed(cmd)  # warm the page cache once
        runs = [timed(cmd) for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        results.append({
            "dataset": train.parent.name,
            "largest": train == largest,
            "command": " ".join(cmd),
            "file_bytes": train.stat().st_size,
            "exit_codes": sorted({c for _, c in runs}),
            "median_s": round(statistics.median(walls), 3),
            "min_s": round(min(walls), 3),
            "max_s": round(max(walls), 3),
        })
    bare = [timed([sys.executable, "-c", "pass"])[0] for _ in range(args.runs)]
    out = {
        "benchmark": "inspect_from_process_start",
        "runs_each": args.runs,
        "target_s": 1.0,
        "python_startup_median_s": round(statistics.median(bare), 3),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "results": results,
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

"""The label checks at 10k, 100k and 1M rows, against pandas reading the same file.

    .venv/bin/python bench/bench_scale_labels.py [--rows 10000,100000,1000000] \\
        [--repeats 2] [--work /tmp/labelwise-scale] [--out bench/results/scale_labels.json]

The sets are built once under ``--work`` (never in the repository) from the shared data:

* ``ag_news`` (multiclass, 4 classes): ``train.csv`` repeated to N rows, each text made
  unique with a row number (`` #17``), written as CSV and as Parquet;
* ``go_emotions`` (multilabel, 28 labels, lists of names): ``train.jsonl`` repeated the same
  way, written as JSONL and as Parquet (a list column).

Per set, as a user runs them, each in its own process (wall time, and the child's peak RSS
from ``wait4``; the sets are built in a process of their own, as a child's peak RSS starts
at its parent's):

* ``pandas``: ``python -c "import pandas; pandas.read_csv(F)"`` (``read_parquet``,
  ``read_json(lines=True)``), the plain path the targets compare with;
* ``inspect``: ``labelwise inspect F --format json`` (schema, carved validation, every audit
  check);
* ``check``: ``labelwise check --train F`` (``inspect``'s work plus the plan, the head/loss
  contract and the truncation measured on the model's tokenizer).

The setups run interleaved (pandas, inspect, check, pandas, ...) ``--repeats`` times and the
fastest run of each is kept; the ratios compare runs of the same round. The machine is
shared: each record carries the CPU share other processes took while it ran.
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(HERE))
from bench_datasets import busy_cpu_seconds  # noqa: E402

READERS = {".csv": "read_csv", ".parquet": "read_parquet", ".jsonl": "read_json"}


def build(work: Path, rows: int) -> dict[str, Path]:
    """The sets of ``rows`` rows (built once, in a child process; reused when present)."""
    paths = _paths(work, rows)
    if not all(p.exists() for p in paths.values()):
        subprocess.run([sys.executable, __file__, "--build", str(rows), "--work", str(work)],
                       check=True)
    return paths


def _paths(work: Path, rows: int) -> dict[str, Path]:
    return {"ag_news.csv": work / f"ag_news_{rows}.csv",
           "ag_news.parquet": work / f"ag_news_{rows}.parquet",
           "go_emotions.jsonl": work / f"go_emotions_{rows}.jsonl",
           "go_emotions.parquet": work / f"go_emotions_{rows}.parquet"}


def _build_now(work: Path, rows: int) -> None:
    import pandas as pd

    work.mkdir(parents=True, exist_ok=True)
    out = _paths(work, rows)
    ag = pd.read_csv(DATA / "ag_news" / "train.csv", dtype=str, keep_default_na=False)
    go = pd.read_json(DATA / "go_emotions" / "train.jsonl", lines=True)[["text", "labels"]]
    for name, base in (("ag_news", ag), ("go_emotions", go)):
        reps = -(-rows // len(base))
        big = pd.concat([base] * reps, ignore_index=True).iloc[:rows].copy()
        big["text"] = big["text"] + " #" + pd.Series(range(rows)).astype(str)
        if name == "ag_news":
            big.to_csv(out["ag_news.csv"], index=False)
        else:
            big.to_json(out["go_emotions.jsonl"], orient="records", lines=True,
                        force_ascii=False)
        big.to_parquet(out[f"{name}.parquet"], index=False)


def run(cmd: list[str]) -> dict[str, Any]:
    """Wall time, peak RSS and exit code of one process; other processes' CPU share."""
    busy0, t0 = busy_cpu_seconds(), time.perf_counter()
    with tempfile.TemporaryFile() as stderr:  # not a pipe: a full pipe blocks the child
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr,
                                env={**os.environ, "HF_HUB_OFFLINE": "1"})
        _, status, usage = os.wait4(proc.pid, 0)
        stderr.seek(0)
        err = stderr.read().decode(errors="replace")
    wall = time.perf_counter() - t0
    busy = busy_cpu_seconds() - busy0
    own = usage.ru_utime + usage.ru_stime
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 2):  # 2: a finding of level error, still a completed check
        raise RuntimeError(f"{cmd} exited {code}: {err[-2000:]}")
    return {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "exit": code,
            "other_cpu_share": round(max(busy - own, 0.0) / (wall * os.cpu_count()), 3)}


def save(results: list[dict[str, Any]], path: Path) -> None:
    """The results so far, with the command, the machine and the time (after every set)."""
    out = {"command": " ".join(sys.argv), "machine": platform.processor()
           or platform.machine(), "cpus": os.cpu_count(),
           "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "results": results}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


def commands(path: Path) -> dict[str, list[str]]:
    exe = str(Path(sys.executable).with_name("labelwise"))
    reader = READERS[path.suffix]
    extra = ", lines=True" if path.suffix == ".jsonl" else ""
    label = ["--label-column", "labels"] if path.name.startswith("go_emotions") else []
    return {
        "pandas": [sys.executable, "-c", f"import pandas; pandas.{reader}({str(path)!r}{extra})"],
        "inspect": [exe, "inspect", str(path), "--format", "json", *label],
        "check": [exe, "check", "--train", str(path), *label, "--format", "json"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sets", default="ag_news.csv,ag_news.parquet,go_emotions.jsonl,"
                        "go_emotions.parquet")
    parser.add_argument("--setups", default="pandas,inspect,check")
    parser.add_argument("--work", default="/tmp/labelwise-scale")
    parser.add_argument("--out", default=str(HERE / "results" / "scale_labels.json"))
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build:
        _build_now(Path(args.work), args.build)
        return
    results: list[dict[str, Any]] = []
    for rows in [int(r) for r in args.rows.split(",")]:
        paths = build(Path(args.work), rows)
        for name in args.sets.split(","):
            cmds = commands(paths[name])
            runs: dict[str, list[dict[str, Any]]] = {s: [] for s in args.setups.split(",")}
            for _ in range(args.repeats):
                for setup in runs:
                    runs[setup].append(run(cmds[setup]))
                    print(rows, name, setup, runs[setup][-1], flush=True)
            best = {s: min(r, key=lambda x: x["wall_s"]) for s, r in runs.items()}
            entry = {"rows": rows, "set": name, "bytes": paths[name].stat().st_size,
                     "best": best, "runs": runs}
            if "pandas" in best:
                entry["ratio"] = {s: {"time": round(b["wall_s"] / best["pandas"]["wall_s"], 2),
                                      "rss": round(b["peak_rss_mb"]
                                                   / best["pandas"]["peak_rss_mb"], 2)}
                                  for s, b in best.items() if s != "pandas"}
            results.append(entry)
            save(results, Path(args.out))


if __name__ == "__main__":
    main()

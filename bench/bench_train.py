"""Training speed: labelwise vs the plain Transformers Trainer script, same steps, same run.

    .venv/bin/python bench/bench_train.py [--steps 200] [--repeats 2] [--batch-size 32] \\
        [--variants a,b,c,L] [--data ../shared/data] [--out bench/results/train_speed.json]

Variants, all MiniLM (the packaged all-MiniLM-L6-v2), sst2 train, fp32, one thread per core,
the same number of optimizer steps, no evaluation during the timed loop:

  a  plain script, every example padded to max_length 128 (bench/plain_trainer.py --mode a)
  b  plain script, dynamic padding per batch                (--mode b)
  c  plain script, dynamic padding + length grouping        (--mode c)
  L  labelwise: length-bucketed batches, max_length 128     (bench/_labelwise_train_runner.py)

Each variant runs in its own fresh process, one after another, and the whole a/b/c/L cycle
is repeated ``--repeats`` times so that drift of the machine shows; the table gives medians,
and the labelwise / variant ratio of the medians with the ratio inside each cycle in
brackets. ``--variants c,L`` runs a shorter cycle (L is always included).

Compared fields: samples/s over the training loop, from the moment the first optimizer step
begins to the end of training (plain: ``loop_samples_per_s`` = steps * batch /
``train_loop_s``; labelwise: ``samples_per_s_loop``, the same interval minus the one
64-row evaluation the Trainer runs after the last step). The JSON also keeps samples/s over
the whole ``trainer.train()`` call (plain ``samples_per_s``, labelwise
``samples_per_s_train``) and, for labelwise, over the time inside optimizer steps only
(``samples_per_s_step``). Useful-token MFU is the plain script's ``mfu_useful`` formula
(6 * encoder-layer params * real tokens / ``train_s`` / in-process fp32 matmul peak) for
both; peak RSS is each process's own (``VmHWM``).
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
from typing import Any

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"
VARIANTS = ("a", "b", "c", "L")
LABELWISE = "L"
TARGETS = {"a": 3.0, "c": 1.2}  # labelwise samples/s must be at least this many times these


def command(variant: str, args: argparse.Namespace, out: Path) -> list[str]:
    """The command line of one variant's process."""
    common = ["--data", str(args.data / "sst2" / "train.csv"), "--steps", str(args.steps),
              "--batch-size", str(args.batch_size), "--peak-reps", str(args.peak_reps),
              "--out", str(out)]
    if variant == LABELWISE:
        return [sys.executable, str(HERE / "_labelwise_train_runner.py"), *common,
                "--valid", str(args.data / "sst2" / "validation.csv")]
    return [sys.executable, str(HERE / "plain_trainer.py"), "--mode", variant, *common]


def summary(variant: str, raw: dict[str, Any]) -> dict[str, Any]:
    """The comparable figures of one run, under one set of names for every variant."""
    plain = variant != LABELWISE
    row = {
        "samples_per_s": raw["loop_samples_per_s"] if plain else raw["samples_per_s_loop"],
        "samples_per_s_train": raw["samples_per_s"] if plain else raw["samples_per_s_train"],
        "pad_share": raw["pad_share"],
        "real_tokens": raw["real_tokens"],
        "total_tokens": raw["total_tokens"],
        "peak_rss_mib": raw["peak_rss_mib"],
        "mfu_useful": raw["mfu_useful"],
        "matmul_peak_gflops": raw["matmul_peak"]["peak_gflops"],
        "training_loss": raw["training_loss"],
    }
    if not plain:
        row["samples_per_s_step"] = raw["samples_per_s_step"]
    return row


def run_one(variant: str, args: argparse.Namespace, tmp: Path, cycle: int) -> dict[str, Any]:
    """Run one variant in a fresh process; its result JSON plus the process wall time."""
    out = tmp / f"{variant}-{cycle}.json"
    cmd = command(variant, args, out)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    print(f"cycle {cycle} {variant}: {proc.stdout.strip().splitlines()[-1]}", flush=True)
    raw = json.loads(out.read_text())
    return {"variant": variant, "cycle": cycle, "command": " ".join(cmd),
            "process_wall_s": wall, "summary": summary(variant, raw), "raw": raw}


def medians(runs: list[dict[str, Any]], variants: list[str]) -> dict[str, dict[str, float]]:
    """Per variant, the median of every summary figure over the cycles."""
    out: dict[str, dict[str, float]] = {}
    for variant in variants:
        rows = [r["summary"] for r in runs if r["variant"] == variant]
        out[variant] = {key: statistics.median(row[key] for row in rows) for key in rows[0]}
    return out


def ratios(runs: list[dict[str, Any]], med: dict[str, dict[str, float]]) -> dict[str, Any]:
    """labelwise / variant samples/s: from the medians, and inside each cycle."""
    speed = {(r["variant"], r["cycle"]): r["summary"]["samples_per_s"] for r in runs}
    cycles = sorted({r["cycle"] for r in runs})
    return {v: {"of_medians": med[LABELWISE]["samples_per_s"] / med[v]["samples_per_s"],
                "per_cycle": [speed[LABELWISE, c] / speed[v, c] for c in cycles]}
            for v in med}


def targets(med: dict[str, dict[str, float]], ratio: dict[str, Any]) -> dict[str, Any]:
    """The speed and memory targets, each with its value and whether it is met."""
    out: dict[str, Any] = {f"speed_vs_{v}": {"target": f">= {t}x", "value": ratio[v]["of_medians"],
                                             "met": ratio[v]["of_medians"] >= t}
                           for v, t in TARGETS.items() if v in ratio}
    if "c" in med:
        rss_l, rss_c = med[LABELWISE]["peak_rss_mib"], med["c"]["peak_rss_mib"]
        out["peak_rss_vs_c"] = {"target": "labelwise <= c", "value": rss_l - rss_c,
                                "unit": "MiB difference", "met": rss_l <= rss_c}
    return out


def table(med: dict[str, dict[str, float]], ratio: dict[str, Any]) -> str:
    """The markdown table of the medians."""
    names = {"a": "(a) plain, pad to 128", "b": "(b) plain, dynamic padding",
             "c": "(c) plain, dynamic padding + group_by_length",
             "L": "(L) labelwise, length buckets"}
    lines = ["| variant | samples/s | labelwise / variant | pad share | peak RSS MiB | "
             "useful-token MFU |", "|---|---:|---:|---:|---:|---:|"]
    for v in med:
        m = med[v]
        per_cycle = ", ".join(f"{x:.2f}" for x in ratio[v]["per_cycle"])
        lines.append(f"| {names[v]} | {m['samples_per_s']:.1f} | "
                     f"{ratio[v]['of_medians']:.2f}x ({per_cycle}) | {m['pad_share']:.1%} | "
                     f"{m['peak_rss_mib']:.0f} | {m['mfu_useful']:.1%} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps per run")
    parser.add_argument("--repeats", type=int, default=2, help="a/b/c/L cycles")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of a,b,c,L (L is always run)")
    parser.add_argument("--peak-reps", type=int, default=8, help="timed matmuls for the peak")
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data directory")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "train_speed.json")
    args = parser.parse_args()
    args.data = args.data.resolve()
    chosen = set(args.variants.split(",")) | {LABELWISE}
    if chosen - set(VARIANTS):
        parser.error(f"unknown variants {sorted(chosen - set(VARIANTS))}")
    variants = [v for v in VARIANTS if v in chosen]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        for cycle in range(1, args.repeats + 1):
            runs.extend(run_one(v, args, Path(tmp), cycle) for v in variants)
    med = medians(runs, variants)
    ratio = ratios(runs, med)
    result = {
        "benchmark": "train_speed",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                   f"Python {platform.python_version()}",
        "steps": args.steps, "batch_size": args.batch_size, "repeats": args.repeats,
        "variants": variants,
        "compared_fields": {
            "samples_per_s": "plain loop_samples_per_s; labelwise samples_per_s_loop "
                             "(first optimizer step begins -> end of training, in-loop "
                             "evaluation taken out)",
            "samples_per_s_train": "plain samples_per_s; labelwise samples_per_s_train "
                                   "(the whole trainer.train() call)",
            "mfu_useful": "6 * encoder-layer params * real tokens / train_s / matmul peak"},
        "medians": med, "ratios_labelwise_over": ratio, "targets": targets(med, ratio),
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(med, ratio))
    for name, t in result["targets"].items():
        print(f"{name}: {t['target']}: {t['value']:.2f} -> {'met' if t['met'] else 'NOT met'}")


if __name__ == "__main__":
    main()

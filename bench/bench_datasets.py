"""Each shared dataset trained with the MiniLM default through the ``labelwise train`` CLI.

    .venv/bin/python bench/bench_datasets.py [--only sst2,trec] \\
        [--out bench/results/datasets.json]

``--out`` is rewritten after every dataset; ``--only`` replaces just those datasets' entries
in an existing ``--out`` and keeps the others (each entry records when it finished).

Runs from the repository root, one dataset after another (never two trainings at once):

    .venv/bin/labelwise train --config bench/configs/<name>.yaml --overwrite

for sst2 (binary), ag_news and trec (multiclass, 6 coarse classes), go_emotions (multilabel,
JSONL lists) and emobank (regression on V, A, D). The configs read ``../shared/data/...``
relative to the repository root and write the model dirs under /tmp/labelwise-bench/.
Each run gets an empty token cache (``LABELWISE_CACHE`` in a temporary directory), so the
wall time includes tokenization, as a first run on a fresh machine would.

The machine has 2 cores and is shared: each run also records how much CPU time other
processes took while it ran (``other_cpu_share``: busy CPU time from /proc/stat minus the
run's own, over wall time x cores), so a contended run shows as such.

Per dataset the results keep the config, the process wall time, labelwise's own statistics
(``stats`` in ``labelwise.json``: steps, train/prepare seconds, samples/s, pad share) and the
test metrics from ``metrics.json``: accuracy (sst2), accuracy and macro-F1 (ag_news, trec),
macro- and micro-F1 with the thresholds tuned on validation (go_emotions), Pearson r per
target and their mean (emobank).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATASETS = ("sst2", "ag_news", "trec", "go_emotions", "emobank")
TEST_METRICS = {
    "sst2": ("accuracy",),
    "ag_news": ("accuracy", "macro_f1"),
    "trec": ("accuracy", "macro_f1"),
    "go_emotions": ("macro_f1", "micro_f1"),
    "emobank": ("pearson",),
}
STATS = ("steps", "train_seconds", "prepare_seconds", "total_seconds", "samples_per_second",
         "pad_share", "best_metric", "threads")


def busy_cpu_seconds() -> float:
    """CPU time the whole machine has spent busy since boot (all cores, /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_dataset(name: str, log_dir: Path) -> dict[str, Any]:
    """Train one dataset with the CLI; its config, wall time, stats and test metrics."""
    config_path = HERE / "configs" / f"{name}.yaml"
    config = yaml.safe_load(config_path.read_text())
    exe = str(Path(sys.executable).with_name("labelwise"))
    cmd = [exe, "train", "--config", str(config_path.relative_to(ROOT)), "--overwrite"]
    log = log_dir / f"{name}.log"
    with tempfile.TemporaryDirectory(prefix="labelwise_cache_") as cache, log.open("w") as fh:
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "LABELWISE_CACHE": cache}
        busy, own = busy_cpu_seconds(), children_cpu_seconds()
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT)
        wall = time.perf_counter() - start
        own = children_cpu_seconds() - own
        other = max(0.0, busy_cpu_seconds() - busy - own)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n"
                           f"{log.read_text()[-3000:]}")
    out_dir = ROOT / config["output_dir"]
    manifest = json.loads((out_dir / "labelwise.json").read_text())
    metrics = json.loads((out_dir / "metrics.json").read_text())
    test = metrics["test"]
    result: dict[str, Any] = {
        "command": " ".join(cmd),
        "config_file": str(config_path.relative_to(ROOT)),
        "config": config,
        "task": manifest["schema"]["task"],
        "num_labels": manifest["contract"]["num_labels"],
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round(own, 1),
        "other_cpu_share": round(other / (wall * (os.cpu_count() or 1)), 3),
        "stats": {k: manifest["stats"].get(k) for k in STATS},
        "objective": manifest["plan"]["objective"],
        "valid_objective": metrics["valid"].get(manifest["plan"]["objective"]["metric"]),
        "test": {k: test[k] for k in TEST_METRICS[name]},
        "output_dir": str(out_dir),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if "per_target" in test:
        result["test"]["pearson_per_target"] = {t: row["pearson"]
                                                for t, row in test["per_target"].items()}
    if "thresholds" in test:
        result["test"]["thresholds"] = test["thresholds"]
    print(f"{name}: {wall:.0f} s, {result['stats']['steps']} steps, other processes "
          f"{result['other_cpu_share']:.0%} of the CPU, test {result['test']}", flush=True)
    return result


def schedule(config: dict[str, Any]) -> str:
    """learning rate and length of a run, as the table shows it."""
    t = config["train"]
    steps = f", max_steps {t['max_steps']}" if t.get("max_steps") else ""
    return f"lr {t['learning_rate']:g}, {t['epochs']:g} epoch(s){steps}"


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table of every dataset."""
    lines = ["| dataset | task | schedule | steps | wall time | train time | other load | "
             "test metrics |", "|---|---|---|---:|---:|---:|---:|---|"]
    for name, r in results.items():
        test = r["test"]
        shown = [f"{k} {test[k]:.4f}" for k in TEST_METRICS[name] if k != "pearson"]
        if "pearson_per_target" in test:
            per = ", ".join(f"{t} {v:.3f}" for t, v in test["pearson_per_target"].items())
            shown.append(f"pearson {per}; mean {test['pearson']:.3f}")
        lines.append(f"| {name} | {r['task']} | {schedule(r['config'])} | "
                     f"{r['stats']['steps']} | {r['wall_seconds'] / 60:.1f} min | "
                     f"{r['stats']['train_seconds'] / 60:.1f} min | "
                     f"{r['other_cpu_share']:.0%} | {'; '.join(shown)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=",".join(DATASETS),
                        help="comma-separated datasets (default: all five)")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "datasets.json")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(DATASETS))
    if unknown or not names:
        parser.error(f"unknown datasets {unknown}; choose from {', '.join(DATASETS)}")
    kept = json.loads(args.out.read_text())["datasets"] if args.out.exists() else {}
    results = {n: kept[n] for n in DATASETS if n in kept and n not in names}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench_datasets_") as logs:
        for name in names:
            results[name] = run_dataset(name, Path(logs))
            ordered = {n: results[n] for n in DATASETS if n in results}
            out = {"benchmark": "datasets",
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                              f"Python {platform.python_version()}",
                   "model": "packaged all-MiniLM-L6-v2 (model.name_or_path: null)",
                   "datasets": ordered}
            args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(table(ordered))


if __name__ == "__main__":
    main()

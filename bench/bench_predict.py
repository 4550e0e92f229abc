"""Prediction speed: ``labelwise predict`` (streaming) vs ``transformers.pipeline``, one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_predict.py [--texts 2000] \\
        [--growth 2000,10000,100000] [--model-dir DIR] \\
        [--out bench/results/predict_stream_2026-12-02.json]

The model: a labelwise model dir of the packaged MiniLM (all-MiniLM-L6-v2), made by
``labelwise.train`` on 300 ag_news training rows for one epoch (prediction speed does not
depend on the weights), or ``--model-dir``. The texts: the first ``--texts`` ag_news test
texts, the same list for every setup. Setups, each in its own fresh process (so each has
its own peak RSS, ``VmHWM``), run one after another, with the model loaded before the
clock starts:

  labelwise   ``labelwise.predict_file`` on a CSV of the texts (reads, predicts in
              length-sorted batches of its default size and writes the CSV;
              4,096-row chunks)
  pipe32      ``pipeline("text-classification", model=DIR, batch_size=32)`` on the list
  pipe        ``pipeline(...)`` with its default batch (one text at a time)

Both pipelines truncate at the model's ``max_length``, as labelwise does, so the labels are
comparable: the label id of every text (argmax, a multiclass model) must be identical.
The growth table runs ``labelwise`` alone on 2,000 / 10,000 / 100,000 rows cycled from the
ag_news train, validation and test texts: wall time of the whole ``predict_file`` call,
texts/s and peak RSS (which must stay flat as rows grow). ``other_cpu_share`` is the CPU
time other processes took during a setup, as a share of all cores (/proc/stat);
``texts_per_cpu_s`` divides by the CPU time the setup's process spent in the timed call
(every thread), which a busy machine disturbs less than wall time. ``--threads 1`` runs
every setup on one torch thread, so that on a shared machine no setup waits for its second
thread to be scheduled.
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

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data" / "ag_news"
sys.path.insert(0, str(HERE))
from _results import peak_rss_mib, write_results  # noqa: E402
from bench_datasets import busy_cpu_seconds, children_cpu_seconds  # noqa: E402

TARGET = 2.5  # labelwise texts/s over pipeline(batch_size=32)'s


# --- one setup, in its own process -------------------------------------------------------------
def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def child(setup: str, model_dir: str, input_csv: str, out: str, threads: int) -> None:
    import pandas as pd
    import torch

    if threads:
        torch.set_num_threads(threads)

    if setup == "labelwise":
        from labelwise.training.predict import load_model
        from labelwise.training.stream import predict_file

        load_model(model_dir)
        with tempfile.TemporaryDirectory() as tmp:
            start, cpu = time.perf_counter(), cpu_seconds()
            done = predict_file(model_dir=model_dir, input=input_csv,
                                output=Path(tmp) / "out.csv")
            seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
            labels = pd.read_csv(Path(tmp) / "out.csv", keep_default_na=False)["label"
                                                                               ].tolist()
        n = done.rows
    else:
        from transformers import pipeline

        from labelwise.outputs.model_dir import read_manifest

        manifest, _ = read_manifest(model_dir)
        texts = pd.read_csv(input_csv, keep_default_na=False, dtype={"text": str}
                            )["text"].tolist()
        options: dict[str, Any] = {"batch_size": 32} if setup == "pipe32" else {}
        pipe = pipeline("text-classification", model=model_dir, device="cpu", **options)
        start, cpu = time.perf_counter(), cpu_seconds()
        found = pipe(texts, truncation=True, max_length=int(manifest["max_length"]))
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        labels = [r["label"] for r in found]
        n = len(texts)
    result = {"setup": setup, "rows": n, "seconds": round(seconds, 3),
              "texts_per_s": round(n / seconds, 1), "cpu_s": round(cpu, 1),
              "texts_per_cpu_s": round(n / cpu, 1), "peak_rss_mib": round(peak_rss_mib(), 1),
              "torch_threads": torch.get_num_threads(), "labels": labels}
    Path(out).write_text(json.dumps(result))


def run_child(setup: str, model_dir: Path, input_csv: Path, threads: int) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", setup, "--model-dir",
           str(model_dir), "--input", str(input_csv), "--child-out", str(out), "--threads", str(threads)]
    busy, own = busy_cpu_seconds(), children_cpu_seconds()
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env={**os.environ, "HF_HUB_OFFLINE": "1",
                                         "TOKENIZERS_PARALLELISM": "false"})
    wall = time.perf_counter() - start
    own = children_cpu_seconds() - own
    other = max(0.0, busy_cpu_seconds() - busy - own)
    result = json.loads(out.read_text())
    out.unlink()
    result["other_cpu_share"] = round(other / (wall * (os.cpu_count() or 1)), 3)
    result["process_s"] = round(wall, 1)
    return result


# --- inputs ----------------------------------------------------------------------------------
def make_model(work: Path) -> Path:
    import pandas as pd

    from labelwise.plan.config import config_from_dict
    from labelwise.training.train import train

    pd.read_csv(DATA / "train.csv").head(300).to_csv(work / "train.csv", index=False)
    pd.read_csv(DATA / "validation.csv").head(100).to_csv(work / "valid.csv", index=False)
    cfg = config_from_dict({
        "data": {"train": str(work / "train.csv"), "valid": str(work / "valid.csv")},
        "train": {"epochs": 1, "batch_size": 32}, "output_dir": str(work / "model")})
    return train(cfg, progress=False).output_dir


def write_texts(path: Path, rows: int, *, cycle: bool) -> None:
    import pandas as pd

    if cycle:
        texts = pd.concat([pd.read_csv(DATA / f"{s}.csv", keep_default_na=False,
                                       dtype={"text": str})["text"]
                           for s in ("train", "validation", "test")]).tolist()
    else:
        texts = pd.read_csv(DATA / "test.csv", keep_default_na=False, dtype={"text": str}
                            )["text"].tolist()
    texts = [texts[i % len(texts)] for i in range(rows)]
    pd.DataFrame({"id": range(rows), "text": texts}).to_csv(path, index=False)


def label_ids(model_dir: Path, labels: list[Any]) -> list[int]:
    config = json.loads((model_dir / "config.json").read_text())
    ids = {str(v): int(k) for k, v in config["id2label"].items()}
    return [ids[str(label)] for label in labels]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser()
    p.add_argument("--texts", type=int, default=2000)
    p.add_argument("--growth", default="2000,10000,100000")
    p.add_argument("--repeats", type=int, default=2, help="labelwise/pipe32 cycles")
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads in every setup (0: torch's default)")
    p.add_argument("--child", default=None)
    p.add_argument("--input", default=None)
    p.add_argument("--child-out", default=None)
    args = p.parse_args(argv)
    if args.child:
        child(args.child, str(args.model_dir), args.input, args.child_out, args.threads)
        return {}
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory(prefix="bench_predict_") as tmp:
        work = Path(tmp)
        model_dir = args.model_dir or make_model(work)
        texts = work / "texts.csv"
        write_texts(texts, args.texts, cycle=False)
        order = (["labelwise", "pipe32", "pipe"] + ["labelwise", "pipe32"] * (args.repeats - 1)
                 if args.texts else [])
        cycles: list[dict[str, Any]] = []
        ids: dict[str, list[int]] = {}
        for setup in order:
            row = run_child(setup, model_dir, texts, args.threads)
            ids.setdefault(setup, label_ids(model_dir, row.pop("labels")))
            cycles.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
        growth = []
        for rows in [int(r) for r in args.growth.split(",") if r]:
            path = work / f"growth_{rows}.csv"
            write_texts(path, rows, cycle=True)
            row = run_child("labelwise", model_dir, path, args.threads)
            row.pop("labels")
            growth.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
            path.unlink()
    if not args.texts:  # --texts 0: the growth table alone
        out = {"benchmark": "predict_stream_growth", "threads": args.threads or "torch default",
               "growth": growth}
        write_results(out, args.out)
        return out
    runs = {s: max((r for r in cycles if r["setup"] == s), key=lambda r: r["texts_per_s"])
            for s in ("labelwise", "pipe32", "pipe")}
    per_cycle_cpu = [round(a["texts_per_cpu_s"] / b["texts_per_cpu_s"], 2) for a, b in zip(
        [r for r in cycles if r["setup"] == "labelwise"],
        [r for r in cycles if r["setup"] == "pipe32"], strict=True)]
    per_cycle = [round(a["texts_per_s"] / b["texts_per_s"], 2) for a, b in zip(
        [r for r in cycles if r["setup"] == "labelwise"],
        [r for r in cycles if r["setup"] == "pipe32"], strict=True)]
    lw = runs["labelwise"]["texts_per_s"]
    out = {
        "benchmark": "predict_stream",
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(),
                    "python": platform.python_version()},
        "texts": args.texts,
        "setups": runs,
        "runs": cycles,
        "threads": args.threads or "torch default",
        "labelwise_vs_pipe32_per_cycle": per_cycle,
        "labelwise_vs_pipe32_per_cycle_cpu": per_cycle_cpu,
        "ratios": {"labelwise_vs_pipe32": round(lw / runs["pipe32"]["texts_per_s"], 2),
                   "labelwise_vs_pipe": round(lw / runs["pipe"]["texts_per_s"], 2),
                   "labelwise_vs_pipe32_cpu": round(runs["labelwise"]["texts_per_cpu_s"]
                                                    / runs["pipe32"]["texts_per_cpu_s"], 2),
                   "labelwise_vs_pipe_cpu": round(runs["labelwise"]["texts_per_cpu_s"]
                                                  / runs["pipe"]["texts_per_cpu_s"], 2)},
        "target_vs_pipe32": TARGET,
        "labels_identical": {s: ids[s] == ids["labelwise"] for s in ("pipe32", "pipe")},
        "label_disagreements": {s: sum(a != b for a, b in zip(ids[s], ids["labelwise"],
                                                               strict=True))
                                for s in ("pipe32", "pipe")},
        "growth": growth,
    }
    write_results(out, args.out)
    return out


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


if __name__ == "__main__":
    main()

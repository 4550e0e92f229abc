"""Time and memory from start to the first optimizer step at 10k, 100k and 1M rows.

    .venv/bin/python bench/bench_scale_train.py [--rows 10000,100000,1000000] \\
        [--work /tmp/labelwise-scale] [--out bench/results/scale_train.json]

The training sets are ``bench_scale_labels.py``'s ag_news CSVs (built there if absent);
validation is the shared ag_news ``validation.csv`` (2,000 rows), so the figures grow with
the training set only. Each setup runs in its own process (peak RSS from ``wait4``):

* ``cold``: ``labelwise.train(train=CSV, valid=..., batch_size=32, max_steps=1)`` with an
  empty token cache: read, check, tokenize every row into the cache, first step;
* ``warm``: the same again on the filled cache (the split is memory-mapped, not tokenized);
* ``plain``: what a hand-written script does first: ``datasets.Dataset.from_pandas`` and
  ``.map(tokenizer(..., truncation=True, max_length=128), batched=True)`` on the same rows
  (tokenization only: no model, no step).

``first_step_s`` is measured inside the process from its start (imports included) to the
end of the first optimizer step (a ``TrainerCallback``, which then ends the process: the
evaluation and the checks after training are not part of the figure);
``rss_first_step_mb`` is the peak RSS at that moment.
"""

from __future__ import annotations

import argparse
import json
import os
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
from bench_scale_labels import build, save  # noqa: E402

CHILD = r'''
import json, resource, sys, time
t0 = time.perf_counter()
setup, train, valid, out, record = sys.argv[1:6]
rec = {}
if setup == "plain":
    import pandas as pd
    from datasets import Dataset
    from transformers import AutoTokenizer
    from labelwise.plan.model_ref import default_model_path
    tok = AutoTokenizer.from_pretrained(default_model_path())
    ds = Dataset.from_pandas(pd.read_csv(train))
    ds = ds.map(lambda b: tok(b["text"], truncation=True, max_length=128), batched=True)
    rec["tokenized_s"] = time.perf_counter() - t0
else:
    import labelwise
    from transformers import TrainerCallback

    class First(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 1 and "first_step_s" not in rec:
                rec["first_step_s"] = time.perf_counter() - t0
                rec["rss_first_step_mb"] = resource.getrusage(
                    resource.RUSAGE_SELF).ru_maxrss / 1024
                rec["total_s"] = rec["first_step_s"]
                with open(record, "w") as f:
                    json.dump(rec, f)
                import os
                os._exit(0)  # the figure is taken; the evaluation after training is not

    labelwise.train(train=train, valid=valid, output_dir=out, batch_size=32, max_steps=1,
                    callbacks=[First()], progress=False, overwrite=True)
rec["total_s"] = time.perf_counter() - t0
with open(record, "w") as f:
    json.dump(rec, f)
'''


def run(setup: str, train: Path, valid: Path, cache: Path, work: Path) -> dict[str, Any]:
    record = work / f"{setup}.json"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LABELWISE_CACHE": str(cache),
           "HF_DATASETS_CACHE": str(work / "hf-datasets")}
    busy0, t0 = busy_cpu_seconds(), time.perf_counter()
    log = work / f"{setup}.log"  # a file, not a pipe: a full pipe would block the child
    with log.open("wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-c", CHILD, setup, str(train), str(valid),
                                 str(work / f"out-{setup}"), str(record)], env=env,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{setup} failed: {err[-3000:]}")
    own = usage.ru_utime + usage.ru_stime
    out = json.loads(record.read_text())
    out.update({"wall_s": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
                "other_cpu_share": round(max(busy_cpu_seconds() - busy0 - own, 0.0)
                                         / (wall * os.cpu_count()), 3)})
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="10000,100000,1000000")
    parser.add_argument("--setups", default="cold,warm,plain")
    parser.add_argument("--work", default="/tmp/labelwise-scale")
    parser.add_argument("--out", default=str(HERE / "results" / "scale_train.json"))
    args = parser.parse_args()
    valid = DATA / "ag_news" / "validation.csv"
    results = []
    for rows in [int(r) for r in args.rows.split(",")]:
        train = build(Path(args.work), rows)["ag_news.csv"]
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            entry: dict[str, Any] = {"rows": rows}
            for setup in args.setups.split(","):
                entry[setup] = run(setup, train, valid, work / "cache", work)
                print(rows, setup, entry[setup], flush=True)
            results.append(entry)
        save(results, Path(args.out))


if __name__ == "__main__":
    main()

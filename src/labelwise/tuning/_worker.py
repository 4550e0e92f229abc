"""A worker process of ``labelwise tune --workers N`` (and of ``--join``).

    python -m labelwise.tuning._worker SPEC.json --worker I --n-trials K --threads T

It re-runs preflight on the config (quietly, a second or less), refuses to run when its
data yields another schema fingerprint than the study's, then runs K trials.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from labelwise.plan.config import config_from_dict
from labelwise.errors import LabelwiseError
from labelwise.plan.preflight import preflight
from labelwise.tuning._optuna import run_worker
from labelwise.plan.space import search_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="labelwise-tune-worker")
    parser.add_argument("spec")
    parser.add_argument("--worker", type=int, default=0)
    parser.add_argument("--n-trials", type=int, required=True)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    spec = json.loads(Path(args.spec).read_text())
    logging.basicConfig(level=logging.INFO, format=f"[worker {args.worker}] %(message)s")
    for name in ("transformers", "accelerate", "optuna"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        from labelwise.training.device import device_facts

        config = config_from_dict(spec["config"])
        # this worker's GPU: CUDA_VISIBLE_DEVICES set by the process that started it
        plan = preflight(config, source=spec.get("source"), search=True, facts=device_facts())
        space, _ = search_space(config)
        run_worker(plan, space, storage=spec["storage"], study_name=spec["study"],
                   n_trials=args.n_trials, timeout=spec.get("timeout"),
                   output_dir=Path(spec["output_dir"]), worker=args.worker,
                   threads=args.threads)
    except LabelwiseError as err:
        print(f"worker {args.worker}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

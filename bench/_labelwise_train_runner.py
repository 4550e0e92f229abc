"""One labelwise training run for bench/bench_train.py (variant L), in its own process.

    python bench/_labelwise_train_runner.py --data ../shared/data/sst2/train.csv \\
        --valid ../shared/data/sst2/validation.csv --steps 200 --out /tmp/l.json

It goes the library path of ``labelwise train`` without saving: ``config_from_dict`` ->
``labelwise.preflight`` -> ``prepare`` -> ``fit(prepared, work=tmp, save=False)``, MiniLM (the
packaged default), length-bucketed batches, max_length 128, fp32, ``threads`` = the cores.
Validation is a 64-row slice of ``--valid`` written to a temporary directory, so the one
evaluation the Trainer runs after the last step costs next to nothing (it is timed and
taken out of the loop figures anyway).

Measured exactly as bench/plain_trainer.py measures the plain Trainer (its functions are
imported): the fp32 matmul peak in this process before any data is read, the tokens the
model really sees through the same forward pre-hook (training forwards only), the same
useful-token FLOP formula, and the peak RSS (``VmHWM``). The model is built as ``fit`` builds it
(``set_seed(train.seed)``, then ``labelwise.training.train.build_model``) so that the hook can be
attached before it is handed to ``fit``.

Timing fields:
  train_s       the whole ``trainer.train()`` call (``FitResult.train_seconds``), as the plain
                script's ``train_s``
  loop_s        first optimizer step begins -> ``fit`` returns, minus in-loop evaluation,
                as the plain script's ``train_loop_s``
  step_s        time inside optimizer steps only (``FitResult.step_seconds``): forward,
                backward, clip, optimizer and scheduler step; no batch fetching
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pandas as pd  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from plain_trainer import (  # noqa: E402
    TokenCounter,
    count_params,
    measure_matmul_peak,
    peak_rss_mib,
)
from transformers import TrainerCallback, set_seed  # noqa: E402

from labelwise.plan.config import config_from_dict  # noqa: E402
from labelwise import preflight  # noqa: E402
from labelwise.training.train import build_model, fit, prepare, set_threads  # noqa: E402

VALID_ROWS = 64


class FirstStep(TrainerCallback):
    """Records when the first optimizer step begins (the plain script's ``StepClock``)."""

    def __init__(self) -> None:
        self.perf: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.perf is None:
            self.perf = time.perf_counter()


def training_only(counter: TokenCounter) -> Any:
    """A forward pre-hook that counts only training forwards (not the final evaluation)."""

    def hook(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if module.training:
            counter.hook(module, args, kwargs)

    return hook


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="train CSV (text,label)")
    p.add_argument("--valid", required=True, type=Path,
                   help=f"validation CSV; its first {VALID_ROWS} rows are used")
    p.add_argument("--steps", required=True, type=int, help="optimizer steps (train.max_steps)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--peak-reps", type=int, default=8, help="timed 2048^3 matmuls for the peak")
    p.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    with tempfile.TemporaryDirectory(prefix="labelwise_bench_") as tmp_name:
        tmp = Path(tmp_name)
        valid = tmp / "valid64.csv"
        pd.read_csv(args.valid, nrows=VALID_ROWS).to_csv(valid, index=False)
        config = config_from_dict({
            "data": {"train": str(args.data), "valid": str(valid)},
            "model": {"max_length": args.max_length},
            "train": {"max_steps": args.steps, "batch_size": args.batch_size,
                      "evals_per_epoch": 1, "seed": args.seed, "threads": os.cpu_count()},
            "output_dir": str(tmp / "out"),
        })
        threads = set_threads(config)
        peak = measure_matmul_peak(reps=args.peak_reps)
        plan = preflight(config)
        prepared = prepare(plan)
        set_seed(args.seed)  # what fit does before it builds the model itself
        model = build_model(plan)
        counter = TokenCounter()
        model.register_forward_pre_hook(training_only(counter), with_kwargs=True)
        first = FirstStep()
        rss_before = peak_rss_mib()
        result = fit(prepared, work=tmp / "work", save=False, model=model, callbacks=[first])
        end = time.perf_counter()

    eval_s = sum(r.get("eval_runtime", 0.0) for r in result.log_history)
    loop_s = end - (first.perf if first.perf is not None else end) - eval_s
    train_s = result.train_seconds
    samples = result.steps * args.batch_size
    params = count_params(model)
    n_layers, d_model = model.config.num_hidden_layers, model.config.hidden_size
    dense_useful = 6.0 * params["per_token"] * counter.real_tokens
    attn_useful = 12.0 * n_layers * d_model * counter.real_len_sq
    peak_flops = peak["peak_gflops"] * 1e9
    train_loss = next((r["train_loss"] for r in reversed(result.log_history)
                       if "train_loss" in r), None)
    out: dict[str, Any] = {
        "mode": "L",
        "steps": result.steps,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "data": str(args.data),
        "valid_rows": VALID_ROWS,
        "seed": args.seed,
        "torch_num_threads": torch.get_num_threads(),
        "threads_set": threads,
        "train_s": train_s,
        "loop_s": loop_s,
        "step_s": result.step_seconds,
        "eval_in_train_s": eval_s,
        "samples_per_s_train": samples / train_s,
        "samples_per_s_loop": samples / loop_s,
        "samples_per_s_step": samples / result.step_seconds,
        "trainer_samples_per_s": result.samples_per_second,
        "forward_batches": counter.batches,
        "samples_seen": counter.samples,
        "total_tokens": counter.total_tokens,
        "real_tokens": counter.real_tokens,
        "pad_share": 1.0 - counter.real_tokens / max(counter.total_tokens, 1),
        "pad_share_fitresult": result.pad_share,
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_before_train_mib": rss_before,
        "n_params_per_token": params["per_token"],
        "matmul_peak": peak,
        "mfu_useful": dense_useful / train_s / peak_flops,
        "mfu_useful_loop": dense_useful / loop_s / peak_flops,
        "mfu_useful_with_attn": (dense_useful + attn_useful) / train_s / peak_flops,
        "training_loss": train_loss,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"mode=L steps={result.steps} train={train_s:.2f}s loop={loop_s:.2f}s "
          f"step={result.step_seconds:.2f}s ({out['samples_per_s_loop']:.1f} samples/s loop) "
          f"pad={out['pad_share']:.1%} rss={out['peak_rss_mib']:.0f}MiB "
          f"mfu_useful={out['mfu_useful']:.1%} loss={train_loss}")
    return out


if __name__ == "__main__":
    main()

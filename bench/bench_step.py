"""Where one training step of MiniLM goes on this CPU, and what could make it faster.

    .venv/bin/python bench/bench_step.py --out bench/results/step.json

The same step the Trainer takes (fp32, fused AdamW, gradient clipping at 1.0, gradients set to
None), timed by phase on real batch shapes: the first --rows training rows of --data (sst2 unless
told), tokenized at max_length 128, sorted by length and cut into batches of --batch-size (32
unless told; as length buckets make them); a
fixed random choice of --batches of those batches, the same for every variant. Variants, each
over the same batches after --warmup untimed ones:

- ``eager``: the step as Trainer and labelwise run it;
- ``frozen_word_embeddings``: the word-embedding matrix (11.7M of MiniLM's 22.7M parameters)
  left out of the optimizer, the largest step cost that is not a matmul of the encoder;
- ``compact_vocabulary``: the word-embedding matrix cut to the rows of the token ids that occur
  in the training and validation files (sst2: 9,510 of 30,522), ids remapped per batch. With
  weight decay 0 this trains exactly what ``eager`` trains: a row no batch uses gets a zero
  gradient, so AdamW never moves it;
- ``compact_lazy_clip``: ``compact_vocabulary``, and the gradients multiplied by the clipping
  factor only on the steps whose norm is above 1.0 (``clip_grad_norm_`` multiplies every
  gradient on every step, by exactly 1.0 when the norm is below);
- ``compiled``: ``torch.compile(model, dynamic=True)`` (the batch lengths vary), with its
  compile time (the first step) reported apart.

Each variant runs in this one process, on a fresh copy of the model; the cycle over the
variants is repeated (--repeats) and each variant reports its median cycle.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from _results import write_results

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE.parent.parent / "shared" / "data"
PHASES = ("forward", "backward", "clip", "optimizer", "zero_grad")
VARIANTS = ("eager", "frozen_word_embeddings", "compact_vocabulary", "compact_lazy_clip",
            "compiled")


def batches(data: Path, rows: int, n: int, seed: int, size: int) -> list[dict[str, Any]]:
    import numpy as np
    import pandas as pd
    import torch
    from transformers import AutoTokenizer

    from labelwise.plan.model_ref import default_model_path

    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    texts = pd.read_csv(data)["text"].astype(str).head(rows).tolist()
    ids = tok(texts, truncation=True, max_length=128)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    groups = [order[i:i + size] for i in range(0, len(order) - size + 1, size)]
    pick = np.random.default_rng(seed).choice(len(groups), size=n, replace=False)
    out = []
    for g in pick:
        rows_ = [ids[i] for i in groups[g]]
        width = max(len(r) for r in rows_)
        input_ids = torch.tensor([r + [tok.pad_token_id] * (width - len(r)) for r in rows_])
        out.append({"input_ids": input_ids,
                    "attention_mask": (input_ids != tok.pad_token_id).long(),
                    "labels": torch.randint(0, 2, (len(rows_),))})
    return out


def vocabulary(tok: Any, data: Path) -> list[int]:
    """The token ids of the training and validation files, special tokens included."""
    import pandas as pd

    ids = set(tok.all_special_ids)
    for split in ("train", "validation"):
        texts = pd.read_csv(data.with_name(f"{split}.csv"))["text"].astype(str).tolist()
        for row in tok(texts, truncation=True, max_length=128)["input_ids"]:
            ids.update(row)
    return sorted(ids)


def run(model: Any, data: list[dict[str, Any]], warmup: int, *, freeze: bool = False,
        compiled: bool = False, keep: list[int] | None = None,
        lazy_clip: bool = False) -> dict[str, Any]:
    import torch

    model.train()
    lut = None
    if keep is not None:
        full = model.bert.embeddings.word_embeddings
        index = torch.tensor(keep)
        model.bert.embeddings.word_embeddings = torch.nn.Embedding.from_pretrained(
            full.weight.detach()[index].clone(), freeze=False,
            padding_idx=int((index == full.padding_idx).nonzero()[0, 0])
            if full.padding_idx is not None else None)
        lut = torch.zeros(full.num_embeddings, dtype=torch.long)
        lut[index] = torch.arange(len(keep))
    for p in model.bert.embeddings.word_embeddings.parameters():
        p.requires_grad_(not freeze)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, fused=True, weight_decay=0.0)
    step_model = torch.compile(model, dynamic=True) if compiled else model
    totals = dict.fromkeys(PHASES, 0.0)
    first = None
    clipped = 0
    for i, batch in enumerate(data[:warmup] + data):
        t0 = time.perf_counter()
        if lut is not None:
            batch = {**batch, "input_ids": lut[batch["input_ids"]]}
        loss = step_model(**batch).loss
        t1 = time.perf_counter()
        loss.backward()
        t2 = time.perf_counter()
        if lazy_clip:
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads, foreach=True)
            if 1.0 / (norm + 1e-6) < 1.0:
                torch.nn.utils.clip_grads_with_norm_(params, 1.0, norm, foreach=True)
        else:
            norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
        clipped += bool(norm > 1.0) and i >= warmup
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        t5 = time.perf_counter()
        if i == 0:
            first = t5 - t0
        if i >= warmup:
            for key, value in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                totals[key] += value
    n = len(data)
    step = sum(totals.values()) / n
    return {"step_ms": round(1000 * step, 1),
            "phases_ms": {k: round(1000 * v / n, 1) for k, v in totals.items()},
            "phase_shares": {k: round(v / n / step, 4) for k, v in totals.items()},
            "first_step_s": round(first or 0.0, 2),
            "clipped_share": round(clipped / n, 3),
            "trainable_params": sum(p.numel() for p in params)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="sst2", help="a dataset under shared/data")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="cycles over the variants")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: every core this process may use)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated, from: " + ", ".join(VARIANTS))
    parser.add_argument("--out", type=Path, default=HERE / "results" / "step.json")
    args = parser.parse_args()
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from labelwise.plan.model_ref import default_model_path

    hf_logging.set_verbosity_error()
    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(args.seed)
    source = DATA_ROOT / args.data / "train.csv"
    data = batches(source, args.rows, args.batches, args.seed, args.batch_size)
    base = AutoModelForSequenceClassification.from_pretrained(str(default_model_path()),
                                                              num_labels=2)
    keep = vocabulary(AutoTokenizer.from_pretrained(str(default_model_path())), source)
    chosen = args.variants.split(",")
    variants = [(name, kw) for name, kw in (
        ("eager", {}), ("frozen_word_embeddings", {"freeze": True}),
        ("compact_vocabulary", {"keep": keep}),
        ("compact_lazy_clip", {"keep": keep, "lazy_clip": True}), ("compiled", {"compiled": True}))
        if name in chosen]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in variants}
    for cycle in range(args.repeats):  # the cycle is repeated: the machine's speed drifts
        for name, kw in variants:
            runs[name].append(run(copy.deepcopy(base), data, args.warmup, **kw))
            print(cycle, name, json.dumps(runs[name][-1]), flush=True)
    # each variant's run with the median step time (the lower middle one for an even count)
    results = {name: {**sorted(r, key=lambda x: x["step_ms"])[(len(r) - 1) // 2],
                      "step_ms_each_cycle": [x["step_ms"] for x in r]}
               for name, r in runs.items()}
    eager = results["eager"]["step_ms"]
    for r in results.values():
        r["speedup_vs_eager"] = round(eager / r["step_ms"], 3)
    out = {"benchmark": "step_breakdown",
           "machine": f"{platform.machine()}, {len(os.sched_getaffinity(0))} cores "
                      f"({torch.get_num_threads()} torch threads), Python "
                      f"{platform.python_version()}, torch {torch.__version__}, transformers "
                      f"{transformers.__version__}",
           "date": time.strftime("%Y-%m-%d"),
           "data": f"{args.data} train, first {args.rows} rows, {args.batches} length-sorted "
                   f"batches of {args.batch_size} (+{args.warmup} warm-up)",
           "mean_tokens_per_row": round(sum(int(b["attention_mask"].sum()) for b in data)
                                        / (args.batch_size * len(data)), 1),
           "variants": results}
    write_results(out, args.out)


if __name__ == "__main__":
    main()

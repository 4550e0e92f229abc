"""Forward passes in input order: length-sorted batches, outputs scattered back by row id.

Transformers 5.x's ``Trainer.predict`` returns rows in length-grouped order when length
grouping is on; labelwise never relies on it. Every prediction and every final evaluation
goes through :func:`predict_logits`, whose output row ``i`` is input row ``i``; an exported
ONNX model goes through :func:`onnx_logits`, the same batches with another forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from labelwise.errors import check_count
from labelwise.training.batching import Collator, EncodedDataset, SortedBatchSampler
from labelwise.training.tokens import Encoded

__all__ = ["predict_logits", "onnx_logits", "batch_size_for", "eval_batch_size",
           "CPU_BATCH_SIZE", "ACCELERATOR_BATCH_SIZE"]

# Rows per forward pass when the caller gives none (``batch_size=None``). On the CPU, per
# runtime, the fastest of 8 to 128 rows for MiniLM on both the ag_news and the sst2 test
# set (``bench/bench_batch_size.py``, BENCHMARKS.md): 32 in torch, 16 in ONNX Runtime
# (int8). Larger batches' activations no longer fit the CPU's caches, and length-sorted
# batches leave little padding to save. On a GPU or MPS, 64 (not measured here: larger
# batches usually pay there).
CPU_BATCH_SIZE = {"torch": 32, "onnx": 16}
ACCELERATOR_BATCH_SIZE = 64


def batch_size_for(batch_size: int | None, device: Any = "cpu", runtime: str = "torch"
                   ) -> int:
    """``batch_size``, or the default for ``device`` and ``runtime`` (``torch`` or
    ``onnx``, which runs on the CPU) when it is ``None``."""
    if batch_size is not None:
        return int(check_count(batch_size, name="batch_size"))
    if runtime == "onnx" or torch.device(device).type == "cpu":
        return CPU_BATCH_SIZE[runtime]
    return ACCELERATOR_BATCH_SIZE


def eval_batch_size(train: Any, device: Any) -> int:
    """Rows per batch of the evaluations during training: ``train.eval_batch_size``, else
    the larger of the training batch and :func:`batch_size_for` ``device``."""
    return train.eval_batch_size or max(train.batch_size, batch_size_for(None, device))


def _batches(encoded: Encoded, pad_id: int, batch_size: int
             ) -> Iterator[tuple[np.ndarray, dict[str, torch.Tensor]]]:
    """``(row ids, padded batch)`` in length-sorted batches."""
    dataset = EncodedDataset(encoded, None)
    loader = DataLoader(dataset, batch_sampler=SortedBatchSampler(dataset.lengths, batch_size),
                        collate_fn=Collator(pad_id), num_workers=0)
    for batch in loader:
        rows = batch.pop("row_ids").numpy()
        yield rows, batch


def _scatter(encoded: Encoded, pad_id: int, batch_size: int, width: int,
             forward: Callable[[dict[str, torch.Tensor]], np.ndarray]) -> np.ndarray:
    """``forward``'s logits of every batch, put back in input order."""
    out: np.ndarray | None = None
    for rows, batch in _batches(encoded, pad_id, batch_size):
        logits = forward(batch)
        if out is None:
            out = np.zeros((len(encoded), logits.shape[1]), dtype=np.float32)
        out[rows] = logits
    if out is None:
        return np.zeros((0, width), dtype=np.float32)
    return out


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, encoded: Encoded, *, pad_id: int,
                   batch_size: int | None = None, device: str | None = None) -> np.ndarray:
    """Logits ``[n, num_labels]`` for every row of ``encoded``, in input order, in fp32, on
    ``device`` (the model is moved there) or where the model is (after training: the
    device it trained on), ``batch_size`` rows at a time (default: :func:`batch_size_for`
    that device)."""
    was_training = model.training
    model.eval()
    if device is not None:
        model.to(device)
    target = next(model.parameters()).device

    def forward(batch: dict[str, torch.Tensor]) -> np.ndarray:
        logits = model(**{k: v.to(target) for k, v in batch.items()}).logits
        return logits.float().cpu().numpy()

    try:
        return _scatter(encoded, pad_id, batch_size_for(batch_size, target),
                        int(getattr(model.config, "num_labels", 1)), forward)
    finally:
        model.train(was_training)


def onnx_logits(model: Any, encoded: Encoded, *, pad_id: int,
                batch_size: int | None = None) -> np.ndarray:
    """:func:`predict_logits` for an exported model (``labelwise.training.export.OnnxModel``):
    the same length-sorted batches, the forward pass in ONNX Runtime on the CPU."""
    return _scatter(encoded, pad_id, batch_size_for(batch_size, "cpu", "onnx"),
                    model.num_labels,
                    lambda batch: model.logits({k: v.numpy() for k, v in batch.items()}))

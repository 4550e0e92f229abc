"""Forward passes in input order: length-sorted batches, outputs scattered back by row id.

Transformers 5.x's ``Trainer.predict`` returns rows in length-grouped order when length
grouping is on; labelwise never relies on it. Every prediction and every final evaluation
goes through :func:`predict_logits`, whose output row ``i`` is input row ``i``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from labelwise.training.batching import Collator, EncodedDataset, SortedBatchSampler
from labelwise.training.tokens import Encoded

__all__ = ["predict_logits"]


@torch.inference_mode()
def predict_logits(model: torch.nn.Module, encoded: Encoded, *, pad_id: int,
                   batch_size: int = 64, device: str | None = None) -> np.ndarray:
    """Logits ``[n, num_labels]`` for every row of ``encoded``, in input order, in fp32, on
    ``device`` (the model is moved there) or where the model is (after training: the
    device it trained on)."""
    dataset = EncodedDataset(encoded, None)
    loader = DataLoader(dataset, batch_sampler=SortedBatchSampler(dataset.lengths, batch_size),
                        collate_fn=Collator(pad_id), num_workers=0)
    was_training = model.training
    model.eval()
    if device is not None:
        model.to(device)
    target = next(model.parameters()).device
    out: np.ndarray | None = None
    try:
        for batch in loader:
            rows = batch.pop("row_ids").numpy()
            logits = model(**{k: v.to(target) for k, v in batch.items()}).logits
            logits = logits.float().cpu().numpy()
            if out is None:
                out = np.zeros((len(dataset), logits.shape[1]), dtype=np.float32)
            out[rows] = logits
    finally:
        model.train(was_training)
    if out is None:
        width = int(getattr(model.config, "num_labels", 1))
        return np.zeros((0, width), dtype=np.float32)
    return out

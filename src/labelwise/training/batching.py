"""Batches for a CPU: dynamic padding with length buckets, and order-preserving inference.

Training batches: shuffle rows (seeded per epoch), cut them into chunks of
``chunk_batches * batch_size`` rows, sort each chunk by length, split it into batches, and
shuffle the batch order. Padding then wastes a few percent of the tokens instead of most of
them, while every epoch still sees a different mix. Evaluation and prediction batches are
sorted by length, and outputs are put back into input order by the caller (``row_ids``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from labelwise.training.tokens import Encoded

__all__ = ["EncodedDataset", "LengthBucketBatchSampler", "SortedBatchSampler", "Collator",
           "pad_stats"]


class EncodedDataset(Dataset):
    """Rows of an :class:`Encoded` split with their targets and row ids."""

    def __init__(self, encoded: Encoded, targets: np.ndarray | None) -> None:
        self.encoded = encoded
        self.targets = targets
        self.lengths = encoded.lengths

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids, types = self.encoded.row(i)
        item: dict[str, Any] = {"input_ids": ids, "row_ids": i}
        if types is not None:
            item["token_type_ids"] = types
        if self.targets is not None:
            item["labels"] = self.targets[i]
        return item

    def __getitems__(self, indices: Sequence[int]) -> list[dict[str, Any]]:
        return [self[i] for i in indices]


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Seeded, length-bucketed training batches (see the module docstring).

    Under data-parallel training every process draws the same batches (same seed, same
    epoch) and accelerate's ``BatchSamplerShard`` deals them out: process ``r`` of ``n``
    trains batches ``r, r + n, ...``. ``shared=True`` tells it that batches differ in size
    (``batch_size`` is ``None``): it then deals every batch, the short last one of each
    chunk included, instead of skipping the rounds whose last batch is short."""

    def __init__(self, lengths: np.ndarray, batch_size: int, *, seed: int,
                 chunk_batches: int = 64, bucket: bool = True, shared: bool = False) -> None:
        self.lengths = np.asarray(lengths)
        self.rows_per_batch = batch_size
        self.batch_size: int | None = None if shared else batch_size
        self.seed = seed
        self.chunk = chunk_batches * batch_size
        self.bucket = bucket
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        out: list[list[int]] = []
        for start in range(0, len(order), self.chunk):
            part = order[start:start + self.chunk]
            if self.bucket:
                part = part[np.argsort(-self.lengths[part], kind="stable")]
            out.extend(part[i:i + self.rows_per_batch].tolist()
                       for i in range(0, len(part), self.rows_per_batch))
        if self.bucket:
            out = [out[i] for i in rng.permutation(len(out))]
        return out

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.batches(self.epoch)

    def __len__(self) -> int:
        n, full = len(self.lengths), self.chunk
        return (n // full) * math.ceil(full / self.rows_per_batch) + math.ceil(
            (n % full) / self.rows_per_batch)


class SortedBatchSampler(Sampler[list[int]]):
    """Evaluation batches: rows sorted by length (longest first), fixed order."""

    def __init__(self, lengths: np.ndarray, batch_size: int) -> None:
        order = np.argsort(-np.asarray(lengths), kind="stable")
        self._batches = [order[i:i + batch_size].tolist()
                         for i in range(0, len(order), batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._batches

    def __len__(self) -> int:
        return len(self._batches)


class Collator:
    """Pad a list of rows to the longest in the batch; targets get the contract's dtype."""

    def __init__(self, pad_id: int, target_dtype: str | None = None) -> None:
        self.pad_id = pad_id
        self.target_dtype = torch.int64 if target_dtype == "int64" else torch.float32
        self.real_tokens = 0
        self.padded_tokens = 0

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(r["input_ids"]) for r in rows)
        n = len(rows)
        ids = np.full((n, width), self.pad_id, dtype=np.int64)
        mask = np.zeros((n, width), dtype=np.int64)
        has_types = "token_type_ids" in rows[0]
        types = np.zeros((n, width), dtype=np.int64) if has_types else None
        for i, row in enumerate(rows):
            k = len(row["input_ids"])
            ids[i, :k] = row["input_ids"]
            mask[i, :k] = 1
            if types is not None:
                types[i, :k] = row["token_type_ids"]
        self.real_tokens += int(mask.sum())
        self.padded_tokens += n * width
        batch = {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                 "row_ids": torch.tensor([r["row_ids"] for r in rows], dtype=torch.int64)}
        if types is not None:
            batch["token_type_ids"] = torch.from_numpy(types)
        if "labels" in rows[0]:
            batch["labels"] = torch.as_tensor(np.stack([r["labels"] for r in rows]),
                                              dtype=self.target_dtype)
        return batch


def pad_stats(collator: Collator) -> dict[str, float]:
    """Tokens seen by the model, real tokens, and the share that was padding."""
    total = max(collator.padded_tokens, 1)
    return {"tokens": collator.padded_tokens, "real_tokens": collator.real_tokens,
            "pad_share": round(1 - collator.real_tokens / total, 4)}

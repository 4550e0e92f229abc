"""Train only the word-embedding rows of tokens the data holds.

A transformer's word-embedding matrix is the largest single weight (MiniLM: 30,522 rows,
52% of its parameters), and a step pays for all of it: a dense gradient, its share of the
clipping norm, and an AdamW update of every row. A row whose token no training batch holds
gets a zero gradient at every step, and AdamW with weight decay 0 moves such a row by
exactly nothing (its moments stay 0). So training a matrix cut to the rows of the tokens in
the training and validation splits trains the same model as training the whole matrix, for
the work of the rows kept (sst2: 9,510 rows of 30,522; see BENCHMARKS.md). The cut rows
are written back before anything outside training sees the model.

With weight decay above 0, AdamW shrinks every row at every step, used or not, so the whole
matrix is trained (the plan says which).

The model keeps reading the original token ids: the cut matrix sits behind a lookup from
original id to kept row, so nothing that reads ``input_ids`` (position ids built from the
padding id, pooling at the last non-padding token) sees other ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["UsedRowsEmbedding", "RowCut", "cut_word_embeddings", "used_token_ids"]


class UsedRowsEmbedding(nn.Module):
    """An ``nn.Embedding`` of the kept rows, indexed by original token ids.

    An id that is not kept maps to row -1, which ``F.embedding`` refuses: such an id can
    only come from text outside the splits the rows were chosen from.
    """

    def __init__(self, full: nn.Embedding, keep: torch.Tensor) -> None:
        super().__init__()
        self.num_embeddings = full.num_embeddings  # what the model's config says
        self.embedding_dim = full.embedding_dim
        self.padding_idx = full.padding_idx
        self.weight = nn.Parameter(full.weight.detach()[keep].clone(),
                                   requires_grad=full.weight.requires_grad)
        lookup = torch.full((full.num_embeddings,), -1, dtype=torch.long)
        lookup[keep] = torch.arange(len(keep))
        self.register_buffer("lookup", lookup, persistent=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(self.lookup[input_ids], self.weight)

    def extra_repr(self) -> str:
        return f"{len(self.weight)} of {self.num_embeddings} rows, {self.embedding_dim}"


class RowCut:
    """A model whose word embeddings are cut to some rows; :meth:`restore` puts the whole
    matrix back, with the trained rows written into it."""

    def __init__(self, model: Any, keep: np.ndarray) -> None:
        self.model = model
        self.full: nn.Embedding = model.get_input_embeddings()
        self.keep = torch.as_tensor(np.asarray(keep, dtype=np.int64))
        model.set_input_embeddings(UsedRowsEmbedding(self.full, self.keep))

    @property
    def rows(self) -> int:
        return len(self.keep)

    def restore(self, model: Any = None) -> Any:
        """The model (``model`` if given: the Trainer may have swapped in its best
        checkpoint's module tree) with its whole word-embedding matrix back."""
        model = model if model is not None else self.model
        cut = model.get_input_embeddings()
        if isinstance(cut, UsedRowsEmbedding):
            # training moved the cut rows (to a GPU, maybe), not the full matrix kept aside
            self.full.to(device=cut.weight.device)
            with torch.no_grad():
                self.full.weight[self.keep.to(cut.weight.device)] = cut.weight.detach().to(
                    self.full.weight.dtype)
            model.set_input_embeddings(self.full)
        return model


_SCAN = 1 << 22  # ids per pass: a memory-mapped split is read a slice at a time


def used_token_ids(*id_arrays: np.ndarray, special_ids: list[int]) -> np.ndarray:
    """The sorted distinct token ids of the arrays, with the special ids (``np.unique`` of
    them all, without an int64 copy of every id: a flag per vocabulary row, set a slice of
    ids at a time)."""
    seen = np.zeros(0, dtype=bool)
    odd: list[np.ndarray] = []  # negative ids, which no vocabulary row has
    for array in (*id_arrays, np.asarray(special_ids, dtype=np.int64)):
        flat = np.asarray(array).ravel()
        for start in range(0, len(flat), _SCAN):
            part = flat[start:start + _SCAN]
            if part.min() < 0:
                odd.append(np.unique(part[part < 0]).astype(np.int64))
                part = part[part >= 0]
                if not len(part):
                    continue
            top = int(part.max()) + 1
            if top > len(seen):
                seen = np.concatenate([seen, np.zeros(top - len(seen), dtype=bool)])
            seen[part] = True
    return np.unique(np.concatenate([*odd, np.flatnonzero(seen).astype(np.int64)]))


def cut_word_embeddings(model: Any, keep: np.ndarray) -> RowCut | None:
    """Cut ``model``'s word embeddings to the ``keep`` rows, or ``None`` when the model's
    input embeddings are not a plain ``nn.Embedding``, are tied to an output layer, or
    ``keep`` holds every row."""
    full = model.get_input_embeddings()
    if type(full) is not nn.Embedding or len(keep) >= full.num_embeddings:
        return None
    output = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if output is not None and getattr(output, "weight", None) is full.weight:
        return None
    if len(keep) and (keep.min() < 0 or keep.max() >= full.num_embeddings):
        raise ValueError(f"token ids outside the vocabulary of {full.num_embeddings} rows")
    return RowCut(model, keep)

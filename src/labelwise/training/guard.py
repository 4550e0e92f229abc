"""The batch guard: every batch's targets checked against the contract, in microseconds.

``check_batch`` reads only ``dtype``, ``shape`` and min/max of the targets, so it works on
torch tensors and numpy arrays alike without importing torch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from labelwise.plan.contract import HeadContract
from labelwise.errors import ContractError
from labelwise.findings import format_rows

__all__ = ["check_batch", "expected_shape"]


def _dtype_name(array: Any) -> str:
    return str(array.dtype).replace("torch.", "")


def expected_shape(contract: HeadContract, batch_size: int) -> tuple[int, ...]:
    """The target shape the contract needs for a batch of ``batch_size`` rows."""
    if contract.target_width is None:
        return (batch_size,)
    return (batch_size, contract.target_width)


def _rows(batch: Mapping[str, Any], positions: Sequence[int]) -> str:
    ids = batch.get("row_ids")
    if ids is not None:
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        positions = [ids[p] for p in positions]
    return format_rows(list(positions))


def check_batch(contract: HeadContract, batch: Mapping[str, Any], *,
                batch_index: int | None = None) -> None:
    """Raise :class:`ContractError` unless the batch's ``labels`` fit the contract.

    Checks dtype, shape and range: class ids in ``[0, num_labels)``; multi-hot and one-logit
    targets in ``[0, 1]``; regression targets finite. Row ids come from the batch's
    ``row_ids`` entry when present, else positions in the batch.
    """
    labels = batch.get("labels")
    name = f"batch {batch_index}" if batch_index is not None else "batch"
    head = f"{contract.task} task, {contract.describe()}"
    if labels is None:
        raise ContractError(f"{name} has no 'labels'", fix="check the data collator",
                            code="LW220")
    shape = tuple(labels.shape)
    size = shape[0] if shape else 0
    want = expected_shape(contract, size)
    dtype = _dtype_name(labels)
    if shape != want:
        rows = list(range(min(size, 5)))
        raise ContractError(
            f"{name}: targets have shape {list(shape)} but the contract ({head}) expects "
            f"{list(want)}", where=_rows(batch, rows) if size else "",
            fix=_shape_fix(contract, shape), code="LW221")
    if dtype != contract.target_dtype:
        raise ContractError(f"{name}: targets are {dtype} but the contract ({head}) expects "
                            f"{contract.target_dtype}", fix="encode the labels with the "
                            "run's LabelSchema and contract", code="LW222")
    if size == 0:
        return
    low, high = float(labels.min()), float(labels.max())
    if contract.target_dtype == "int64":
        bad_range = low < 0 or high >= contract.num_labels
        limits = f"[0, {contract.num_labels - 1}]"
    elif contract.task.value == "regression":
        bad_range = not (abs(low) < float("inf") and abs(high) < float("inf")) or low != low
        limits = "finite values"
    else:
        bad_range = low < 0.0 or high > 1.0
        limits = "[0, 1]"
    if bad_range:
        flat = labels.reshape(size, -1)
        if contract.target_dtype == "int64":
            mask = (flat < 0) | (flat >= contract.num_labels)
        elif limits == "finite values":
            mask = ~(abs(flat) < float("inf"))
        else:
            mask = (flat < 0) | (flat > 1)
        rows = [i for i, row in enumerate(mask.tolist()) if any(row)]
        raise ContractError(f"{name}: targets hold values outside {limits} (min {low:g}, "
                            f"max {high:g})", where=_rows(batch, rows),
                            fix="encode the labels with the run's LabelSchema", code="LW223")


def _shape_fix(contract: HeadContract, shape: tuple[int, ...]) -> str:
    if contract.target_width is None and len(shape) == 2:
        return ("one-hot targets reached a cross-entropy head: encode them as class ids with "
                "the LabelSchema, or set the task to multilabel if rows carry several labels")
    if contract.target_width == 1:
        return "a one_logit head needs float targets of shape [B, 1]"
    return f"targets need one column per label ({contract.target_width})"

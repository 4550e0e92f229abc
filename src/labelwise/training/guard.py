"""The batch guard: every batch's targets checked against the contract, in microseconds.

``check_batch`` reads only ``dtype``, ``shape`` and min/max of the targets, so it works on
torch tensors and numpy arrays alike without importing torch. ``check_targets`` is the
same guard for a hand-written PyTorch loop: targets against the head width and the loss.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from labelwise.plan.contract import HeadContract
from labelwise.errors import ContractError
from labelwise.findings import format_rows

__all__ = ["check_batch", "expected_shape", "check_targets", "TargetCheck"]


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


# -- plain PyTorch -------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCheck:
    """What :func:`check_targets` accepted: the loss family, head width and target shape."""

    loss: str
    num_labels: int
    shape: tuple[int, ...]


_LOSS_CLASSES = {"BCEWithLogitsLoss": "bce", "BCELoss": "bce", "CrossEntropyLoss": "ce",
                 "NLLLoss": "ce", "MSELoss": "mse", "L1Loss": "mse", "SmoothL1Loss": "mse",
                 "HuberLoss": "mse"}


def _cols(first: int, width: int) -> str:
    return f"column {first}" if width == first + 1 else f"columns {first}..{width - 1}"


def _rows_where(mask: Any) -> str:
    rows = [i for i, bad in enumerate(mask.tolist()) if bad]
    return format_rows(rows) if rows else ""


def check_targets(targets: Any, *, num_labels: int | None = None, logits: Any = None,
                  loss: Any = None) -> TargetCheck:
    """Check a batch of targets against the head and the loss, before the forward pass.

    Args:
        targets: The targets tensor of one batch.
        num_labels: The head's width; or give ``logits``.
        logits: A logits tensor (its last dimension is the width; ``[B]`` is width 1).
        loss: The loss instance (``nn.BCEWithLogitsLoss``, ``nn.CrossEntropyLoss``,
            ``nn.MSELoss``...); ``None``: cross-entropy for integer targets, BCE for others.

    Returns:
        A :class:`TargetCheck`.

    Raises:
        ContractError: The targets cannot train this head with this loss; the message names
            both shapes (or widths), the rows, and the fix.
    """
    import torch

    t = torch.as_tensor(targets)
    if num_labels is None and logits is None:
        raise ContractError("check_targets needs the head width",
                            fix="pass num_labels= or logits=", code="LW220")
    width = int(num_labels) if num_labels is not None else (
        1 if logits.ndim == 1 else int(logits.shape[-1]))
    if logits is not None and logits.ndim >= 1 and t.ndim >= 1 and \
            logits.shape[0] != t.shape[0]:
        raise ContractError(f"targets hold {t.shape[0]} rows but the logits {logits.shape[0]}",
                            fix="take targets and inputs from the same batch", code="LW221")
    name = type(loss).__name__ if loss is not None else None
    kind = _LOSS_CLASSES.get(name) if name else ("ce" if not t.is_floating_point() else "bce")
    if kind is None:
        raise ContractError(f"unknown loss {name}", fix="pass an nn.BCEWithLogitsLoss, "
                            "nn.CrossEntropyLoss or nn.MSELoss instance", code="LW220")
    shape = tuple(t.shape)
    head = f"{width}-logit head, {name or kind}"
    size = shape[0] if shape else 0
    if t.is_floating_point():
        finite = torch.isfinite(t.reshape(size, -1)).all(dim=1) if size else t.new_ones(0)
        if size and not bool(finite.all()):
            raise ContractError(f"targets hold NaN or infinite values ({head})",
                                where=_rows_where(~finite), fix="fix or drop those rows",
                                code="LW237")
    if kind == "bce":
        if not t.is_floating_point():
            raise ContractError(f"targets are {str(t.dtype).replace('torch.', '')} but "
                                f"{name or 'BCE'} needs float targets", fix="pass "
                                "targets.float()", code="LW222")
        if t.ndim == 1 and width == 1:
            raise ContractError(f"targets have shape [{size}] but the {head} gives logits "
                                f"[{size}, 1]; BCE needs the same shape", fix="pass "
                                "targets.unsqueeze(1), or build num_labels=1 targets of "
                                "shape [B, 1]", code="LW221")
        if t.ndim == 1:
            raise ContractError(f"targets have shape [{size}] (one class id per row) but the "
                                f"{head} needs [{size}, {width}]", fix=f"one-hot them "
                                f"(F.one_hot(targets.long(), {width}).float()), or use "
                                "nn.CrossEntropyLoss with int64 class ids", code="LW221")
        if t.ndim == 2 and shape[1] != width:
            extra = ""
            if shape[1] > width:
                extra = _rows_where((t[:, width:] != 0).any(dim=1))
            raise ContractError(f"targets have width {shape[1]} but the head has {width} "
                                f"logits (num_labels={width}); {name or 'BCE'} needs one "
                                "target column per logit", where=extra,
                                fix=f"set num_labels={shape[1]} (one logit per label), or drop "
                                "the stray class" + (f" (target {_cols(width, shape[1])})"
                                                     if extra else ""),
                                code="LW230")
        if t.ndim != 2:
            raise ContractError(f"targets have shape {list(shape)} but the {head} needs "
                                f"[B, {width}]", fix="pass one row per example",
                                code="LW221")
        outside = ((t < 0) | (t > 1)).any(dim=1)
        if bool(outside.any()):
            raise ContractError(f"targets hold values outside [0, 1] ({head})",
                                where=_rows_where(outside), fix="BCE targets are 0/1 "
                                "(or probabilities); for numeric targets use nn.MSELoss",
                                code="LW223")
        return TargetCheck("bce", width, shape)
    if kind == "ce":
        if width < 2:
            raise ContractError(f"cross-entropy over a {width}-logit head is always 0",
                                fix="use num_labels=2 with cross-entropy, or keep one logit "
                                "with nn.BCEWithLogitsLoss and [B, 1] float targets",
                                code="LW202")
        if t.is_floating_point():
            if t.ndim == 2 and shape[1] == width:
                return TargetCheck("ce", width, shape)  # class probabilities
            raise ContractError(f"targets are float {list(shape)} but cross-entropy needs "
                                f"int64 class ids [B] (or probabilities [B, {width}])",
                                fix="pass targets.long()", code="LW222")
        if t.ndim != 1:
            raise ContractError(f"targets have shape {list(shape)} but cross-entropy "
                                f"({head}) needs class ids of shape [B]",
                                fix="pass targets.argmax(1) for one-hot rows, or use "
                                "nn.BCEWithLogitsLoss with float multi-hot rows",
                                code="LW221")
        out = (t < 0) | (t >= width)
        if bool(out.any()):
            top = int(t.max())
            raise ContractError(f"class id(s) {sorted(set(t[out].tolist()))[:5]} cannot be "
                                f"held by a {width}-logit head (ids must be in "
                                f"[0, {width - 1}])", where=_rows_where(out),
                                fix=f"set num_labels={max(top + 1, width)}, or drop the "
                                "stray class", code="LW231")
        return TargetCheck("ce", width, shape)
    if not t.is_floating_point():
        raise ContractError(f"targets are {str(t.dtype).replace('torch.', '')} but "
                            f"{name or 'MSE'} needs floats", fix="pass targets.float()",
                            code="LW222")
    want = (size, width)
    if shape != want:
        fix = ("pass targets.unsqueeze(1) (MSE broadcasts [B] against [B, 1] into a [B, B] "
               "loss, with only a warning)" if t.ndim == 1 and width == 1 else
               f"give one target column per output ({width})")
        raise ContractError(f"targets have shape {list(shape)} but the {head} gives "
                            f"{list(want)}", fix=fix, code="LW221")
    return TargetCheck("mse", width, shape)

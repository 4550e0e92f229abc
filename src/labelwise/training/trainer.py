"""``LabelwiseTrainer``: transformers' Trainer with the contract's loss, the batch guard on
every batch, length-bucketed batches, and a loud stop on a non-finite loss."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import Trainer, TrainerCallback

from labelwise.training._memory import trim_heap
from labelwise.training.batching import (Collator, EncodedDataset, LengthBucketBatchSampler,
                                SortedBatchSampler)
from labelwise.plan.contract import HeadContract
from labelwise.errors import LabelwiseError
from labelwise.training.guard import check_batch
from labelwise.training.losses import make_loss

__all__ = ["LabelwiseTrainer", "DivergedError", "StepTimer", "clip_gradients"]


class DivergedError(LabelwiseError, FloatingPointError):
    """The training loss became NaN or infinite."""

    default_code = "LW501"


class LabelwiseTrainer(Trainer):
    """A Trainer whose loss, batches and checks come from the head contract."""

    def __init__(self, *args: Any, contract: HeadContract, bucket: bool = True,
                 head_parameters: Iterable[str] = (),
                 head_learning_rate: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.contract = contract
        self.bucket = bucket
        self.head_parameters = set(head_parameters)
        self.head_learning_rate = head_learning_rate
        self.loss_fn = make_loss(contract)
        self.batches_seen = 0

    # -- batches -------------------------------------------------------------------------
    def get_train_dataloader(self) -> DataLoader:
        dataset: EncodedDataset = self.train_dataset  # type: ignore[assignment]
        if not hasattr(dataset, "lengths"):  # a datasets.Dataset or any torch Dataset
            return super().get_train_dataloader()
        sampler = LengthBucketBatchSampler(dataset.lengths, self._train_batch_size,
                                           seed=self.args.seed, bucket=self.bucket,
                                           shared=self.args.world_size > 1)
        loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=self.data_collator,
                            num_workers=0)
        return self.accelerator.prepare(loader)

    def get_eval_dataloader(self, eval_dataset: Any = None) -> DataLoader:
        dataset: EncodedDataset = eval_dataset if eval_dataset is not None else self.eval_dataset
        collator = self.data_collator
        if not hasattr(dataset, "lengths") or not isinstance(collator, Collator):
            return super().get_eval_dataloader(eval_dataset)
        eval_collator = Collator(collator.pad_id, self.contract.target_dtype)  # own counters
        loader = DataLoader(dataset, batch_sampler=SortedBatchSampler(
            dataset.lengths, self.args.eval_batch_size), collate_fn=eval_collator,
            num_workers=0)
        return self.accelerator.prepare(loader)

    def evaluate(self, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Trainer's evaluation, leaving torch's CPU generator as it found it: each
        DataLoader iterator draws its base seed from that generator, which also drives
        dropout, so without this how often a run evaluates would change what it trains.
        (Evaluation draws nothing from a GPU's generator.)"""
        trim_heap()  # training's freed gradients and activations, before evaluation allocates
        with torch.random.fork_rng(devices=[]):
            return super().evaluate(*args, **kwargs)

    # -- checkpoints ---------------------------------------------------------------------
    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        """Trainer's checkpoint, then the marker that says it was written to the end
        (``--resume`` uses the last marked one); a full disk is said in words."""
        from pathlib import Path

        from labelwise.outputs.safety import disk_full_errors, mark_complete

        folder = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}"
        with disk_full_errors(folder):
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                mark_complete(folder, step=self.state.global_step)

    # -- optimizer -----------------------------------------------------------------------
    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        """Trainer's optimizer, with the new head's parameters in groups of their own at
        ``head_learning_rate`` (same weight-decay split)."""
        fresh = self.optimizer is None
        optimizer = super().create_optimizer(model)
        if not fresh or self.head_learning_rate is None or not self.head_parameters:
            return optimizer
        head = {id(p) for n, p in (model or self.model).named_parameters()
                if n in self.head_parameters}
        for group in list(optimizer.param_groups):
            moved = [p for p in group["params"] if id(p) in head]
            if not moved:
                continue
            group["params"] = [p for p in group["params"] if id(p) not in head]
            optimizer.add_param_group({**{k: v for k, v in group.items() if k != "params"},
                                       "params": moved, "lr": self.head_learning_rate})
        optimizer.param_groups[:] = [g for g in optimizer.param_groups if g["params"]]
        return optimizer

    def _clip_grad_norm(self, model: Any) -> torch.Tensor:
        """Trainer's gradient clipping, by :func:`clip_gradients` where nothing else (a
        distributed run, a gradient scaler) needs Trainer's own path."""
        from accelerate.utils import DistributedType

        if (self.accelerator.distributed_type != DistributedType.NO
                or self.accelerator.scaler is not None):
            return super()._clip_grad_norm(model)
        return clip_gradients(model.parameters(), self.args.max_grad_norm)

    # -- loss ----------------------------------------------------------------------------
    def compute_loss(self, model: torch.nn.Module, inputs: dict[str, Any],
                     return_outputs: bool = False, num_items_in_batch: Any = None) -> Any:
        labels = inputs.pop("labels")
        row_ids = inputs.pop("row_ids", None)
        check_batch(self.contract, {"labels": labels, "row_ids": row_ids},
                    batch_index=self.batches_seen)
        self.batches_seen += 1
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits, labels)
        if not torch.isfinite(loss):
            step = self.state.global_step
            raise DivergedError(f"the training loss became {loss.item()} at step {step}",
                                fix="lower train.learning_rate, or check the targets",
                                where=f"step {step}")
        return (loss, outputs) if return_outputs else loss


class StepTimer(TrainerCallback):
    """Time spent inside optimizer steps (for the overhead figure of tuning)."""

    def __init__(self) -> None:
        import time

        self._clock = time.perf_counter
        self.step_seconds = 0.0
        self._start: float | None = None
        self.steps = 0

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._start = self._clock()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._start is not None:
            self.step_seconds += self._clock() - self._start
            self.steps += 1
            self._start = None


def clip_gradients(parameters: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """``torch.nn.utils.clip_grad_norm_``, without its pass over every gradient on the steps
    whose norm is within ``max_norm``: it then multiplies each gradient by exactly 1.0 (it
    never branches, to spare an accelerator a device sync that a CPU does not pay). The same
    factor from the same norm, so the same gradients, bit for bit."""
    params = [p for p in parameters if p.grad is not None]
    norm = torch.nn.utils.get_total_norm([p.grad for p in params], foreach=True)
    if bool(max_norm / (norm + 1e-6) < 1.0):  # clip_grad_norm_'s factor, clamped at 1
        torch.nn.utils.clip_grads_with_norm_(params, max_norm, norm, foreach=True)
    return norm


def steps_per_epoch(n_rows: int, batch_size: int, accumulation: int) -> int:
    return max(1, math.ceil(math.ceil(n_rows / batch_size) / accumulation))


def collator_for(pad_id: int, contract: HeadContract) -> Collator:
    return Collator(pad_id, contract.target_dtype)

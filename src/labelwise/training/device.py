"""The machine's side of ``train.device`` / ``train.precision``, and several processes.

:func:`device_facts` asks torch what this process may train on (the only place that does;
:mod:`labelwise.plan.device` decides from the answers). :class:`Processes` is the one
process or the ``torchrun`` group a run is part of: process 0 runs preflight and hands the
plan to the others, writes the output dir, and the others wait where they must.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from labelwise.errors import ConfigError, LabelwiseError
from labelwise.plan.device import Compute, DeviceFacts, resolve_compute

__all__ = ["device_facts", "compute_for", "resolve_device", "release_device_memory",
           "Processes", "launcher_env", "training_arguments", "peak_gpu_memory"]

logger = logging.getLogger("labelwise")
T = TypeVar("T")


def launcher_env() -> tuple[int, int, int, int]:
    """``(WORLD_SIZE, RANK, LOCAL_RANK, LOCAL_WORLD_SIZE)`` set by torchrun or accelerate
    launch; ``(1, 0, 0, 1)`` in a process started alone."""
    def read(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default

    world = read("WORLD_SIZE", 1)
    return world, read("RANK", 0), read("LOCAL_RANK", 0), read("LOCAL_WORLD_SIZE", world)


def device_facts(*, gpus: float | None = None) -> DeviceFacts:
    """What this process may train on. ``gpus``: the GPUs a scheduler granted it (Ray's
    ``gpus_per_trial``); ``0`` means none, whatever is visible."""
    world, rank, local_rank, _ = launcher_env()
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpus is not None and gpus <= 0:
        n = 0
    bf16 = bool(n) and bool(torch.cuda.is_bf16_supported())
    capability = tuple(torch.cuda.get_device_capability(0)) if n else None
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    return DeviceFacts(cuda_devices=n, cuda_bf16=bf16,
                       cuda_capability=capability,  # type: ignore[arg-type]
                       mps=mps, world_size=world, rank=rank, local_rank=local_rank)


def compute_for(plan: Any, config: Any = None) -> Compute:
    """The plan's device and precision, or, for a config that asks for others (a trial) or
    a plan made without device facts, the resolution on this machine.

    Raises:
        ConfigError: the choice is impossible here (the fix in the message).
    """
    cfg = config if config is not None else plan.config
    wanted = (cfg.train.device, cfg.train.precision)
    compute: Compute | None = plan.compute
    if compute is not None and compute.requested == wanted:
        return compute
    try:
        return resolve_compute(*wanted, device_facts())
    except ValueError as err:
        f = err.finding  # type: ignore[attr-defined]
        raise ConfigError(f.message, where=f.where.detail, fix=f.fix, code=f.code) from None


def resolve_device(requested: str) -> str:
    """``train.device`` / ``predict(device=...)`` on this machine: ``cpu``, ``mps`` or
    ``cuda:N``.

    Raises:
        ConfigError: not a device name, or not on this machine.
    """
    import re

    if not re.fullmatch(r"auto|cpu|mps|cuda(:[0-9]+)?", requested):
        raise ConfigError(f"unknown device {requested!r}", fix="use auto, cpu, mps, cuda or "
                          "cuda:<index>", code="LW370")
    facts = device_facts()
    facts = DeviceFacts(cuda_devices=facts.cuda_devices, cuda_bf16=facts.cuda_bf16,
                        cuda_capability=facts.cuda_capability, mps=facts.mps)  # one process
    try:
        return resolve_compute(requested, "fp32", facts).device
    except ValueError as err:
        f = err.finding  # type: ignore[attr-defined]
        raise ConfigError(f.message.replace("train.device", "device"), fix=f.fix.replace(
            "train.device", "device"), code=f.code) from None


def release_device_memory() -> None:
    """Give the CUDA cache back after a trial (Optuna and Trainer keep growing it across
    trials otherwise); nothing on a machine without CUDA."""
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


@dataclass
class Processes:
    """This process's place in a run: alone, or one of ``world_size`` torchrun processes."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    local_world_size: int = 1

    @classmethod
    def start(cls, *, cpu: bool = False) -> Processes:
        """Join the launcher's process group (gloo on the CPU, nccl on CUDA) when there is
        one; Transformers' Trainer then finds it initialised and trains data-parallel."""
        world, rank, local, local_world = launcher_env()
        group = cls(world, rank, local, local_world)
        if world > 1 and not torch.distributed.is_initialized():
            import atexit
            import datetime

            cuda = not cpu and torch.cuda.is_available()
            atexit.register(_leave_group)
            if cuda:
                torch.cuda.set_device(local)
            torch.distributed.init_process_group(
                backend="nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=30))
        return group

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world_size > 1:
            torch.distributed.barrier()

    def once(self, call: Callable[[], T]) -> T:
        """``call()`` in process 0; its result (or its user error) in every process."""
        if self.world_size == 1:
            return call()
        box: list[Any] = [None]
        if self.main:
            try:
                box[0] = ("ok", call())
            except Exception as err:  # every process stops, process 0 with the real error
                what = err.what if isinstance(err, LabelwiseError) else str(err)
                box[0] = ("error", f"{type(err).__name__}: {what}",
                          getattr(err, "code", "") or "LW000")
                torch.distributed.broadcast_object_list(box, src=0)
                raise
        torch.distributed.broadcast_object_list(box, src=0)
        if box[0][0] == "error":
            raise LabelwiseError(f"process 0 stopped the run: {box[0][1]}",
                                 fix="see the messages of process 0", code=box[0][2])
        return box[0][1]

    def first(self, call: Callable[[], T]) -> T:
        """``call()`` in process 0, then in the others (which then find its caches)."""
        if self.main:
            try:
                return call()
            finally:
                self.barrier()
        self.barrier()
        return call()


def _leave_group() -> None:
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def training_arguments(compute: Compute, **kwargs: Any) -> Any:
    """``transformers.TrainingArguments`` for ``compute``: the CPU (``use_cpu``), or the
    device Transformers picks itself (MPS; under torchrun the GPU of ``LOCAL_RANK``), or,
    for one process on CUDA, exactly the resolved GPU: Transformers would otherwise take
    ``cuda:0`` and spread a batch over every visible GPU with ``nn.DataParallel``."""
    from transformers import TrainingArguments

    kwargs.update(use_cpu=compute.kind == "cpu", bf16=compute.precision == "bf16",
                  fp16=compute.precision == "fp16")
    if compute.kind == "cpu" and compute.world_size > 1:
        kwargs["ddp_backend"] = "gloo"
    index = compute.gpu_index if compute.world_size == 1 else None
    if index is None:
        return TrainingArguments(**kwargs)
    return _one_gpu_arguments()(gpu_index=index, **kwargs)


_ONE_GPU: list[Any] = []


def _one_gpu_arguments() -> Any:
    if _ONE_GPU:
        return _ONE_GPU[0]
    from dataclasses import dataclass as _dataclass
    from dataclasses import field
    from functools import cached_property

    from transformers import TrainingArguments

    @_dataclass
    class OneGPUArguments(TrainingArguments):
        """TrainingArguments on the one GPU ``gpu_index``, without ``nn.DataParallel``."""

        gpu_index: int = field(default=0, metadata={"help": "the CUDA device to train on"})

        @cached_property
        def _setup_devices(self) -> torch.device:
            TrainingArguments._setup_devices.func(self)  # type: ignore[attr-defined]
            torch.cuda.set_device(self.gpu_index)
            self._n_gpu = 1
            return torch.device("cuda", self.gpu_index)

    _ONE_GPU.append(OneGPUArguments)
    return OneGPUArguments


def peak_gpu_memory() -> int | None:
    """Bytes of CUDA memory this process has held at most (``None`` without CUDA)."""
    if not torch.cuda.is_available():
        return None
    return int(torch.cuda.max_memory_allocated())

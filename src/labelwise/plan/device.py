"""Where a run trains and in which float format: ``train.device`` and ``train.precision``.

The resolution is pure: what the machine has comes in as a :class:`DeviceFacts` value
(filled from torch's queries by :func:`labelwise.training.device.device_facts`), so every
combination is decided, and tested, the same way on any machine. An impossible choice
(fp16 on a CPU, bf16 on a GPU without it, a GPU that is not there) is a finding with the
fix, reported by preflight before anything loads.

* ``device: auto``: CUDA if a GPU is visible, else Apple MPS, else the CPU. One process
  trains on one GPU (``cuda:0``, or ``cuda:N``); a ``torchrun`` process trains on the GPU of
  its ``LOCAL_RANK``.
* ``precision: auto``: bf16 on a GPU that supports it (compute capability 8.0 and later),
  else fp16 with loss scaling on CUDA; fp32 on the CPU and on MPS. bf16 on the CPU
  (autocast) is used only when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

from labelwise.findings import Finding, Where

__all__ = ["DeviceFacts", "Compute", "resolve_compute", "compute_findings"]


@dataclass(frozen=True)
class DeviceFacts:
    """What this process may train on, as torch and the launcher report it."""

    cuda_devices: int = 0  # visible CUDA devices (after CUDA_VISIBLE_DEVICES)
    cuda_bf16: bool = False  # the first visible CUDA device computes in bf16
    cuda_capability: tuple[int, int] | None = None  # of the first visible CUDA device
    mps: bool = False  # Apple MPS is available
    world_size: int = 1  # processes of a torchrun / accelerate launch
    rank: int = 0
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


@dataclass(frozen=True)
class Compute:
    """The resolved device and precision, each with its reason, and the requests they
    came from (a trial whose config asks for others is resolved again)."""

    device: str  # cpu | mps | cuda:N
    device_reason: str
    precision: str  # fp32 | bf16 | fp16
    precision_reason: str
    world_size: int = 1
    requested: tuple[str, str] = ("auto", "auto")

    @property
    def kind(self) -> str:
        """``cpu``, ``mps`` or ``cuda``."""
        return self.device.split(":")[0]

    @property
    def gpu_index(self) -> int | None:
        return int(self.device.split(":")[1]) if self.kind == "cuda" else None

    def to_dict(self) -> dict[str, object]:
        return {"device": self.device, "precision": self.precision,
                "world_size": self.world_size}


class _Refused(Exception):
    def __init__(self, code: str, message: str, key: str, fix: str) -> None:
        super().__init__(message)
        self.finding = Finding(code, "error", message, Where(detail=f"key {key}"), fix)


def _capability(facts: DeviceFacts) -> str:
    c = facts.cuda_capability
    return f"compute capability {c[0]}.{c[1]}" if c else "compute capability unknown"


def _device(requested: str, facts: DeviceFacts) -> tuple[str, str]:
    n = facts.cuda_devices
    if facts.distributed and requested in ("auto", "cuda") and n:
        if facts.local_rank >= n:
            raise _Refused("LW371", f"process LOCAL_RANK={facts.local_rank} has no GPU: "
                           f"{n} visible on this node", "train.device",
                           f"start at most {n} processes a node (torchrun --nproc_per_node "
                           f"{n})")
        return (f"cuda:{facts.local_rank}", f"torchrun: process {facts.rank} of "
                f"{facts.world_size} trains on the GPU of its LOCAL_RANK")
    if requested == "auto":
        if n:
            more = (f"; one process uses one GPU: torchrun --nproc_per_node {n} uses all {n}"
                    if n > 1 and not facts.distributed else "")
            return "cuda:0", f"auto: CUDA is available ({n} GPU{'s' if n > 1 else ''}){more}"
        if facts.mps and not facts.distributed:
            return "mps", "auto: Apple MPS is available, CUDA is not"
        return "cpu", "auto: no CUDA or MPS device"
    if requested == "cpu":
        return "cpu", "config (train.device: cpu)"
    if requested == "mps":
        if not facts.mps:
            raise _Refused("LW370", "train.device is mps, but Apple MPS is not available",
                           "train.device", "set train.device: auto or cpu")
        if facts.distributed:
            raise _Refused("LW371", "train.device mps cannot train in several processes",
                           "train.device", "run one process, or train on CUDA GPUs")
        return "mps", "config (train.device: mps)"
    index = int(requested.split(":")[1]) if ":" in requested else 0
    if not n:
        raise _Refused("LW370", f"train.device is {requested}, but no CUDA device is visible",
                       "train.device", "set train.device: auto or cpu, or check the GPU "
                       "driver and CUDA_VISIBLE_DEVICES")
    if facts.distributed:
        raise _Refused("LW371", f"train.device {requested} pins one GPU, but "
                       f"{facts.world_size} processes were started", "train.device",
                       "set train.device: auto or cuda (each process trains on the GPU of "
                       "its LOCAL_RANK)")
    if index >= n:
        raise _Refused("LW370", f"train.device is {requested}, but {n} CUDA device"
                       f"{'s are' if n > 1 else ' is'} visible (cuda:0 to cuda:{n - 1})",
                       "train.device", f"use cuda:0 to cuda:{n - 1}, or check "
                       "CUDA_VISIBLE_DEVICES")
    return f"cuda:{index}", f"config (train.device: {requested})"


def _precision(requested: str, device: str, facts: DeviceFacts) -> tuple[str, str]:
    kind = device.split(":")[0]
    if requested == "fp32":
        return "fp32", "config (train.precision: fp32)"
    if kind == "cuda":
        if requested == "auto":
            if facts.cuda_bf16:
                return "bf16", f"auto: the GPU computes in bf16 ({_capability(facts)})"
            return "fp16", (f"auto: the GPU has no bf16 ({_capability(facts)}): fp16 with "
                            "loss scaling")
        if requested == "bf16" and not facts.cuda_bf16:
            raise _Refused("LW373", f"train.precision is bf16, but the GPU does not support "
                           f"it ({_capability(facts)}; bf16 needs 8.0 or later)",
                           "train.precision", "set train.precision: fp16 or auto")
        suffix = " with loss scaling" if requested == "fp16" else ""
        return requested, f"config (train.precision: {requested}){suffix}"
    if requested == "auto":
        where = "the CPU" if kind == "cpu" else "MPS"
        return "fp32", (f"auto: fp32 on {where} (bf16 autocast only when asked for: "
                        "train.precision: bf16)")
    if requested == "fp16" and kind == "cpu":
        raise _Refused("LW372", "train.precision is fp16, but the run trains on the CPU "
                       "(fp16 needs a GPU)", "train.precision",
                       "set train.precision: bf16 (autocast on the CPU) or fp32, or train on "
                       "a GPU")
    how = " (autocast on the CPU)" if kind == "cpu" else ""
    return requested, f"config (train.precision: {requested}){how}"


def resolve_compute(device: str, precision: str, facts: DeviceFacts) -> Compute:
    """The device and precision ``train.device`` / ``train.precision`` mean on a machine
    with ``facts``.

    Raises:
        ValueError: an impossible choice (its ``.finding`` attribute is the finding);
            :func:`compute_findings` collects them instead.
    """
    try:
        dev, dev_why = _device(device, facts)
        prec, prec_why = _precision(precision, dev, facts)
    except _Refused as refused:
        err = ValueError(str(refused))
        err.finding = refused.finding  # type: ignore[attr-defined]
        raise err from None
    return Compute(dev, dev_why, prec, prec_why, facts.world_size, (device, precision))


def compute_findings(device: str, precision: str, facts: DeviceFacts | None,
                     source: str | None = None) -> tuple[Compute | None, list[Finding]]:
    """:func:`resolve_compute` for preflight: the resolution, or the finding that refuses
    it. Without ``facts`` (``labelwise check`` does not start torch) only the choices that
    are impossible on every machine are refused, and nothing is resolved."""
    try:
        if facts is None:
            if precision == "fp16" and device == "cpu":
                _precision(precision, "cpu", DeviceFacts())
            return None, []
        return resolve_compute(device, precision, facts), []
    except (ValueError, _Refused) as err:
        finding: Finding = err.finding  # type: ignore[attr-defined]
        if source:
            finding = Finding(finding.code, "error", finding.message,
                              Where(file=source, detail=finding.where.detail), finding.fix)
        return None, [finding]

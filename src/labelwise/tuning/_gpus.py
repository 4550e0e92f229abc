"""Which GPU each ``labelwise tune --workers N`` process sees.

Worker ``i`` of ``N`` on a machine with ``G`` visible GPUs gets GPU ``i mod G`` as its only
visible device (``CUDA_VISIBLE_DEVICES``), so the workers spread over the GPUs first and
share one only when there are more workers than GPUs; ``search.trials_per_gpu`` (default
1) is how many may share one. On a machine without GPUs nothing is set.
"""

from __future__ import annotations

from labelwise.errors import ConfigError

__all__ = ["gpu_assignment", "visible_gpu_ids"]


def visible_gpu_ids(count: int, visible: str | None) -> list[str]:
    """The ids of the ``count`` GPUs this process sees, as ``CUDA_VISIBLE_DEVICES`` names
    them (``visible``: its value here, or ``None`` when unset: ``0 .. count-1``)."""
    if visible is None or not visible.strip():
        return [str(i) for i in range(count)]
    names = [v.strip() for v in visible.split(",") if v.strip()]
    return names[:count]


def gpu_assignment(workers: int, gpus: list[str], trials_per_gpu: int = 1
                   ) -> list[str | None]:
    """``CUDA_VISIBLE_DEVICES`` for each worker (``None``: leave it as it is).

    Raises:
        ConfigError: more workers than ``len(gpus) * trials_per_gpu``.
    """
    if not gpus:
        return [None] * workers
    slots = len(gpus) * trials_per_gpu
    if workers > slots:
        raise ConfigError(f"--workers {workers} needs {workers} GPU slots, but there are "
                          f"{len(gpus)} GPU(s) x search.trials_per_gpu {trials_per_gpu} = "
                          f"{slots}", fix=f"pass --workers {slots} or fewer, or set "
                          f"search.trials_per_gpu: {-(-workers // len(gpus))} (trials that "
                          "share a GPU share its memory)", code="LW355")
    return [gpus[i % len(gpus)] for i in range(workers)]

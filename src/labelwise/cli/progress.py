"""A rich progress bar for training runs (used by the CLI; the library only logs)."""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

__all__ = ["RichProgress"]


class RichProgress(TrainerCallback):
    """Steps with loss, samples/s and ETA; one line per evaluation."""

    def __init__(self, console: Any, *, description: str = "train") -> None:
        self.console = console
        self.description = description
        self.progress: Any = None
        self.task: Any = None
        self.loss: float | None = None
        self.samples = 0
        self.start = 0.0

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} samples/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False)
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=state.max_steps,
                                           completed=state.global_step, loss="-", rate="-")
        self.start = time.perf_counter()
        self.samples = 0

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is None:
            return
        self.samples += args.per_device_train_batch_size * args.gradient_accumulation_steps
        rate = self.samples / max(time.perf_counter() - self.start, 1e-9)
        loss = f"{self.loss:.4f}" if self.loss is not None else "-"
        self.progress.update(self.task, completed=state.global_step, loss=loss,
                             rate=f"{rate:.1f}")

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
               **kwargs: Any) -> None:
        if logs and "loss" in logs:
            self.loss = float(logs["loss"])

    def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                    **kwargs: Any) -> None:
        if self.progress is None or not metrics:
            return
        shown = ", ".join(f"{k.removeprefix('eval_')} {v:.4f}" for k, v in metrics.items()
                          if isinstance(v, float) and not k.endswith(("runtime", "per_second")))
        self.progress.console.print(f"  step {state.global_step}: {shown}")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

"""Search progress people can read: trial k of N, elapsed, ETA against the timeout, the best
so far, parameters to 3 significant digits, in lines of at most 80 columns.

Every backend reports a finished trial to :class:`SearchProgress`, which logs its lines
(the CLI shows the ``labelwise`` log) and moves the trials bar of a Python caller's run
(:func:`labelwise.training.progress.current`).
"""

from __future__ import annotations

import logging
import math
import textwrap
import time
from typing import Any

from labelwise.training.progress import current

__all__ = ["SearchProgress", "format_params", "format_seconds", "WIDTH"]

logger = logging.getLogger("labelwise")
WIDTH = 80


def format_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:.3g}"


def format_params(params: dict[str, Any]) -> str:
    """``learning_rate=3.12e-05, batch_size=16``: last key segment, 3 significant digits."""
    return ", ".join(f"{k.split('.')[-1]}={format_value(v)}" for k, v in params.items())


def format_seconds(seconds: float) -> str:
    """``45s``, ``3m05s``, ``2h07m``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


class SearchProgress:
    """Counts finished trials of this process's share of a search and reports each one."""

    def __init__(self, *, n_trials: int, metric: str, direction: str,
                 timeout: float | None = None, done: int = 0, log: bool = True) -> None:
        self.n_trials = n_trials
        self.metric = metric
        self.direction = direction
        self.timeout = timeout
        self.done = done
        self.ran = 0
        self.best: tuple[float, int] | None = None
        self.started = time.monotonic()
        self.log = log
        self.bar: Any = None
        self._opened = False

    def start(self) -> None:
        """Open the trials bar (once; after tokenizing, which has its own bar)."""
        if self._opened:
            return
        self._opened = True
        reporter = current()
        if reporter is not None:
            self.bar = reporter.bar("trials", total=self.n_trials, unit="trial")
            if self.done:
                self.bar.update(min(self.done, self.n_trials))

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best[0] if self.direction == "maximize" else value < self.best[0]

    def eta(self) -> str:
        elapsed = time.monotonic() - self.started
        left = max(0, self.n_trials - self.done)
        if self.ran == 0 or left == 0:
            return "-" if left else "0s"
        eta = elapsed / self.ran * left
        if self.timeout is not None and self.timeout - elapsed < eta:
            return f"{format_seconds(max(0.0, self.timeout - elapsed))} (timeout)"
        return format_seconds(eta)

    def finished(self, number: int, state: str, value: float | None,
                 params: dict[str, Any], *, reason: str = "",
                 best: tuple[float, int] | None = None, note: str = "") -> list[str]:
        """Record one finished trial; returns (and logs) its lines. ``note``: what the
        findings after training say about it, in brief."""
        self.start()
        self.done += 1
        self.ran += 1
        if value is not None and not math.isnan(value) and self._better(value):
            self.best = (value, number)
        if best is not None:
            self.best = best
        elapsed = format_seconds(time.monotonic() - self.started)
        shown = f" {self.metric}={value:.4f}" if value is not None else ""
        head = f"trial {self.done}/{self.n_trials} (#{number}) {state.lower()}{shown}"
        best_text = (f"best {self.best[0]:.4f} (#{self.best[1]})" if self.best else "best -")
        clock = f"{elapsed}, ETA {self.eta()}"
        line = f"{head} | {best_text} | {clock}"
        if len(line) > WIDTH:
            lines = [head[:WIDTH], f"  {best_text} | {clock}"[:WIDTH]]
        else:
            lines = [line]
        detail = (format_params(params) + (f" [{reason}]" if reason else "")
                  + (f" — {note}" if note else ""))
        lines += textwrap.wrap(detail, WIDTH, initial_indent="  ", subsequent_indent="    ")
        if self.log:
            for text in lines:
                logger.info(text)
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(best_text, refresh=True)
        return lines

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

"""What a Python caller sees while a run works: the plan once, one bar per stage, no noise.

``train`` and ``tune`` called from Python (a notebook or a script) print the plan's
decisions once and show a ``tqdm.auto`` bar for each stage: tokenizing, training steps,
trials. ``tqdm.auto`` draws a widget in Jupyter and a text bar in a terminal. Third-party
load reports, shard-writing bars and INFO lines are silenced for the call
(:func:`quiet_libraries`) unless ``verbose=True``. The CLI draws its own (rich) progress and
passes ``progress=False``.

Stages find the active :class:`Reporter` through :func:`current`, so that code deep in a
run (tokenizing, a search backend's trial loop) needs no extra parameter.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

__all__ = ["Reporter", "current", "reporting", "quiet_libraries", "steps_callback"]

_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "labelwise_reporter", default=None)


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


class Reporter:
    """Prints the plan once and opens one bar per stage (``enabled=False``: nothing)."""

    def __init__(self, *, enabled: bool = True, file: Any = None) -> None:
        self.enabled = enabled
        self.file = file
        self._planned: set[int] = set()
        if enabled:  # tqdm.auto looks for IPython: once, before any stage is timed
            from tqdm.auto import tqdm  # noqa: F401

    def write(self, line: str) -> None:
        if not self.enabled:
            return
        from tqdm.auto import tqdm

        tqdm.write(line, file=self.file or sys.stdout)

    def plan(self, plan: Any, *, extra: tuple[str, ...] = ()) -> None:
        """The plan's decisions, once per plan."""
        if not self.enabled or id(plan) in self._planned:
            return
        self._planned.add(id(plan))
        self.write("\n".join(["plan:", *(f"  {line}" for line in [*plan.lines(), *extra])]))

    def findings(self, findings: Any, *, title: str = "after training") -> None:
        """Findings a run made (what the model cannot do), one a line, when there are any."""
        lines = [f"  {f.render()}" for f in findings]
        if lines:
            self.write("\n".join([f"{title}:", *lines]))

    def bar(self, description: str, *, total: int | None, unit: str = "it") -> Any:
        if not self.enabled:
            return _NullBar()
        from tqdm.auto import tqdm

        return tqdm(total=total, desc=description, unit=unit, dynamic_ncols=True,
                    file=self.file or sys.stderr, leave=True)


def current() -> Reporter | None:
    """The reporter of the run in progress in this context, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    token = _CURRENT.set(reporter)
    try:
        yield reporter
    finally:
        _CURRENT.reset(token)


@contextlib.contextmanager
def quiet_libraries(verbose: bool = False) -> Iterator[None]:
    """Silence Transformers' load reports and bars, the Hugging Face Hub's bars, Datasets'
    bars and Optuna's INFO lines for the duration (``verbose``: leave them as they are);
    the previous settings are restored afterwards."""
    if verbose:
        yield
        return
    from huggingface_hub.utils import (are_progress_bars_disabled, disable_progress_bars,
                                       enable_progress_bars)
    from transformers.utils import logging as hf_logging

    saved_env = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hub_bars_off = are_progress_bars_disabled()
    others = {name: logging.getLogger(name).level for name in ("accelerate", "datasets",
                                                               "optuna", "filelock")}
    optuna_level = None
    try:
        import optuna

        optuna_level = optuna.logging.get_verbosity()
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        optuna = None  # type: ignore[assignment]
    datasets_bars = None
    try:
        from datasets.utils import logging as ds_logging

        datasets_bars = ds_logging.is_progress_bar_enabled()
        ds_logging.disable_progress_bar()
    except ImportError:
        ds_logging = None  # type: ignore[assignment]
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    disable_progress_bars()
    for name in others:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
        if not hub_bars_off:
            enable_progress_bars()
        if saved_env is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = saved_env
        for name, level in others.items():
            logging.getLogger(name).setLevel(level)
        if optuna is not None and optuna_level is not None:
            optuna.logging.set_verbosity(optuna_level)
        if ds_logging is not None and datasets_bars:
            ds_logging.enable_progress_bar()


def steps_callback(reporter: Reporter, *, description: str = "training",
                   metric: str | None = None) -> Any:
    """A ``TrainerCallback`` that draws the training steps as one bar, with the last loss
    and the last validation ``metric`` as its postfix."""
    from transformers import TrainerCallback

    class Steps(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.loss: float | None = None
            self.value: float | None = None

        def _postfix(self) -> None:
            parts = []
            if self.loss is not None:
                parts.append(f"loss {self.loss:.4f}")
            if self.value is not None and metric:
                parts.append(f"{metric} {self.value:.4f}")
            self.bar.set_postfix_str(", ".join(parts), refresh=False)

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.bar = reporter.bar(description, total=state.max_steps, unit="step")
            if state.global_step:
                self.bar.update(state.global_step)
            self.done = state.global_step

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.update(state.global_step - self.done)
                self.done = state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None,
                   **kw: Any) -> None:
            if self.bar is not None and logs and "loss" in logs:
                self.loss = float(logs["loss"])
                self._postfix()

        def on_evaluate(self, args: Any, state: Any, control: Any, metrics: Any = None,
                        **kw: Any) -> None:
            if self.bar is not None and metrics and metric and f"eval_{metric}" in metrics:
                self.value = float(metrics[f"eval_{metric}"])
                self._postfix()

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.bar is not None:
                self.bar.close()
                self.bar = None

    return Steps()


def presented(func: Any) -> Any:
    """Run a verb with its ``verbose`` and ``progress`` keywords in effect: third-party
    noise silenced (:func:`quiet_libraries`) and a :class:`Reporter` active for the call."""
    import functools
    import inspect

    params = inspect.signature(func).parameters

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        verbose = kwargs.get("verbose", params["verbose"].default)
        progress = kwargs.get("progress", params["progress"].default)
        with quiet_libraries(verbose), reporting(Reporter(enabled=progress)):
            return func(*args, **kwargs)

    return run

"""The search backend contract and the typed results every backend returns.

A backend runs trials of one :class:`~labelwise.plan.preflight.Plan` over a validated search
space. It must:

* never change the label schema: every trial uses the plan's schema, and a worker whose
  data yields another schema fingerprint refuses to run;
* report the objective at each evaluation inside a trial (for pruning), and record per
  trial its params, seed, metrics, duration, time inside optimizer steps, and the reason
  of a FAIL or PRUNED state;
* isolate failures: an exception, a NaN loss or an out-of-memory error fails one trial;
  the search goes on;
* keep one model on disk: the best trial's, published as ``OUTPUT/best/``;
* write ``OUTPUT/trials.csv`` at the end.

Backends are process-safe: several processes may run trials of one study at once.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["SearchBackend", "SearchResult", "TrialRecord"]


@dataclass(frozen=True)
class TrialRecord:
    """One trial as it appears in ``trials.csv``."""

    number: int
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING | WAITING
    params: dict[str, Any]
    value: float | None
    metrics: dict[str, float] = field(default_factory=dict)
    duration_s: float | None = None
    step_seconds: float | None = None
    seed: int | None = None
    reason: str = ""
    findings: tuple[dict[str, Any], ...] = ()  # after training (Finding.to_dict()), COMPLETE


@dataclass(frozen=True)
class SearchResult:
    """What ``tune`` produced."""

    output_dir: Path
    best_dir: Path | None
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    objective: tuple[str, str]
    trials: tuple[TrialRecord, ...]
    storage: str
    study_name: str
    stats: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out


class SearchBackend(abc.ABC):
    """Runs a search for a plan. Subclasses implement :meth:`run`."""

    name: str = "base"

    @abc.abstractmethod
    def run(self, plan: Any, *, space: dict[str, Any], output_dir: Path,
            n_trials: int, timeout: float | None, callbacks: tuple[Any, ...] = ()
            ) -> SearchResult:
        """Run (or resume) the search until ``n_trials`` trials have finished."""

    def on_trial_end(self, record: TrialRecord) -> None:  # pragma: no cover - a hook
        """Called after each trial in the driver process (no-op by default)."""

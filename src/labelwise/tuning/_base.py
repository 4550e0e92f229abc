"""The search backend contract, the backend registry, and the typed results of a search.

A backend runs the trials of one search. :func:`labelwise.tune` chooses it from a name
(``"optuna"``, ``"ray"``, or one added with :func:`register_backend`) or takes an instance,
the way ``optuna.create_study(sampler=...)`` takes a sampler, then calls
:meth:`SearchBackend.run` once. Every backend MUST (``labelwise.testing.backend_checks``
runs these against a backend):

* run trials until ``n_trials`` have finished, or stop at ``timeout``;
* record per trial its params, state (COMPLETE, PRUNED, FAIL), value, validation metrics,
  seed, duration and time inside optimizer steps, and the reason of a FAIL or PRUNED state;
* isolate failures: an exception, a NaN loss or an out-of-memory error fails one trial
  (FAIL, with the reason); the search goes on;
* keep one model on disk: the best trial's, published as ``OUTPUT/best/``;
* write ``OUTPUT/trials.csv`` and ``OUTPUT/search.json`` at the end;
* resume: a second call with the same plan and output directory keeps the finished trials
  and never runs them again;
* never change the label schema or the config: every trial uses the plan's schema (a worker
  whose data yields another schema fingerprint refuses to run) and its own copy of the
  config;
* call each of ``callbacks`` once with the :class:`TrialRecord` of every trial that finishes
  during the call, in the calling process (see :func:`notify`).
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labelwise.errors import ConfigError

if TYPE_CHECKING:
    from labelwise.plan.preflight import Plan

__all__ = ["SearchBackend", "SearchResult", "TrialRecord", "TrialCallback", "BackendOptions",
           "BackendFactory", "register_backend", "registered_backends", "get_backend",
           "notify", "FINISHED"]

logger = logging.getLogger("labelwise")
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


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


TrialCallback = Callable[[TrialRecord], None]


class SearchBackend(abc.ABC):
    """Base class of search backends: one abstract method, :meth:`run`.

    A backend holds its own settings (given to its constructor). :func:`labelwise.tune`
    validates the config, runs preflight over the whole space, prepares the output
    directory, and then calls :meth:`run` exactly once, in the calling process; after it
    returns, ``tune`` refits the best params when ``search.refit`` asks for it.
    """

    #: Shown in logs and recorded in ``OUTPUT/tune.json``.
    name: ClassVar[str] = "custom"

    #: Every trial runs in the process that calls :meth:`run`. When ``False`` (the safe
    #: default), ``tune`` writes data given in memory to files the trials' processes read
    #: (``OUTPUT/data/``) and refuses Trainer callbacks, which cannot travel.
    trials_in_process: bool = False

    @abc.abstractmethod
    def run(self, plan: Plan, *, space: dict[str, Any], output_dir: Path, n_trials: int,
            timeout: float | None, callbacks: Sequence[TrialCallback] = ()) -> SearchResult:
        """Run the search, or resume the one ``output_dir`` holds, and return its result.

        Not meant to be called by library users: :func:`labelwise.tune` calls it. The module
        docstring lists what a backend must do; ``labelwise.tuning._runner.TrialRunner``
        trains one trial and ``labelwise.tuning._output`` writes what a search leaves behind,
        for backends that want to share them.

        Args:
            plan: The preflighted plan: config, data, label schema, contract, objective
                (``plan.objective`` is ``(metric, "maximize" | "minimize")``). Trials
                take their config from ``plan.config`` with their params applied; neither
                is mutated.
            space: The validated search space: dotted config key -> distribution.
            output_dir: The search's directory; it exists and holds nothing but this
                search's earlier files.
            n_trials: Finished trials the search should hold in all (earlier ones count).
            timeout: Seconds after which no trial starts, or ``None``.
            callbacks: Call :func:`notify` with these and each trial that finishes during
                this call, in this process.

        Returns:
            The :class:`SearchResult`: every trial of the search, in number order.
        """
        raise NotImplementedError


def notify(callbacks: Iterable[TrialCallback], record: TrialRecord) -> None:
    """Call each callback with ``record``. A callback that raises is logged and the search
    goes on: hours of trials are not lost to a failing progress hook."""
    for callback in callbacks:
        try:
            callback(record)
        except Exception:
            logger.exception("a search callback (%s) raised on trial %d; the search goes on",
                             getattr(callback, "__name__", type(callback).__name__),
                             record.number)


@dataclass(frozen=True)
class BackendOptions:
    """The backend settings of one ``tune`` call (its keywords over ``search.*``), handed to
    the factory of a backend chosen by name.

    A registered backend declares which of ``storage``, ``workers``, ``join``,
    ``ray_address`` and ``trainer_callbacks`` it takes; giving it another is an error.
    ``study_name`` and ``verbose`` go to every backend.
    """

    study_name: str | None = None
    storage: str | None = None
    workers: int = 1
    join: bool = False
    ray_address: str | None = None
    trainer_callbacks: tuple[Any, ...] = ()  # transformers.TrainerCallback objects
    n_trials_given: bool = True  # False: n_trials is the config's default
    verbose: bool = False  # let the backend's own banners and INFO lines through

    def given(self) -> dict[str, Any]:
        """The settings that differ from their defaults (``n_trials_given`` and
        ``verbose`` aside)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("n_trials_given", "verbose")
                and getattr(self, f.name) != f.default}


BackendFactory = Callable[[BackendOptions], SearchBackend]
OPTIONAL = ("storage", "workers", "join", "ray_address", "trainer_callbacks")
FLAGS = {"study_name": "--study", "storage": "--storage", "workers": "--workers",
         "join": "--join", "ray_address": "--ray-address",
         "trainer_callbacks": "trainer_callbacks="}


@dataclass(frozen=True)
class _Entry:
    factory: BackendFactory
    accepts: frozenset[str]


_REGISTRY: dict[str, _Entry] = {}


def register_backend(name: str, factory: BackendFactory, *,
                     accepts: Iterable[str] = (), replace: bool = False) -> None:
    """Make ``tune(backend=name)`` and ``search.backend: name`` build a backend with
    ``factory(options)``.

    Args:
        name: The backend's name (lower case letters, digits, ``-`` and ``_``).
        factory: Called with the call's :class:`BackendOptions`; returns a
            :class:`SearchBackend`. It may raise a :class:`~labelwise.errors.LabelwiseError`
            (a missing extra, a bad combination): it runs before anything is read or written.
        accepts: Which of ``storage``, ``workers``, ``join``, ``ray_address`` and
            ``trainer_callbacks`` the backend takes; the others must be left unset.
        replace: Replace a backend registered under ``name`` (else that is an error).
    """
    import re

    if not re.fullmatch(r"[a-z][a-z0-9_-]*", name):
        raise ConfigError(f"backend name {name!r} is not a plain lower-case name",
                          fix="use letters, digits, '-' and '_', e.g. 'optuna-pg'",
                          code="LW334")
    unknown = sorted(set(accepts) - set(OPTIONAL))
    if unknown:
        raise ConfigError(f"register_backend(accepts=...) names unknown option(s) "
                          f"{', '.join(unknown)}", fix=f"choose from {', '.join(OPTIONAL)}",
                          code="LW334")
    if name in _REGISTRY and not replace:
        raise ConfigError(f"a backend named {name!r} is registered already",
                          fix="choose another name, or pass replace=True", code="LW334")
    _REGISTRY[name] = _Entry(factory, frozenset(accepts))


def registered_backends() -> tuple[str, ...]:
    """The names ``tune(backend=...)`` accepts, sorted."""
    return tuple(sorted(_REGISTRY))


def get_backend(backend: str | SearchBackend, options: BackendOptions | None = None
                ) -> SearchBackend:
    """The backend ``tune`` runs: ``backend`` itself when it is a :class:`SearchBackend`,
    else the registered factory's backend for ``options``.

    An instance carries its own settings, so ``options`` must then be all defaults.

    Raises:
        ConfigError: An unknown name (the message lists the registered ones), an option the
            backend does not take, or options given alongside an instance.
        MissingDependencyError: The backend's extra is not installed (from its factory).
    """
    options = options or BackendOptions()
    if isinstance(backend, SearchBackend):
        given = options.given()
        if given:
            flags = ", ".join(FLAGS[k] for k in given)
            cls = type(backend).__name__
            raise ConfigError(f"{flags} set(s) up a backend chosen by name; the {cls} "
                              "instance given carries its own settings",
                              fix=f"pass them to {cls}(...) and leave {flags} unset, or pass "
                              f"backend={backend.name!r}", code="LW334")
        return backend
    if not isinstance(backend, str):
        raise ConfigError(f"backend={backend!r} is neither a name nor a SearchBackend",
                          fix=f"pass one of {', '.join(map(repr, registered_backends()))} or "
                          "an instance of a labelwise.tuning.SearchBackend subclass",
                          code="LW334")
    entry = _REGISTRY.get(backend)
    if entry is None:
        raise ConfigError(f"unknown backend {backend!r}; registered: "
                          f"{', '.join(registered_backends())}",
                          fix="use --backend " + " or --backend ".join(registered_backends())
                          + ", or register yours with labelwise.tuning.register_backend",
                          code="LW334")
    for key in options.given():
        if key != "study_name" and key not in entry.accepts:
            takers = [n for n, e in sorted(_REGISTRY.items()) if key in e.accepts]
            raise ConfigError(f"{FLAGS[key]} is an option of the {' and '.join(takers)} "
                              f"backend, not of {backend}", fix=f"drop {FLAGS[key]}, or use "
                              f"--backend {' or --backend '.join(takers)}", code="LW334")
    made = entry.factory(options)
    if not isinstance(made, SearchBackend):
        raise ConfigError(f"the factory of backend {backend!r} returned "
                          f"{type(made).__name__}, not a SearchBackend",
                          fix="return an instance of a SearchBackend subclass from it",
                          code="LW334")
    return made


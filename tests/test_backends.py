"""Search backends: chosen by name or passed as an instance, a registry users can add to, and
the conformance suite of ``labelwise.testing.backend_checks`` run on every registered backend.

The Ray checks run on the session's test Ray cluster (``conftest.ray_cluster``).
"""

from __future__ import annotations

import json
import logging
import sys

import pytest

from labelwise.errors import ConfigError, MissingDependencyError
from labelwise.testing.backend_checks import BackendUnderTest, parametrize_with_checks
from labelwise.tuning import (BackendOptions, OptunaBackend, SearchBackend, SearchResult,
                              TrialRecord, get_backend, register_backend, registered_backends,
                              tune)
from labelwise.tuning import _base

from tuning_data import make

CLUSTER: dict[str, str] = {}  # the test Ray cluster's address, once a Ray check needs it


def _ray_backend() -> SearchBackend:
    from labelwise.tuning import RayBackend

    return RayBackend(address=CLUSTER["address"])


BACKENDS = {"optuna": "optuna", "ray": _ray_backend}


def test_the_suite_covers_every_registered_backend():
    assert sorted(BACKENDS) == list(registered_backends()) == ["optuna", "ray"]


@parametrize_with_checks(BACKENDS)
def test_backend_conformance(subject: BackendUnderTest, check, request):
    if subject.name == "ray":
        CLUSTER["address"] = request.getfixturevalue("ray_cluster")
    check(subject)


class Recording(SearchBackend):
    """A backend that records what tune hands it and returns an empty search."""

    name = "recording"

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.calls: list[dict] = []

    def run(self, plan, *, space, output_dir, n_trials, timeout, callbacks=()):
        self.calls.append({"plan": plan, "space": space, "output_dir": output_dir,
                           "n_trials": n_trials, "timeout": timeout, "callbacks": callbacks})
        record = TrialRecord(number=0, state="FAIL", params={}, value=None, reason="none")
        for callback in callbacks:
            callback(record)
        return SearchResult(output_dir, None, None, None, {}, plan.objective, (record,),
                            "memory", "recorded")


@pytest.fixture
def registry(monkeypatch):
    """The registry as it is, restored after the test."""
    monkeypatch.setattr(_base, "_REGISTRY", dict(_base._REGISTRY))
    return _base._REGISTRY


def test_an_instance_is_run_as_given(tmp_path, tiny_model):
    backend = Recording()
    seen: list[TrialRecord] = []
    config = make(tmp_path, tiny_model, n_trials=3)
    result = tune(config, backend=backend, timeout=9.0, callbacks=[seen.append])
    (call,) = backend.calls
    assert call["n_trials"] == 3 and call["timeout"] == 9.0
    assert list(call["space"]) == ["train.learning_rate"]
    assert call["plan"].config is config  # the plan carries the config as given
    assert call["output_dir"] == tmp_path / "out"
    assert [t.reason for t in seen] == ["none"] and result.study_name == "recorded"
    marker = json.loads((tmp_path / "out" / "tune.json").read_text())
    assert marker == {"backend": "recording", "storage": "memory", "study": "recorded",
                      "join": False}


def test_a_registered_name_is_found_from_tune_and_from_the_config(tmp_path, tiny_model,
                                                                  registry):
    made: list[tuple[Recording, BackendOptions]] = []

    def factory(options: BackendOptions) -> SearchBackend:
        made.append((Recording(), options))
        return made[-1][0]

    register_backend("recording", factory)
    assert "recording" in registered_backends()
    tune(make(tmp_path, tiny_model, n_trials=2), backend="recording", study="s1")
    tune(make(tmp_path, tiny_model, n_trials=2, search={"backend": "recording"}, out="o2"))
    assert [len(b.calls) for b, _ in made] == [1, 1]
    assert [o.study_name for _, o in made] == ["s1", None]
    with pytest.raises(ConfigError, match="a backend named 'recording' is registered already"):
        register_backend("recording", factory)
    register_backend("recording", factory, replace=True)


def test_an_unknown_name_lists_the_registered_ones_and_writes_nothing(tmp_path, tiny_model):
    with pytest.raises(ConfigError) as info:
        tune(make(tmp_path, tiny_model, n_trials=1), backend="dask")
    assert str(info.value) == (
        "unknown backend 'dask'; registered: optuna, ray. Fix: use backend='optuna' or "
        "backend='ray', or register yours with labelwise.tuning.register_backend")
    assert info.value.code == "LW334"
    with pytest.raises(ConfigError, match="unknown backend 'dask'"):
        tune(make(tmp_path, tiny_model, n_trials=1, search={"backend": "dask"}))
    assert not (tmp_path / "out").exists()


def test_options_a_backend_does_not_take_are_refused(tmp_path, tiny_model, registry):
    register_backend("recording", lambda options: Recording(), accepts=("storage",))
    config = make(tmp_path, tiny_model, n_trials=1)
    with pytest.raises(ConfigError, match="workers= is an option of the optuna backend, not "
                       "of recording. Fix: drop workers=, or use backend='optuna'"):
        tune(config, backend="recording", workers=2)
    with pytest.raises(ConfigError, match="ray_address= is an option of the ray backend, not "
                       "of optuna"):
        tune(config, ray_address="auto")
    with pytest.raises(ConfigError, match="storage= set.s. up a backend chosen by name; the "
                       "OptunaBackend instance given carries its own settings. Fix: pass "
                       r"them to OptunaBackend\(...\)"):
        tune(config, backend=OptunaBackend(), storage="sqlite:///x.db")
    with pytest.raises(ConfigError, match="workers= set.s. up a backend chosen by name"):
        tune(make(tmp_path, tiny_model, n_trials=1, search={"workers": 2}),
             backend=OptunaBackend())
    assert not (tmp_path / "out").exists()


def test_registering_checks_the_name_the_options_and_what_the_factory_returns(registry):
    with pytest.raises(ConfigError, match="backend name 'My Backend' is not a plain"):
        register_backend("My Backend", lambda options: Recording())
    with pytest.raises(ConfigError, match="names unknown option.s. gpus"):
        register_backend("mine", lambda options: Recording(), accepts=("gpus",))
    register_backend("broken", lambda options: object())
    with pytest.raises(ConfigError, match="the factory of backend 'broken' returned object, "
                       "not a SearchBackend"):
        get_backend("broken")
    with pytest.raises(ConfigError, match="backend=3 is neither a name nor a SearchBackend"):
        get_backend(3)  # type: ignore[arg-type]


def test_the_ray_backend_without_ray_names_the_extra_by_name_and_as_instance(
        tmp_path, tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    for backend in ("ray", None):
        with pytest.raises(MissingDependencyError, match="the ray backend needs Ray Tune. Fix: "
                           "pip install 'labelwise.ray.'"):
            if backend:
                tune(make(tmp_path, tiny_model, n_trials=1), backend=backend)
            else:
                from labelwise.tuning._ray import RayBackend

                RayBackend()
    assert not (tmp_path / "out").exists()


def test_a_callback_that_raises_is_logged_and_the_others_still_run(caplog):
    record = TrialRecord(number=4, state="COMPLETE", params={}, value=0.5)
    seen: list[int] = []

    def broken(r: TrialRecord) -> None:
        raise ValueError("no")

    with caplog.at_level(logging.ERROR, logger="labelwise"):
        _base.notify([broken, lambda r: seen.append(r.number)], record)
    assert seen == [4]
    assert "a search callback (broken) raised on trial 4; the search goes on" in caplog.text
    assert "ValueError: no" in caplog.text


def test_the_base_class_has_one_abstract_method():
    assert SearchBackend.__abstractmethods__ == frozenset({"run"})
    assert not hasattr(SearchBackend, "on_trial_end")

"""Search progress: trial k of N, elapsed and ETA against the timeout, the best so far,
parameters to 3 significant digits, lines within 80 columns."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labelwise.training.progress import Reporter, reporting
from labelwise.tuning import _progress
from labelwise.tuning._progress import (WIDTH, SearchProgress, format_params,
                                        format_seconds)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(_progress.time, "monotonic", c)
    return c


def test_lines_count_trials_track_the_best_and_estimate_the_rest(clock, caplog):
    caplog.set_level(logging.INFO, logger="labelwise")
    p = SearchProgress(n_trials=4, metric="macro_f1", direction="maximize")
    clock.now += 60
    lines = p.finished(0, "COMPLETE", 0.71234, {"train.learning_rate": 0.00011844319751820385,
                                                "train.batch_size": 16})
    assert lines[0] == "trial 1/4 (#0) complete macro_f1=0.7123 | best 0.7123 (#0) | " \
                       "1m00s, ETA 3m00s"
    assert lines[1] == "  learning_rate=0.000118, batch_size=16"
    clock.now += 60
    lines = p.finished(1, "PRUNED", None, {"train.learning_rate": 3e-5},
                       reason="pruned at step 40: macro_f1=0.5000")
    assert lines[0].startswith("trial 2/4 (#1) pruned | best 0.7123 (#0) | 2m00s, ETA 2m00s")
    assert "[pruned at step 40" in lines[1]
    clock.now += 60
    assert "best 0.8000 (#2)" in p.finished(2, "COMPLETE", 0.8, {})[0]
    assert [r.getMessage() for r in caplog.records][:2] == [
        "trial 1/4 (#0) complete macro_f1=0.7123 | best 0.7123 (#0) | 1m00s, ETA 3m00s",
        "  learning_rate=0.000118, batch_size=16"]


def test_minimize_and_the_eta_is_capped_by_the_timeout(clock):
    p = SearchProgress(n_trials=10, metric="mse", direction="minimize", timeout=300)
    clock.now += 100
    p.finished(0, "COMPLETE", 0.5, {})
    clock.now += 100
    lines = p.finished(1, "COMPLETE", 0.4, {})
    assert lines[0] == "trial 2/10 (#1) complete mse=0.4000"  # the whole would pass 80
    assert lines[1] == "  best 0.4000 (#1) | 3m20s, ETA 1m40s (timeout)"


def test_resumed_searches_count_the_trials_already_done(clock):
    p = SearchProgress(n_trials=5, metric="f1", direction="maximize", done=3)
    clock.now += 10
    assert p.finished(7, "COMPLETE", 0.5, {})[0].startswith("trial 4/5 (#7)")


@given(metric=st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=40),
       params=st.dictionaries(st.text("abcdefghij_.", min_size=1, max_size=30),
                              st.one_of(st.floats(allow_nan=False), st.integers(),
                                        st.sampled_from(["cosine", "linear"])), max_size=8),
       reason=st.text(max_size=200))
def test_every_line_fits_80_columns(metric, params, reason):
    p = SearchProgress(n_trials=1000, metric=metric, direction="maximize", timeout=36000,
                       log=False)
    for line in p.finished(999, "COMPLETE", 0.123456, params, reason=reason,
                           best=(0.9, 123)):
        assert len(line) <= WIDTH, line


def test_formatting():
    assert format_params({"train.learning_rate": 0.00011844319751820385,
                          "train.weight_decay": 0.0, "train.batch_size": 32,
                          "train.lr_scheduler": "cosine"}) == \
        "learning_rate=0.000118, weight_decay=0, batch_size=32, lr_scheduler=cosine"
    assert [format_seconds(s) for s in (5, 65, 3725)] == ["5s", "1m05s", "1h02m"]


def test_the_trials_bar_follows_the_search(clock):
    import io

    out = io.StringIO()
    with reporting(Reporter(file=out)):
        p = SearchProgress(n_trials=3, metric="f1", direction="maximize", done=1, log=False)
        p.start()
        p.finished(1, "COMPLETE", 0.5, {})
        p.close()
    text = out.getvalue()
    assert "trials" in text and "2/3" in text and "best 0.5000 (#1)" in text


def test_ray_is_quiet_unless_verbose(monkeypatch):
    from labelwise.tuning._ray import _quiet_ray

    assert _quiet_ray(True) == {}
    monkeypatch.setattr(logging.getLogger("ray"), "level", logging.INFO)
    assert _quiet_ray(False) == {"logging_level": logging.ERROR}
    assert logging.getLogger("ray").level == logging.ERROR

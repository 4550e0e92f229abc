"""A search's trial length from its budget and the measured speed; the default space scaled
to the model; the threshold metric agreeing with the objective."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings, strategies as st

from labelwise.plan.budget import (EPOCH_LADDER, MIN_FULL_TRIALS, TrialBudget, _evals,
                                   trial_budget, user_trial_length)
from labelwise.plan.config import config_from_dict
from labelwise.plan.space import default_space, encoder_width, learning_rate_range, search_space

from tuning_data import data


# -- the rule ------------------------------------------------------------------------------

@pytest.mark.parametrize("epoch_seconds, eval_seconds, epochs, evals", [
    (229.26, 14.71, 2.0, 2),  # sst2 as measured by bench_vs_plain --defaults
    (229.02, 9.61, 2.0, 2),  # go_emotions, the same
    (80.0, 1.0, 3.0, 1),  # a fast epoch: the most epochs, one evaluation each
    (400.0, 1.0, 1.0, 4),  # too large to train twice per trial: one epoch, 4 evaluations
    (20000.0, 1.0, 0.25, 16),  # the last rung, even without room for 3
])
def test_epochs_leave_room_for_three_full_trials(epoch_seconds, eval_seconds, epochs, evals):
    budget = trial_budget(timeout=1650, epoch_seconds=epoch_seconds,
                          eval_seconds=eval_seconds, n_trials=200)
    assert (budget.epochs, budget.evals_per_epoch) == (epochs, evals)
    assert budget.params(pruner="median") == {"train.epochs": epochs,
                                              "train.evals_per_epoch": evals}
    assert budget.params() == {"train.epochs": epochs, "train.evals_per_epoch": evals,
                               "search.pruner": "successive_halving"}
    reason = budget.reasons()["train.epochs"]
    assert reason.startswith("27.5 min budget, ~") and "full trial(s)" in reason
    assert ("set search.timeout higher" in reason) == (budget.full_trials < MIN_FULL_TRIALS)


@pytest.mark.parametrize("epochs, evals_per_epoch, evaluations, rungs", [
    (3.0, 1, 3, (1,)),  # evaluation 3 ends the trial: it is complete, not stopped
    (2.0, 2, 4, (1, 3)),
    (1.0, 4, 4, (1, 3)),
    (0.25, 16, 4, (1, 3)),
    (0.25, 40, 10, (1, 3, 9)),
    (0.5, 1, 1, ()),  # one evaluation: nothing to stop a trial at
])
def test_successive_halving_stops_trials_at_evaluations_1_3_9(epochs, evals_per_epoch,
                                                              evaluations, rungs):
    budget = TrialBudget(epochs, evals_per_epoch, 100.0, 1.0, 1650.0)
    assert (budget.evaluations, budget.rungs) == (evaluations, rungs)
    reason = budget.reasons()["search.pruner"]
    assert reason.startswith(f"auto, trials of {evaluations} evaluation")
    if rungs:
        assert f"past evaluation {' and '.join(map(str, rungs))} only while" in reason


def test_few_trials_need_room_for_only_as_many():
    # 2 trials of 3 epochs fit in 1650 s at 250 s an epoch: no reason to train less
    assert trial_budget(timeout=1650, epoch_seconds=250, eval_seconds=1,
                        n_trials=2).epochs == 3.0
    assert trial_budget(timeout=1650, epoch_seconds=250, eval_seconds=1,
                        n_trials=20).epochs == 2.0


def test_evaluations_take_at_most_a_fifth_of_training():
    # an evaluation as long as a tenth of an epoch: 2 an epoch, not round(4 / 1) = 4
    budget = trial_budget(timeout=100000, epoch_seconds=1000, eval_seconds=100,
                          n_trials=5)
    assert budget.epochs == 3.0 and budget.evals_per_epoch == 1
    budget = trial_budget(timeout=4000, epoch_seconds=1000, eval_seconds=100, n_trials=6)
    assert budget.epochs == 1.0 and budget.evals_per_epoch == 2


def test_parallel_trials_count_as_room():
    alone = trial_budget(timeout=1000, epoch_seconds=150, eval_seconds=1, n_trials=50)
    two = trial_budget(timeout=1000, epoch_seconds=150, eval_seconds=1, n_trials=50,
                       parallel=2)
    assert (alone.epochs, two.epochs) == (2.0, 3.0)


@settings(max_examples=200, deadline=None)
@given(timeout=st.floats(1, 1e6), epoch=st.floats(0.01, 1e5), evaluation=st.floats(0, 1e4),
       n_trials=st.integers(1, 500), parallel=st.integers(1, 8))
def test_the_rule_picks_the_longest_rung_with_room(timeout, epoch, evaluation, n_trials,
                                                   parallel):
    budget = trial_budget(timeout=timeout, epoch_seconds=epoch, eval_seconds=evaluation,
                          n_trials=n_trials, parallel=parallel)
    need = min(MIN_FULL_TRIALS, n_trials)
    assert budget.epochs in EPOCH_LADDER and budget.evals_per_epoch >= 1
    assert budget.full_trials >= need or budget.epochs == EPOCH_LADDER[-1]
    longer = [e for e in EPOCH_LADDER if e > budget.epochs]
    for e in longer:  # every longer rung lacked room
        t = TrialBudget(e, _evals(e, epoch, evaluation), epoch, evaluation, timeout, parallel)
        assert t.full_trials < need
    if evaluation > 0 and budget.evals_per_epoch > 1:
        assert budget.evals_per_epoch * evaluation <= 0.2 * epoch + 1e-9
    more = trial_budget(timeout=timeout * 2, epoch_seconds=epoch, eval_seconds=evaluation,
                        n_trials=n_trials, parallel=parallel)
    assert more.epochs >= budget.epochs  # a larger budget never trains less
    saved = TrialBudget.from_dict(json.loads(json.dumps(budget.to_dict())))  # tune.json
    assert saved.params() == budget.params()
    assert saved.evals_per_epoch == budget.evals_per_epoch and saved.parallel == parallel


def test_bad_figures_are_refused():
    with pytest.raises(ValueError):
        trial_budget(timeout=0, epoch_seconds=1, eval_seconds=1, n_trials=1)


def test_a_length_the_user_sets_or_searches_is_kept():
    assert user_trial_length(train_fields={"batch_size"}, space={}) is None
    assert user_trial_length(train_fields={"epochs"}, space={}) == \
        "train.epochs is set in the config"
    assert user_trial_length(train_fields=set(), space={"train.max_steps": object()}) == \
        "train.max_steps is searched"


# -- the default space follows the model ---------------------------------------------------

@pytest.mark.parametrize("config, width, rates", [
    ({"hidden_size": 384}, 384, (5e-5, 5e-4)),  # MiniLM
    ({"hidden_size": 32}, 32, (5e-5, 5e-4)),
    ({"hidden_size": 768}, 768, (1e-5, 1e-4)),  # BERT-base, RoBERTa-base
    ({"dim": 768}, 768, (1e-5, 1e-4)),  # DistilBERT
    ({"hidden_size": 1024}, 1024, (5e-6, 5e-5)),  # the large models
    ({}, None, (1e-5, 1e-4)),
])
def test_default_learning_rates_scale_with_the_encoder_width(config, width, rates):
    assert encoder_width(config) == width
    assert learning_rate_range(width) == rates
    lr = default_space(config)["train.learning_rate"]
    assert (lr.low, lr.high, lr.log) == (*rates, True)
    assert default_space(config)["train.head_learning_rate"].high == 3e-3  # a new head


def test_search_space_reads_the_models_width(tmp_path, tiny_model):
    config = config_from_dict({"data": {"train": data(tmp_path / "t.csv", 8, 1)},
                               "model": {"name_or_path": str(tiny_model)}})
    space, origin = search_space(config)
    assert origin == "default space, learning rate 5e-05 to 5e-04 for a 32-wide encoder"
    assert space["train.learning_rate"].high == 5e-4
    wide = json.loads((tiny_model / "config.json").read_text())
    wide["hidden_size"] = 768
    space, origin = search_space(config, model_config=wide)
    assert origin.endswith("1e-05 to 1e-04 for a 768-wide encoder")
    given_space = {"train.batch_size": {"type": "categorical", "choices": [8]}}
    config = config_from_dict({**config.model_dump(), "search": {"space": given_space}})
    assert search_space(config)[1] == "config"


# -- the objective and the decision rule agree ---------------------------------------------

def test_thresholds_are_tuned_for_what_the_objective_counts():
    from labelwise.plan.contract import METRICS, Task
    from labelwise.plan.preflight import threshold_metric

    config = config_from_dict({"data": {"train": "x.csv"}})
    accuracy_kind = {"accuracy", "subset_accuracy", "hamming_loss"}
    for task in (Task.BINARY, Task.MULTILABEL):
        for metric, direction in METRICS[task].items():
            chosen, why = threshold_metric(config, (metric, direction))
            assert chosen == ("accuracy" if metric in accuracy_kind else "f1"), metric
            assert metric in why
    forced = config_from_dict({"data": {"train": "x.csv"}, "train": {"threshold_metric": "f1"}})
    assert threshold_metric(forced, ("accuracy", "maximize")) == (
        "f1", "config (train.threshold_metric)")


# -- a search chooses, records and reuses it -----------------------------------------------

def _config(tmp_path, tiny_model, *, train=None, search=None, out="out"):
    return config_from_dict({
        "data": {"train": data(tmp_path / "train.csv", 64, 1),
                 "valid": data(tmp_path / "valid.csv", 24, 2)},
        "model": {"name_or_path": str(tiny_model), "max_length": 32},
        "train": {"batch_size": 16, **(train or {})},
        "search": {"n_trials": 2, "timeout": 600, "pruner": "none",
                   "objective": {"metric": "accuracy", "direction": "maximize"},
                   "space": {"train.learning_rate": {"type": "float", "low": 1e-3,
                                                     "high": 1e-2, "log": True}},
                   **(search or {})},
        "output_dir": str(tmp_path / out)})


def _slow(monkeypatch, calls):
    """A measured speed of 1,000 s an epoch (the rule then trains a quarter epoch)."""
    from labelwise.training import speed

    def measure(prepared, plan, **kw):
        calls.append(plan.config.train.batch_size)
        return speed.Speed(epoch_seconds=1000.0, eval_seconds=1.0, steps=3, seconds=0.1)

    monkeypatch.setattr(speed, "measure_speed", measure)


def test_measure_speed_times_the_first_steps_of_a_trial(tmp_path, tiny_model):
    from labelwise.plan.preflight import preflight
    from labelwise.training.speed import measure_speed
    from labelwise.training.train import load_base_state, prepare

    plan = preflight(_config(tmp_path, tiny_model), search=True)
    prepared = prepare(plan)
    prepared.base_state = load_base_state(plan)
    speed = measure_speed(prepared, plan, steps=2)
    assert speed.steps == 2  # 3 steps run, the first not timed
    assert speed.epoch_seconds > 0 and speed.eval_seconds > 0
    assert speed.seconds >= speed.epoch_seconds / 4 * 2 / 2  # it did run those steps


def test_a_search_with_a_budget_chooses_records_and_reuses_its_trial_length(
        tmp_path, tiny_model, monkeypatch, caplog):
    import logging

    from labelwise.tuning import tune

    calls: list[int] = []
    _slow(monkeypatch, calls)
    space = {"train.learning_rate": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
             "train.batch_size": {"type": "categorical", "choices": [16, 8]}}
    with caplog.at_level(logging.INFO, logger="labelwise"):
        result = tune(_config(tmp_path, tiny_model, search={"space": space}))
    assert calls == [8]  # measured once, at the slowest batch size of the space
    out = tmp_path / "out"
    budget = json.loads((out / "tune.json").read_text())["budget"]
    assert budget["epochs"] == 0.25 and budget["evals_per_epoch"] == 16
    assert budget["epoch_seconds"] == 1000.0 and budget["timeout"] == 600
    assert "epochs=0.25 (10.0 min budget, ~16.7 min an epoch, room for 2 full trial(s) " \
           "(set search.timeout higher for more))" in caplog.messages
    manifest = json.loads((out / "best" / "labelwise.json").read_text())
    train = manifest["plan"]["config"]["train"]
    assert (train["epochs"], train["evals_per_epoch"]) == (0.25, 16)
    assert any(d["key"] == "epochs" and d["value"] == 0.25 for d in manifest["plan"]["decisions"])
    assert result.counts() == {"COMPLETE": 2}
    # resumed: the saved choice, not a new measurement
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labelwise"):
        tune(_config(tmp_path, tiny_model, search={"space": space, "n_trials": 3}))
    assert calls == [8]
    assert any(m.startswith("epochs=0.25 (") and m.endswith("chosen when the search started)")
               for m in caplog.messages)


def test_a_length_in_the_config_or_no_timeout_is_left_alone(tmp_path, tiny_model, monkeypatch):
    from labelwise.tuning import tune

    calls: list[int] = []
    _slow(monkeypatch, calls)
    tune(_config(tmp_path, tiny_model, train={"epochs": 1}))
    tune(_config(tmp_path, tiny_model, search={"timeout": None}, out="out2"))
    assert calls == []
    for out in ("out", "out2"):
        assert "budget" not in json.loads((tmp_path / out / "tune.json").read_text())
    manifest = json.loads((tmp_path / "out2" / "best" / "labelwise.json").read_text())
    assert manifest["plan"]["config"]["train"]["epochs"] == 3.0  # the config's default


def test_python_keywords_do_not_count_as_a_length_set(tmp_path, tiny_model, monkeypatch):
    from labelwise.tuning import tune

    calls: list[int] = []
    _slow(monkeypatch, calls)
    config = _config(tmp_path, tiny_model, out="unused")
    tune(config, output_dir=tmp_path / "out", n_trials=1)  # the config copied with a keyword
    assert calls == [16]
    tune(config, output_dir=tmp_path / "out2", n_trials=1, epochs=1)  # a length given
    assert calls == [16]


def test_a_joining_process_trains_as_long_as_the_study_chose(tmp_path, tiny_model, monkeypatch,
                                                             caplog):
    import logging

    from labelwise.tuning import tune

    calls: list[int] = []
    _slow(monkeypatch, calls)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    tune(_config(tmp_path, tiny_model), storage=storage, study="shared")
    assert calls == [16]
    joiner = _config(tmp_path, tiny_model, search={"timeout": None}, out="other")
    with caplog.at_level(logging.INFO, logger="labelwise"):
        result = tune(joiner, storage=storage, study="shared", join=True, n_trials=3)
    assert calls == [16]  # the joiner measures nothing
    assert any(m.startswith("epochs=0.25 (the study's: chosen by the process that started "
                            "study 'shared')") for m in caplog.messages)
    assert result.counts() == {"COMPLETE": 3}


def test_a_budget_alone_ends_the_search_by_its_timeout(tmp_path, tiny_model, monkeypatch,
                                                       caplog):
    import logging

    from labelwise.tuning import tune

    _slow(monkeypatch, [])
    config = _config(tmp_path, tiny_model, search={"timeout": 2})
    data = config.model_dump(exclude_unset=True)
    del data["search"]["n_trials"]
    with caplog.at_level(logging.INFO, logger="labelwise"):
        result = tune(config_from_dict(data))
    assert "n_trials=1000 (not given: search.timeout ends the search)" in caplog.messages
    assert 1 <= len(result.trials) < 1000
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labelwise"):
        tune(config_from_dict(data), n_trials=len(result.trials) + 1)  # given: kept
    assert not any(m.startswith("n_trials=") for m in caplog.messages)


def test_a_budget_chooses_successive_halving_unless_a_pruner_is_named(tmp_path, tiny_model,
                                                                      monkeypatch, caplog):
    import logging

    import optuna

    from labelwise.plan.preflight import preflight
    from labelwise.tuning import tune
    from labelwise.tuning._optuna import _pruner

    _slow(monkeypatch, [])
    with caplog.at_level(logging.INFO, logger="labelwise"):
        tune(_config(tmp_path, tiny_model, search={"pruner": "auto"}))
    said = [m for m in caplog.messages if m.startswith("pruner=")]
    assert said == ["pruner=successive_halving (auto, trials of 4 evaluations: a trial goes on "
                    "past evaluation 1 and 3 only while among the best that reached it, so "
                    "more of the budget goes to promising settings)"]
    manifest = json.loads((tmp_path / "out" / "best" / "labelwise.json").read_text())
    assert manifest["plan"]["config"]["search"]["pruner"] == "successive_halving"
    resolved = preflight(config_from_dict(manifest["plan"]["config"]), search=True)
    pruner = _pruner(resolved)
    assert isinstance(pruner, optuna.pruners.SuccessiveHalvingPruner)
    assert (pruner._min_resource, pruner._reduction_factor) == (1, 3)
    # auto with a trial length the user set: the median pruner, as before
    own = preflight(_config(tmp_path, tiny_model, train={"epochs": 1},
                            search={"pruner": "auto"}), search=True)
    assert isinstance(_pruner(own), optuna.pruners.MedianPruner)
    # a pruner named in the config is kept under the budget rule
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="labelwise"):
        tune(_config(tmp_path, tiny_model, search={"pruner": "median"}, out="named"))
    assert not [m for m in caplog.messages if m.startswith("pruner=")]
    manifest = json.loads((tmp_path / "named" / "best" / "labelwise.json").read_text())
    assert manifest["plan"]["config"]["search"]["pruner"] == "median"


@pytest.mark.parametrize("joiner_pruner, expected", [("auto", "successive_halving"),
                                                     ("median", "median")])
def test_a_joining_process_prunes_as_the_study_chose_unless_it_names_a_pruner(
        tmp_path, tiny_model, monkeypatch, joiner_pruner, expected):
    from labelwise.tuning import tune

    _slow(monkeypatch, [])
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    tune(_config(tmp_path, tiny_model, search={"pruner": "auto"}), storage=storage,
         study="shared")
    joiner = _config(tmp_path, tiny_model, search={"timeout": None, "pruner": joiner_pruner},
                     out="other")
    seen = []
    from labelwise.tuning import _optuna

    real = _optuna._pruner
    monkeypatch.setattr(_optuna, "_pruner", lambda plan: seen.append(
        plan.config.search.pruner) or real(plan))
    tune(joiner, storage=storage, study="shared", join=True, n_trials=3)
    assert seen and set(seen) == {expected}

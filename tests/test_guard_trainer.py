"""guard_trainer, LabelwiseCallback and hyperparameter_search against the real Trainer.

Every case builds a real ``transformers.Trainer`` on a tiny random BERT and a
``datasets.Dataset``; the refused ones also show what the plain Trainer does with them.
"""

from __future__ import annotations

import re

import datasets
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,
                          DataCollatorWithPadding, Trainer, TrainingArguments)

import labelwise
from labelwise.errors import ContractError, SearchSpaceError
from labelwise.training.guard_trainer import GuardError, GuardWarning

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def tok(tiny_model):
    return AutoTokenizer.from_pretrained(tiny_model)


def make_ds(tok, labels, feature=None, texts=None):
    texts = texts or [("good film " if i % 2 else "bad plot ") + str(i)
                      for i in range(len(labels))]
    ds = datasets.Dataset.from_dict({"text": texts, "label": labels})
    if feature is not None:
        ds = ds.cast_column("label", feature)
    return ds.map(lambda b: tok(b["text"], truncation=True), batched=True)


def make_trainer(tiny_model, tok, tmp_path, train, *, num_labels=2, eval_dataset=None,
                 trainer_cls=Trainer, model_kwargs=None, collator=None, **args):
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_model, num_labels=num_labels, **(model_kwargs or {}))
    args.setdefault("per_device_train_batch_size", 4)
    args = TrainingArguments(output_dir=str(tmp_path / "out"), use_cpu=True, max_steps=1,
                             report_to=[], save_strategy="no", **args)
    return trainer_cls(model=model, args=args, train_dataset=train, eval_dataset=eval_dataset,
                       data_collator=collator or DataCollatorWithPadding(tok))


ONE_HOT_3 = [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 1.0, 0]] * 3  # rows 2, 6, 10 hot in 2


def test_one_hot_width_3_with_a_binary_head(tiny_model, tok, tmp_path):
    ds = make_ds(tok, ONE_HOT_3)
    plain = make_trainer(tiny_model, tok, tmp_path, ds)
    with pytest.raises(ValueError, match=re.escape("Target size (torch.Size([4, 3])) must be "
                                                   "the same as input size")):
        plain.train()
    trainer = make_trainer(tiny_model, tok, tmp_path, ds)
    with pytest.raises(GuardError) as info:
        labelwise.guard_trainer(trainer)
    err = info.value
    assert err.code == "LW230"
    assert str(err) == (
        "one-hot targets have width 3 but the model has num_labels=2 (BCE, Transformers' "
        "default for float targets): BCE needs one target column per logit (split 'train', "
        "column 'label', rows 2, 6, 10, hot in column 2). Fix: set num_labels=3 "
        "(from_pretrained(..., num_labels=3)), or drop the stray class (the 3 row(s) hot "
        "beyond column 1)")
    assert trainer.state.global_step == 0


def test_stray_third_class_id(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1, 2, 1] * 3))
    with pytest.raises(GuardError, match=re.escape(
            "label id(s) 2 cannot be held by a head of num_labels=2 (ids must be in [0, 1]); "
            "the data has 3 classes (split 'train', column 'label', rows 2, 6, 10, value 2). "
            "Fix: set num_labels=3")) as info:
        labelwise.guard_trainer(trainer)
    assert info.value.code == "LW231"
    assert "drop the stray class" in str(info.value)


def test_stray_class_in_eval_split_only(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1] * 4),
                           eval_dataset=make_ds(tok, [0, 1, 1, 5]))
    with pytest.raises(GuardError, match=r"label id\(s\) 5 .*\(split 'eval', column 'label', "
                       r"row 3, value 5"):
        labelwise.guard_trainer(trainer)


def test_num_labels_1_with_integer_class_ids(tiny_model, tok, tmp_path):
    ds = make_ds(tok, [0, 1, 1, 0] * 3)
    plain = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=1)
    plain.train()  # no error: Transformers silently trains regression
    assert plain.model.config.problem_type == "regression"
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=1)
    with pytest.raises(GuardError, match=re.escape(
            "num_labels=1 with integer class ids: Transformers trains regression with MSE on "
            "them, silently, instead of classification (split 'train', column 'label'). Fix: "
            "set num_labels=2")) as info:
        labelwise.guard_trainer(trainer)
    assert info.value.code == "LW232"


def test_explicit_regression_on_integer_targets_is_refused(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [1, 2, 5, 3] * 3),
                           num_labels=1, model_kwargs={"problem_type": "regression"})
    with pytest.raises(GuardError, match="targets are integer class ids, but the loss is MSE"):
        labelwise.guard_trainer(trainer)


def test_float_class_ids_with_two_labels(tiny_model, tok, tmp_path):
    ds = make_ds(tok, [0.0, 1.0, 1.0, 0.0] * 3)
    plain = make_trainer(tiny_model, tok, tmp_path, ds)
    with pytest.raises(ValueError, match="Target size"):
        plain.train()
    assert plain.model.config.problem_type == "multi_label_classification"  # for good
    trainer = make_trainer(tiny_model, tok, tmp_path, ds)
    with pytest.raises(GuardError, match=re.escape(
            "targets are float 0/1 class ids with num_labels=2: Transformers reads float "
            "targets as multi-label, stores problem_type='multi_label_classification' in the "
            "model config for good")) as info:
        labelwise.guard_trainer(trainer)
    assert info.value.code == "LW233"
    assert "cast_column('label', Value('int64'))" in str(info.value)
    assert trainer.model.config.problem_type is None  # nothing was changed


MULTI_HOT = [[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]] * 3


def test_integer_multi_hot_with_a_multilabel_head(tiny_model, tok, tmp_path):
    ds = make_ds(tok, MULTI_HOT)
    plain = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3)
    with pytest.raises(ValueError, match="Expected input batch_size"):
        plain.train()  # int targets read as single-label: cross-entropy fails
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3)
    with pytest.raises(GuardError, match=re.escape(
            "integer multi-hot / one-hot targets of width 3 with a 3-logit head: Transformers "
            "reads integer targets as single-label class ids")) as info:
        labelwise.guard_trainer(trainer)
    assert info.value.code == "LW234"
    explicit = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3,
                            model_kwargs={"problem_type": "multi_label_classification"})
    with pytest.raises(GuardError, match="integer multi-hot targets with a multi-label head "
                       r"\(BCE, problem_type='multi_label_classification'\): BCE needs float"):
        labelwise.guard_trainer(explicit)


FLOAT_MULTI_HOT = [[float(v) for v in row] for row in MULTI_HOT]


def test_label_smoothing_on_multilabel(tiny_model, tok, tmp_path):
    ds = make_ds(tok, FLOAT_MULTI_HOT)
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3,
                           label_smoothing_factor=0.1)
    with pytest.raises(GuardError, match=re.escape(
            "label_smoothing_factor=0.1 on a multi-label problem: Transformers switches it off "
            "with only a warning")) as info:
        labelwise.guard_trainer(trainer)
    assert info.value.code == "LW235"
    assert "bce_label_smoothing=True" in str(info.value)


def test_bce_label_smoothing_opt_in_trains_with_smoothed_targets(tiny_model, tok, tmp_path):
    ds = make_ds(tok, FLOAT_MULTI_HOT)
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3,
                           label_smoothing_factor=0.2)
    labelwise.guard_trainer(trainer, bce_label_smoothing=True)
    assert trainer.label_smoother is None
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    loss = trainer.compute_loss_func({"logits": logits}, labels)
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels * 0.8 + 0.1)
    assert torch.allclose(loss, want)
    trainer.train()
    assert trainer.state.global_step == 1


def test_default_id2label_warns_with_the_names(tiny_model, tok, tmp_path):
    ds = make_ds(tok, [0, 1] * 6, feature=datasets.ClassLabel(names=["neg", "pos"]))
    trainer = make_trainer(tiny_model, tok, tmp_path, ds)
    with pytest.warns(GuardWarning, match=re.escape(
            "LW236 id2label is left at LABEL_0, LABEL_1 while the dataset names the classes "
            "['neg', 'pos']")) as seen:
        labelwise.guard_trainer(trainer)
    assert any("id2label={0: 'neg', 1: 'pos'}" in str(w.message) for w in seen)
    named = make_trainer(tiny_model, tok, tmp_path, ds, model_kwargs={
        "id2label": {0: "neg", 1: "pos"}, "label2id": {"neg": 0, "pos": 1}})
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labelwise.guard_trainer(named)
    assert not [w for w in caught if "LW236" in str(w.message)]


def test_class_missing_from_eval_split_warns(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1, 2] * 4),
                           num_labels=3, eval_dataset=make_ds(tok, [0, 1, 0, 1]))
    with pytest.warns(GuardWarning, match=r"LW103 1 train class\(es\) never occur in "
                      r"validation: 2 \(split 'eval', column 'label'"):
        labelwise.guard_trainer(trainer)


def test_empty_label_sets_warn(tiny_model, tok, tmp_path):
    rows = [[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]] * 3
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, rows), num_labels=3)
    with pytest.warns(GuardWarning, match=r"LW108 3 row\(s\) \(25.0%\) have an empty label set"
                      r".*rows 1, 5, 9"):
        labelwise.guard_trainer(trainer)
    trainer.train()


def test_nan_targets_are_refused_with_rows(tiny_model, tok, tmp_path):
    values = [0.5, 1.5, float("nan"), 2.5] * 3
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, values), num_labels=1)
    with pytest.raises(GuardError, match=re.escape(
            "3 target(s) are NaN or infinite (split 'train', column 'label', rows 2, 6, 10)")):
        labelwise.guard_trainer(trainer)


def test_string_labels_get_the_encoding_fix(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, ["neg", "pos"] * 4))
    with pytest.raises(GuardError, match=re.escape(
            "targets are strings ('neg', 'pos'), which no loss takes (split 'train', column "
            "'label'). Fix: encode them as class ids: dataset.class_encode_column('label')")):
        labelwise.guard_trainer(trainer)


def test_several_problems_are_reported_at_once(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, ONE_HOT_3),
                           eval_dataset=make_ds(tok, [[1.0, 0.0, 0.0, 0.0]] * 4),
                           label_smoothing_factor=0.1)
    with pytest.raises(GuardError) as info:
        labelwise.guard_trainer(trainer)
    assert [f.code for f in info.value.findings] == ["LW230", "LW230", "LW235"]
    assert str(info.value).startswith("3 problems: (1) LW230 ")


class BCETrainer(Trainer):
    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.BCEWithLogitsLoss()(outputs.logits, labels)
        return (loss, outputs) if return_outputs else loss


def test_custom_compute_loss_is_read(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, ONE_HOT_3),
                           trainer_cls=BCETrainer,
                           model_kwargs={"problem_type": "single_label_classification"})
    with pytest.raises(GuardError, match=re.escape(
            "one-hot targets have width 3 but the model has num_labels=2 (BCE, from "
            "BCETrainer.compute_loss)")):
        labelwise.guard_trainer(trainer)
    ids = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1] * 4),
                       trainer_cls=BCETrainer)
    with pytest.raises(GuardError, match=re.escape("targets are one int per row, but BCE (BCE, "
                                                   "from BCETrainer.compute_loss) needs float "
                                                   "rows of width 2")):
        labelwise.guard_trainer(ids)


def test_a_collator_that_corrupts_targets_is_stopped_with_dataset_rows(tiny_model, tok,
                                                                       tmp_path):
    base = DataCollatorWithPadding(tok)
    bad_token = tok.convert_tokens_to_ids("bad")

    def corrupting(features):
        batch = base(features)
        hit = (batch["input_ids"] == bad_token).any(dim=1)
        batch["labels"] = torch.where(hit, torch.tensor(7), batch["labels"])
        return batch

    ds = make_ds(tok, [0, 1] * 4)  # "bad plot" in rows 0, 2, 4, 6
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, collator=corrupting,
                           per_device_train_batch_size=8)
    labelwise.guard_trainer(trainer)
    with pytest.raises(ContractError, match=re.escape(
            "batch 0: targets hold values outside [0, 1] (min 1, max 7) (rows ")) as info:
        trainer.train()
    rows = [int(r) for r in re.search(r"\(rows ([\d, ]+)\)", str(info.value)).group(1)
            .split(", ")]
    assert sorted(rows) == [0, 2, 4, 6]
    assert trainer.state.global_step == 0


def test_eval_batches_are_checked_and_the_users_dataset_is_left_alone(tiny_model, tok,
                                                                     tmp_path):
    base = DataCollatorWithPadding(tok)
    held = {"evaluating": False}

    def floats_when_evaluating(features):
        batch = base(features)
        if held.get("evaluating"):
            batch["labels"] = batch["labels"].float()
        return batch

    ds = make_ds(tok, [0, 1] * 4).remove_columns(["text"])
    trainer = make_trainer(tiny_model, tok, tmp_path, ds,
                           eval_dataset=make_ds(tok, [1, 0]).remove_columns(["text"]),
                           collator=floats_when_evaluating, remove_unused_columns=False)
    labelwise.guard_trainer(trainer)
    trainer.train()
    assert "__getitems__" not in vars(ds)  # no row ids put into the user's own object
    held["evaluating"] = True
    with pytest.raises(ContractError, match="batch 0: targets are float32"):
        trainer.evaluate()


def test_correct_setup_with_eval_trains_and_evaluates(tiny_model, tok, tmp_path):
    ds = make_ds(tok, [0, 1, 2] * 4, feature=datasets.ClassLabel(names=["a", "b", "c"]))
    trainer = make_trainer(tiny_model, tok, tmp_path, ds, num_labels=3, eval_dataset=ds,
                           model_kwargs={"id2label": {0: "a", 1: "b", 2: "c"},
                                         "label2id": {"a": 0, "b": 1, "c": 2}})
    assert labelwise.guard_trainer(trainer) is trainer
    assert trainer.labelwise_check.schema.task.value == "multiclass"
    trainer.train()
    assert "eval_loss" in trainer.evaluate()


def test_labelwise_trainer_accepts_a_datasets_dataset(tiny_model, tok, tmp_path):
    from labelwise.plan.contract import derive_contract
    from labelwise.training.trainer import LabelwiseTrainer

    ds = make_ds(tok, [0, 1] * 6)
    contract = derive_contract(labelwise.infer_schema([0, 1]))
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    args = TrainingArguments(output_dir=str(tmp_path / "lw"), use_cpu=True, max_steps=1,
                             report_to=[], per_device_train_batch_size=4, save_strategy="no")
    trainer = LabelwiseTrainer(model=model, args=args, train_dataset=ds, eval_dataset=ds,
                               data_collator=DataCollatorWithPadding(tok), contract=contract)
    trainer.train()
    assert trainer.state.global_step == 1
    assert trainer.batches_seen == 1
    assert "eval_loss" in trainer.evaluate()


# -- LabelwiseCallback ------------------------------------------------------------------


def test_callback_raises_before_step_one(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, ONE_HOT_3))
    trainer.add_callback(labelwise.LabelwiseCallback())
    with pytest.raises(GuardError, match=re.escape("one-hot targets have width 3 but the model "
                                                   "has num_labels=2")):
        trainer.train()
    assert trainer.state.global_step == 0


def test_callback_passes_a_correct_setup_and_checks_batches(tiny_model, tok, tmp_path):
    base = DataCollatorWithPadding(tok)

    def to_float(features):
        batch = base(features)
        batch["labels"] = batch["labels"].float()
        return batch

    good = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1] * 4))
    good.add_callback(labelwise.LabelwiseCallback())
    good.train()
    assert good.state.global_step == 1
    bad = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1] * 4), collator=to_float)
    bad.add_callback(labelwise.LabelwiseCallback())
    with pytest.raises(ContractError, match="batch 0: targets are float32 but the contract"):
        bad.train()


def test_callback_reads_an_eval_dataset_when_given(tiny_model, tok, tmp_path):
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, [0, 1] * 4))
    trainer.add_callback(labelwise.LabelwiseCallback(eval_dataset=make_ds(tok, [0, 3])))
    with pytest.raises(GuardError, match="split 'eval', column 'label', row 1, value 3"):
        trainer.train()


# -- hyperparameter_search (optuna) -------------------------------------------------------


def search_trainer(tiny_model, tok, tmp_path, labels, model_init):
    ds = make_ds(tok, labels)
    args = TrainingArguments(output_dir=str(tmp_path / "hp"), use_cpu=True, max_steps=1,
                             report_to=[], per_device_train_batch_size=4, save_strategy="no",
                             eval_strategy="no")
    return Trainer(model_init=model_init, args=args, train_dataset=ds, eval_dataset=ds,
                   data_collator=DataCollatorWithPadding(tok))


def _lr(trial):
    return trial.suggest_float("learning_rate", 1e-5, 1e-4, log=True)


@pytest.mark.parametrize("space, message", [
    (lambda t: {"learning_rate": _lr(t), "num_labels": t.suggest_int("num_labels", 2, 3)},
     "trial 0: the search space sets 'num_labels' (= "),
    (lambda t: {"learning_rate": _lr(t),
                "problem_type": t.suggest_categorical("problem_type", ["regression"])},
     "trial 0: the search space sets 'problem_type' (= 'regression'), which changes the label "
     "encoding"),
    (lambda t: {"learnig_rate": t.suggest_float("learnig_rate", 1e-5, 1e-4)},
     "trial 0: the search space names 'learnig_rate', which is neither a TrainingArguments "
     "field nor a model config field (Transformers only warns and trains without it) "
     "(hp_space key 'learnig_rate'). Fix: did you mean 'learning_rate'?"),
])
def test_search_refuses_a_bad_sample(tiny_model, tok, tmp_path, space, message):
    def model_init():
        return AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)

    trainer = labelwise.guard_trainer(search_trainer(tiny_model, tok, tmp_path, [0, 1] * 4,
                                                     model_init))
    with pytest.raises(SearchSpaceError, match=re.escape(message)) as info:
        trainer.hyperparameter_search(backend="optuna", hp_space=space, n_trials=2,
                                      direction="minimize")
    assert info.value.code == "LW239"
    assert trainer.state.global_step == 0


def test_search_accepts_model_config_keys_and_trains_every_trial(tiny_model, tok, tmp_path):
    seen = []

    def model_init(trial):
        dropout = trial.params.get("hidden_dropout_prob", 0.1) if trial is not None else 0.1
        seen.append(dropout)
        return AutoModelForSequenceClassification.from_pretrained(
            tiny_model, num_labels=2, hidden_dropout_prob=dropout)

    def space(trial):
        return {"learning_rate": _lr(trial),
                "hidden_dropout_prob": trial.suggest_float("hidden_dropout_prob", 0.0, 0.3)}

    trainer = labelwise.guard_trainer(search_trainer(tiny_model, tok, tmp_path, [0, 1] * 4,
                                                     model_init))
    best = trainer.hyperparameter_search(backend="optuna", hp_space=space, n_trials=2,
                                         direction="minimize")
    assert set(best.hyperparameters) == {"learning_rate", "hidden_dropout_prob"}
    assert len(seen) == 3  # Trainer's own init, then one per trial


def test_search_refuses_a_trial_model_that_changes_the_head(tiny_model, tok, tmp_path):
    def model_init(trial):
        width = 3 if trial is not None and trial.number == 1 else 2
        return AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=width)

    def space(trial):
        return {"learning_rate": _lr(trial)}

    trainer = labelwise.guard_trainer(search_trainer(tiny_model, tok, tmp_path,
                                                     [[1.0, 0.0], [0.0, 1.0]] * 4, model_init))
    with pytest.raises(GuardError, match=re.escape(
            "one-hot targets have width 2 but the model has num_labels=3 (BCE, Transformers' "
            "default for float targets): BCE needs one target column per logit (split 'train', column "
            "'label', trial 1)")) as info:
        trainer.hyperparameter_search(backend="optuna", hp_space=space, n_trials=3,
                                      direction="minimize")
    assert "trial 1" in str(info.value)


def test_search_refuses_label_smoothing_sampled_for_multilabel(tiny_model, tok, tmp_path):
    def model_init():
        return AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3)

    def space(trial):
        return {"label_smoothing_factor": trial.suggest_categorical("label_smoothing_factor",
                                                                    [0.1])}

    trainer = labelwise.guard_trainer(search_trainer(tiny_model, tok, tmp_path,
                                                     FLOAT_MULTI_HOT, model_init))
    with pytest.raises(GuardError, match=r"label_smoothing_factor=0.1 on a multi-label problem"
                       r".*trial 0"):
        trainer.hyperparameter_search(backend="optuna", hp_space=space, n_trials=1,
                                      direction="minimize")


# -- the guard never refuses a correct setup ---------------------------------------------


@st.composite
def valid_setups(draw):
    kind = draw(st.sampled_from(["binary", "multiclass", "multilabel", "one_logit",
                                 "regression", "multi_regression"]))
    n = draw(st.integers(4, 9))
    explicit = draw(st.booleans())
    if kind in ("binary", "multiclass"):
        k = 2 if kind == "binary" else draw(st.integers(3, 5))
        labels = [i % k for i in range(n)]
        labels = draw(st.permutations(labels))
        problem = "single_label_classification"
    elif kind == "multilabel":
        k = draw(st.integers(2, 4))
        labels = draw(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=k, max_size=k),
                               min_size=n, max_size=n))
        labels[0] = [1.0] * k
        labels[1] = [0.0] * (k - 1) + [1.0]
        problem = "multi_label_classification"
    elif kind == "one_logit":
        k = 1
        labels = [[float(i % 2)] for i in range(n)]
        problem, explicit = "multi_label_classification", True
    elif kind == "regression":
        k = 1
        labels = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n, max_size=n))
        labels[0], labels[1] = 0.25, 1.75  # not constant, not 0/1
        problem = "regression"
    else:
        k = draw(st.integers(2, 3))
        labels = draw(st.lists(st.lists(st.floats(-5, 5, allow_nan=False), min_size=k,
                                        max_size=k), min_size=n, max_size=n))
        labels[0], labels[1] = [0.25] * k, [1.75] * k
        problem, explicit = "regression", True
    return labels, k, problem if explicit else None


@given(valid_setups())
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_guard_never_refuses_a_correct_setup(tiny_model, tok, tmp_path, setup):
    labels, k, problem = setup
    trainer = make_trainer(tiny_model, tok, tmp_path, make_ds(tok, labels), num_labels=k,
                           model_kwargs={"problem_type": problem} if problem else None)
    labelwise.guard_trainer(trainer)
    trainer.train()
    assert trainer.state.global_step == 1
    assert np.isfinite(trainer.state.log_history[-1]["train_loss"])

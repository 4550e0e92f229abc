"""labelwise.guard_trainer: one line that guards an existing Trainer and its search.

The script a user already has: a binary model, a datasets.Dataset whose one-hot labels
carry a stray third class, a Trainer and hyperparameter_search. Runs offline in seconds
(a tiny random BERT stands in for a real checkpoint).

    python examples/guard_trainer.py
"""

import os
import tempfile
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import datasets  # noqa: E402
import optuna  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,  # noqa: E402
                          DataCollatorWithPadding, Trainer, TrainingArguments)

import labelwise  # noqa: E402
from labelwise.testing import make_tiny_bert  # noqa: E402

datasets.disable_progress_bars()
optuna.logging.set_verbosity(optuna.logging.ERROR)
work = tempfile.mkdtemp()
checkpoint = make_tiny_bert(os.path.join(work, "bert"), vocab_words="good bad film".split())
tokenizer = AutoTokenizer.from_pretrained(checkpoint)

# One-hot labels of width 3: a "neutral" class slipped into binary data (rows 2, 6, 10, 14).
labels = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]] * 4
texts = [f"{'good' if i % 2 else 'bad'} film {i}" for i in range(len(labels))]
data = datasets.Dataset.from_dict({"text": texts, "labels": labels}).map(
    lambda batch: tokenizer(batch["text"], truncation=True), batched=True)


def model_init(trial=None):
    return AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)


def hp_space(trial):
    return {"learning_rate": trial.suggest_float("learning_rate", 1e-5, 1e-4, log=True)}


def make_trainer():
    args = TrainingArguments(output_dir=os.path.join(work, "out"), use_cpu=True, max_steps=1,
                             per_device_train_batch_size=16, report_to=[], save_strategy="no")
    return Trainer(model_init=model_init, args=args, train_dataset=data, eval_dataset=data,
                   data_collator=DataCollatorWithPadding(tokenizer))


# 1. The plain script: the search starts, loads the model, and fails inside the loss.
try:
    make_trainer().hyperparameter_search(backend="optuna", hp_space=hp_space, n_trials=2,
                                         direction="minimize")
except ValueError as err:
    print(f"plain Transformers: {type(err).__name__}: {err}")

# 2. The same script with one more line: refused before any trial, with the rows and the fix.
try:
    trainer = labelwise.guard_trainer(make_trainer())
except labelwise.LabelwiseError as err:
    print(f"labelwise: {type(err).__name__} {err.code}: {err}")

# 3. A typo in the search space: Transformers only logs a warning and trains without it.
right = datasets.Dataset.from_dict({"text": texts, "labels": [i % 2 for i in range(16)]}).map(
    lambda batch: tokenizer(batch["text"], truncation=True), batched=True)
trainer = make_trainer()
trainer.train_dataset = trainer.eval_dataset = right
labelwise.guard_trainer(trainer)
try:
    trainer.hyperparameter_search(
        backend="optuna", n_trials=2, direction="minimize",
        hp_space=lambda t: {"learnig_rate": t.suggest_float("learnig_rate", 1e-5, 1e-4)})
except labelwise.LabelwiseError as err:
    print(f"labelwise: {type(err).__name__} {err.code}: {err}")

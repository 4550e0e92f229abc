"""labelwise.LabelwiseCallback: the guard's checks for code that never holds the Trainer
(a framework builds it); it raises at on_train_begin, before step 1.

    python examples/labelwise_callback.py
"""

import os
import tempfile
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
warnings.filterwarnings("ignore")

import datasets  # noqa: E402
from transformers import (AutoModelForSequenceClassification, AutoTokenizer,  # noqa: E402
                          DataCollatorWithPadding, Trainer, TrainingArguments)

import labelwise  # noqa: E402
from labelwise.testing import make_tiny_bert  # noqa: E402

datasets.disable_progress_bars()
work = tempfile.mkdtemp()
checkpoint = make_tiny_bert(os.path.join(work, "bert"), vocab_words="good bad film".split())
tokenizer = AutoTokenizer.from_pretrained(checkpoint)

# Binary labels stored as floats (0.0 / 1.0), as pandas often leaves them.
labels = [0.0, 1.0, 1.0, 0.0] * 4
texts = [f"{'good' if y else 'bad'} film {i}" for i, y in enumerate(labels)]
data = datasets.Dataset.from_dict({"text": texts, "label": labels}).map(
    lambda batch: tokenizer(batch["text"], truncation=True), batched=True)


def build_trainer(callbacks=()):
    """Stands for a framework's factory: the user only gets to pass callbacks."""
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, num_labels=2)
    args = TrainingArguments(output_dir=os.path.join(work, "out"), use_cpu=True, max_steps=1,
                             per_device_train_batch_size=8, report_to=[], save_strategy="no")
    return Trainer(model=model, args=args, train_dataset=data,
                   data_collator=DataCollatorWithPadding(tokenizer), callbacks=list(callbacks))


plain = build_trainer()
try:
    plain.train()
except ValueError as err:
    print(f"plain Transformers: {type(err).__name__}: {err}")
    print(f"  (and the model config now says problem_type={plain.model.config.problem_type!r})")

guarded = build_trainer(callbacks=[labelwise.LabelwiseCallback()])
try:
    guarded.train()
except labelwise.LabelwiseError as err:
    print(f"labelwise: {type(err).__name__} {err.code}: {err}")
    print(f"  (raised at step {guarded.state.global_step})")

"""After a run: the findings of :func:`labelwise.scoring.diagnosis.diagnose` for a trained
model, with the one forward pass they need (a sample of training rows, for overfitting).

The sample holds as many training rows as validation has (at most :data:`SAMPLE_CAP`),
drawn with the run's seed; the final model predicts them in eval mode, as it predicts
validation, so the two are compared under the same conditions. That costs one more pass
of the size of an evaluation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.plan.preflight import Plan
from labelwise.scoring.diagnosis import Diagnosis, Settings, diagnose
from labelwise.scoring.thresholds import Thresholds

__all__ = ["diagnose_run", "SAMPLE_CAP"]

SAMPLE_CAP = 2000


def diagnose_run(prepared: Any, model: Any, *, plan: Plan,
                 valid: tuple[np.ndarray, np.ndarray], thresholds: Thresholds | None,
                 log_history: list[dict[str, Any]], batch_size: int | None = None
                 ) -> Diagnosis:
    """The findings after training for ``model`` trained on ``prepared`` with ``plan``.

    ``valid``: the validation logits and targets of the final model (in any row order,
    aligned with each other), as :func:`~labelwise.training.train.final_metrics` used them.
    """
    from labelwise.training.forward import predict_logits

    cfg = plan.config
    train_targets = prepared.targets("train", plan)
    n_train, n_valid = len(train_targets), len(valid[0])
    size = min(n_train, max(n_valid, 1), SAMPLE_CAP)
    rows = np.sort(np.random.default_rng(cfg.train.seed).choice(n_train, size=size,
                                                                 replace=False))
    encoded = prepared.encoded_at("train", cfg.model.max_length).take(rows)
    sample = predict_logits(model, encoded, pad_id=prepared.pad_id, batch_size=batch_size)
    t = cfg.train
    settings = Settings(epochs=None if t.max_steps else t.epochs,
                        learning_rate=t.learning_rate, threshold_metric=plan.threshold_metric)
    return diagnose(contract=plan.contract, class_names=plan.schema.label_names,
                    valid_logits=valid[0], valid_targets=valid[1], train_targets=train_targets,
                    thresholds=thresholds, log_history=log_history,
                    rows_per_step=t.batch_size * t.gradient_accumulation_steps,
                    objective=plan.objective, train_sample=(sample, train_targets[rows]),
                    settings=settings)

"""After training: what the model cannot do, as findings (codes LW601-LW608).

:func:`diagnose` reads what every finished run has: the validation logits and targets, the
decision thresholds, the training targets, the training log and, when given, the logits of
a sample of training rows. It returns a :class:`Diagnosis`: the findings and the numbers
they were judged on. Pure numpy (and scikit-learn through the metrics): it is tested
without any model, and ``train`` and every trial of ``tune`` call it.

Every finding is judged on validation (test stays untouched: it chooses nothing):

* **LW601** a class (multiclass, binary) or label (multilabel) that holds validation rows
  but is never predicted; **LW602** one predicted only for rows that do not hold it
  (recall 0). The message names its training count; the fix names the settings that apply
  (``train.class_weights: balanced``, ``train.pos_weight: balanced``, more epochs,
  ``train.threshold_metric: f1``).
* **LW603** a collapsed classifier: one answer (a class, or one label set) for at least
  95% of the validation rows while fewer than 90% of them hold it. **LW604** a collapsed
  regressor: predictions whose standard deviation is under 10% of the targets'.
* **LW605** a run that learned nothing: the final training loss (the logged loss over the
  last fifth of the steps) is within noise of the loss of the best constant prediction,
  the training label prior (:mod:`labelwise.scoring.baseline`, computed exactly from the
  training targets under the run's own loss). Noise is three standard errors of that
  loss over the rows the final loss averages, or 1% of it, whichever is larger.
  **LW606** the same test on validation, paired row by row: the model's validation loss
  against the loss of predicting the training prior for every validation row, with three
  standard errors of their row-wise difference (or 1%) as the noise.
* **LW607** a tuned threshold at the edge of its range ([0.01, 0.99]), or below every
  validation score of its label (the label is predicted for every row).
* **LW608** overfitting: the run's objective on a sample of training rows (the final
  model in eval mode, with the validation thresholds) against validation. For an
  objective that is maximised, a gap of at least 0.15, and at least three standard errors
  of a difference of two proportions (``3 * sqrt(0.25/n_train + 0.25/n_valid)``); for an
  objective that is minimised, the same gap in the loss's skill over the prior
  (``1 - loss / prior loss``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelwise.findings import Finding, Findings, Where
from labelwise.plan.contract import HeadContract
from labelwise.scoring.baseline import (contract_loss, loss_terms, prior_logits, prior_loss,
                                        ratio_standard_error)
from labelwise.scoring.decisions import decide, scores_from_logits
from labelwise.scoring.thresholds import CLIP, Thresholds

__all__ = ["CODES", "Diagnosis", "Settings", "brief", "diagnose", "final_train_loss",
           "COLLAPSE_SHARE", "SPREAD_SHARE", "OVERFIT_GAP", "LAST_SHARE"]

CODES = {
    "LW601": "a class or label that validation holds but the model never predicts",
    "LW602": "a class or label predicted only for rows that do not hold it (recall 0)",
    "LW603": "a collapsed classifier: one answer for (nearly) every validation row",
    "LW604": "a collapsed regressor: predictions with a tiny fraction of the targets' spread",
    "LW605": "learned nothing: the final training loss is within noise of the prior's loss",
    "LW606": "the validation loss is no better than predicting the training prior",
    "LW607": "a tuned threshold at the edge of its range, or below every validation score",
    "LW608": "overfitting: validation much worse than training",
}
COLLAPSE_SHARE = 0.95  # one answer for at least this share of the validation rows ...
COLLAPSE_TRUE = 0.90  # ... while fewer than this share hold it
MIN_COLLAPSE_ROWS = 20
SPREAD_SHARE = 0.10  # regression predictions' sd under this share of the targets' sd
OVERFIT_GAP = 0.15
LAST_SHARE = 0.2  # the final training loss: the logged loss over the last fifth of the steps
NOISE_SE = 3.0
NOISE_FLOOR = 0.01
MAX_LISTED = 5


@dataclass(frozen=True)
class Settings:
    """The run's settings the fixes refer to (any may be unknown)."""

    epochs: float | None = None
    learning_rate: float | None = None
    threshold_metric: str = "f1"


@dataclass(frozen=True)
class Diagnosis:
    """The findings after training and the numbers they were judged on."""

    findings: Findings = field(default_factory=Findings)
    checks: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"findings": [f.to_dict() for f in self.findings], "checks": self.checks}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Diagnosis:
        """Rebuild from :meth:`to_dict` (as stored in ``metrics.json``)."""
        data = data or {}
        found = []
        for f in data.get("findings") or []:
            where = dict(f.get("where") or {})
            where["rows"] = tuple(where.get("rows") or ())
            found.append(Finding(f["code"], f["level"], f["message"], Where(**where),
                                 f.get("fix", "")))
        return cls(Findings(found), dict(data.get("checks") or {}))


def brief(findings: Iterable[Finding | Mapping[str, Any]], limit: int = 2) -> str:
    """Findings on one line: the first messages and how many more (``class 'neutral' never
    predicted on validation (...)``); ``""`` for none. Takes findings or their dicts."""
    messages = [f.message if isinstance(f, Finding) else str(f["message"]) for f in findings]
    more = f"; {len(messages) - limit} more" if len(messages) > limit else ""
    return "; ".join(messages[:limit]) + more


def final_train_loss(log_history: Sequence[Mapping[str, Any]], rows_per_step: int | None
                     ) -> tuple[float, int | None] | None:
    """The mean logged training loss over the last :data:`LAST_SHARE` of the steps (at least
    the last logged value), and how many training rows those losses averaged."""
    logged = [(int(h.get("step", 0)), float(h["loss"])) for h in log_history
              if "loss" in h and isinstance(h["loss"], (int, float))
              and math.isfinite(float(h["loss"]))]
    if not logged:
        return None
    last_step = logged[-1][0]
    start = last_step - max(1, round(LAST_SHARE * last_step))
    tail = [i for i, (step, _) in enumerate(logged) if step > start] or [len(logged) - 1]
    first = tail[0]
    since = logged[first - 1][0] if first > 0 else 0
    windows = [(logged[i][0] - (logged[i - 1][0] if i > 0 else 0), logged[i][1]) for i in tail]
    steps = sum(w for w, _ in windows)
    loss = (sum(w * v for w, v in windows) / steps if steps > 0
            else float(np.mean([v for _, v in windows])))
    rows = (last_step - since) * rows_per_step if rows_per_step else None
    return loss, rows


def diagnose(*, contract: HeadContract, class_names: Sequence[str], valid_targets: Any,
             valid_logits: Any, train_targets: Any, thresholds: Thresholds | None = None,
             log_history: Sequence[Mapping[str, Any]] = (), rows_per_step: int | None = None,
             objective: tuple[str, str] | None = None,
             train_sample: tuple[Any, Any] | None = None,
             settings: Settings | None = None) -> Diagnosis:
    """The findings after training (see the module docstring).

    Args:
        contract: The run's head/loss contract (a trial's own).
        class_names: Class, label or target names in id order (``schema.label_names``).
        valid_targets: Validation targets in the contract's dtype and shape.
        valid_logits: The final model's validation logits ``[n, width]``.
        train_targets: Training targets in the contract's dtype and shape.
        thresholds: The decision thresholds tuned on validation (binary, multilabel).
        log_history: The Trainer's log (records with ``loss`` and ``step``).
        rows_per_step: Training rows per optimizer step (batch size x accumulation).
        objective: ``(metric, direction)`` the run is judged by (for LW608).
        train_sample: ``(logits, targets)`` of a sample of training rows (for LW608).
        settings: Settings the fixes name.
    """
    from labelwise.scoring.evaluation import y_for_metrics

    settings = settings or Settings()
    names = [str(n) for n in class_names]
    task = contract.task.value
    logits = np.asarray(valid_logits, dtype=np.float64)
    logits = logits[:, None] if logits.ndim == 1 else logits
    y_valid = y_for_metrics(np.asarray(valid_targets), contract)
    y_train = y_for_metrics(np.asarray(train_targets), contract)
    scores = scores_from_logits(logits, contract)
    found: list[Finding] = []
    checks: dict[str, Any] = {"valid_rows": int(len(logits)),
                              "train_rows": int(len(np.asarray(train_targets)))}
    if task == "regression":
        found += _spread(scores, np.asarray(y_valid, dtype=np.float64), names, checks,
                         settings)
    else:
        pred = decide(scores, rule=contract.decision_rule,
                      thresholds=_values(thresholds, task, len(names)))
        collapsed = _collapse(pred, y_valid, names, task, checks)
        found += collapsed
        found += _unpredicted(pred, y_valid, y_train, names, task, contract, settings, checks,
                              skip_never=bool(collapsed) and task != "multilabel")
        if thresholds is not None:
            found += _edges(thresholds, scores, names, task)
    learned = _learned_nothing(contract, logits, valid_targets, train_targets, log_history,
                               rows_per_step, settings, checks)
    found += learned
    if train_sample is not None and objective is not None:
        found += _overfit(contract, names, thresholds, objective, logits, valid_targets,
                          train_sample, train_targets, checks)
    return Diagnosis(Findings(found), checks)


# --- the findings ------------------------------------------------------------------------


def _values(thresholds: Thresholds | None, task: str, k: int) -> Any:
    if task == "binary":
        return thresholds.values[0] if thresholds is not None else 0.5
    if task == "multilabel":
        return list(thresholds.values) if thresholds is not None else [0.5] * k
    return None


def _rows(n: int) -> str:
    return f"{n} training row{'' if n == 1 else 's'}"


def _weights_fix(task: str, contract: HeadContract) -> str | None:
    one_logit = contract.num_labels == 1 and task == "binary"
    if task == "multilabel" or one_logit:
        if contract.pos_weight or contract.class_weights:
            return None
        return "set train.pos_weight: balanced"
    return None if contract.class_weights else "set train.class_weights: balanced"


def _epochs_fix(settings: Settings) -> str:
    if settings.epochs:
        return f"train longer (train.epochs: {2 * settings.epochs:g}, now {settings.epochs:g})"
    return "train longer (train.epochs)"


def _unpredicted_fix(task: str, contract: HeadContract, settings: Settings) -> str:
    parts = [p for p in (_weights_fix(task, contract), _epochs_fix(settings)) if p]
    if contract.uses_thresholds and settings.threshold_metric == "accuracy":
        parts.append("set train.threshold_metric: f1 (accuracy-tuned thresholds give rare "
                     "labels up)")
    parts.append("or add training rows of it")
    return "; ".join(parts)


def _unpredicted(pred: np.ndarray, y: np.ndarray, y_train: np.ndarray, names: list[str],
                 task: str, contract: HeadContract, settings: Settings,
                 checks: dict[str, Any], *, skip_never: bool) -> list[Finding]:
    word = "label" if task == "multilabel" else "class"
    if task == "multilabel":
        hit = pred.astype(bool)
        truth = y.astype(bool)
        train_counts = np.asarray(y_train).astype(bool).sum(axis=0)
    else:
        hit = pred[:, None] == np.arange(len(names))[None, :]
        truth = y[:, None] == np.arange(len(names))[None, :]
        train_counts = np.bincount(np.asarray(y_train).astype(np.int64),
                                   minlength=len(names))
    predicted = hit.sum(axis=0)
    support = truth.sum(axis=0)
    true_pos = (hit & truth).sum(axis=0)
    checks["predicted"] = {n: int(c) for n, c in zip(names, predicted, strict=True)}
    checks["recall"] = {n: (round(float(tp / s), 6) if s else None)
                        for n, tp, s in zip(names, true_pos, support, strict=True)}
    never = [j for j in range(len(names)) if support[j] and not predicted[j]]
    wrong = [j for j in range(len(names)) if support[j] and predicted[j] and not true_pos[j]]
    fix = _unpredicted_fix(task, contract, settings)
    out: list[Finding] = []
    if not skip_never:
        out += _listed("LW601", never, names, word, train_counts, fix, lambda j: (
            f"{word} {names[j]!r} never predicted on validation ({support[j]} validation "
            f"rows, {_rows(int(train_counts[j]))})"), "never predicted on validation")
    out += _listed("LW602", wrong, names, word, train_counts, fix, lambda j: (
        f"{word} {names[j]!r} has recall 0 on validation: predicted for {predicted[j]} rows, "
        f"none of its {support[j]} ({_rows(int(train_counts[j]))})"),
        "predicted only for rows that do not hold them (recall 0 on validation)")
    return out


def _listed(code: str, items: list[int], names: list[str], word: str,
            train_counts: np.ndarray, fix: str, one: Any, what: str) -> list[Finding]:
    """One finding per class, or one for them all when there are more than five."""
    if len(items) <= MAX_LISTED:
        return [Finding(code, "warning", one(j), Where(split="valid", value=names[j]), fix)
                for j in items]
    shown = ", ".join(f"{names[j]!r} ({int(train_counts[j])})" for j in items[:MAX_LISTED])
    return [Finding(code, "warning", f"{len(items)} {word}es {what}" if word == "class" else
                    f"{len(items)} {word}s {what}",
                    Where(split="valid", detail=f"{shown}, … (training rows in brackets)"),
                    fix)]


def _collapse(pred: np.ndarray, y: np.ndarray, names: list[str], task: str,
              checks: dict[str, Any]) -> list[Finding]:
    n = len(pred)
    if n < MIN_COLLAPSE_ROWS:
        return []
    if task == "multilabel":
        rows: list[Any] = [tuple(int(j) for j in np.flatnonzero(r)) for r in np.asarray(pred)]
        truth: list[Any] = [tuple(int(j) for j in np.flatnonzero(r)) for r in np.asarray(y)]
    else:
        rows = [int(v) for v in pred]
        truth = [int(v) for v in y]
    answer, count = Counter(rows).most_common(1)[0]
    share = count / n
    true_share = sum(1 for t in truth if t == answer) / n
    checks["top_answer_share"] = round(share, 6)
    if share < COLLAPSE_SHARE or true_share >= COLLAPSE_TRUE:
        return []
    if task == "multilabel":
        what = ("no label" if not answer else "the label set {" +
                ", ".join(repr(names[j]) for j in answer) + "}")
        never = ""
    else:
        what = f"class {names[answer]!r}"
        missing = [repr(names[j]) for j in range(len(names)) if j not in set(rows)]
        never = (f"; {', '.join(missing)} never predicted" if missing else "")
    return [Finding("LW603", "warning",
                    f"collapsed: the model predicts {what} for {share:.0%} of validation rows "
                    f"({count} of {n}) while {true_share:.0%} of them hold it{never}",
                    Where(split="valid"),
                    "see the findings on the loss below: a run that learned nothing predicts "
                    "the prior; with imbalanced classes set train.class_weights: balanced "
                    "(train.pos_weight for multilabel)")]


def _spread(pred: np.ndarray, y: np.ndarray, names: list[str], checks: dict[str, Any],
            settings: Settings) -> list[Finding]:
    pred = pred[:, None] if pred.ndim == 1 else pred
    y = y[:, None] if y.ndim == 1 else y
    out = []
    shares: dict[str, float | None] = {}
    for j, name in enumerate(names):
        sd_true, sd_pred = float(np.std(y[:, j])), float(np.std(pred[:, j]))
        shares[name] = round(sd_pred / sd_true, 6) if sd_true > 0 else None
        if sd_true > 0 and sd_pred < SPREAD_SHARE * sd_true:
            out.append(Finding("LW604", "warning",
                               f"collapsed: the predictions of target {name!r} spread "
                               f"{sd_pred / sd_true:.1%} as wide as its validation values "
                               f"(sd {sd_pred:.3g} against {sd_true:.3g}): nearly one value "
                               "for every row", Where(split="valid", column=name),
                               f"{_lr_fix(settings)}; {_epochs_fix(settings)}"))
    checks["prediction_spread"] = shares
    return out


def _lr_fix(settings: Settings) -> str:
    now = f" (now {settings.learning_rate:g})" if settings.learning_rate else ""
    return f"raise train.learning_rate{now}"


def _learned_nothing(contract: HeadContract, logits: np.ndarray, valid_targets: Any,
                     train_targets: Any, log_history: Sequence[Mapping[str, Any]],
                     rows_per_step: int | None, settings: Settings,
                     checks: dict[str, Any]) -> list[Finding]:
    prior = "the training target means" if contract.loss == "mse" else \
        "the training label prior"
    out: list[Finding] = []
    p_train, se_train = prior_loss(train_targets, contract)
    checks["prior_loss"] = round(p_train, 6)
    fix = (f"{_lr_fix(settings)} or {_epochs_fix(settings)}; check that the texts and labels "
           "are aligned (a shuffled label column learns nothing)")
    final = final_train_loss(log_history, rows_per_step)
    learned = True
    if final is not None:
        loss, rows = final
        n_train = len(np.asarray(train_targets))
        sd_row = se_train * math.sqrt(n_train) if math.isfinite(se_train) else 0.0
        se = sd_row / math.sqrt(rows) if rows else se_train
        margin = max(NOISE_SE * (se if math.isfinite(se) else 0.0), NOISE_FLOOR * p_train)
        checks["final_train_loss"] = round(loss, 6)
        checks["final_train_loss_rows"] = rows
        checks["train_noise_margin"] = round(margin, 6)
        if loss >= p_train - margin:
            learned = False
            out.append(Finding("LW605", "warning",
                               f"learned nothing: the training loss ended at {loss:.4f}, "
                               f"{_near(loss, p_train)} {p_train:.4f}, the loss of predicting "
                               f"{prior} for every row", Where(split="train", detail=f"loss "
                                                  f"{contract.loss}, noise ±{margin:.4f}"),
                               fix))
    # paired, row by row: the model's loss against the prior's on the same validation rows
    num, den = loss_terms(logits, valid_targets, contract)
    p_num, _ = loss_terms(np.tile(prior_logits(train_targets, contract), (len(logits), 1)),
                          valid_targets, contract)
    v_loss, p_valid = float(num.sum() / den.sum()), float(p_num.sum() / den.sum())
    se_diff = ratio_standard_error(num - p_num, den)
    margin_v = max(NOISE_SE * (se_diff if math.isfinite(se_diff) else 0.0),
                   NOISE_FLOOR * p_valid)
    checks["valid_loss"] = round(v_loss, 6)
    checks["prior_valid_loss"] = round(p_valid, 6)
    if math.isfinite(v_loss) and v_loss >= p_valid - margin_v:
        why = fix if not learned or final is None else (
            "the training loss fell but the validation loss did not: stop earlier "
            "(train.early_stopping_patience, fewer train.epochs) or regularise more "
            "(train.weight_decay, model.dropout)")
        out.append(Finding("LW606", "warning",
                           f"the validation loss is {v_loss:.4f}, {_near(v_loss, p_valid)} "
                           f"{p_valid:.4f}, the loss of predicting {prior} for every "
                           "validation row",
                           Where(split="valid", detail=f"noise ±{margin_v:.4f}"), why))
    return out


def _near(loss: float, prior: float) -> str:
    return "no lower than" if loss >= prior else "within noise of"


def _edges(thresholds: Thresholds, scores: np.ndarray, names: list[str], task: str
           ) -> list[Finding]:
    labels = [names[1]] if task == "binary" else names
    s = scores[:, None] if scores.ndim == 1 else scores
    if task == "binary" and s.shape[1] == 2:
        s = s[:, 1:]
    out = []
    low, high = CLIP
    for j, (name, value, method) in enumerate(zip(labels, thresholds.values,
                                                  thresholds.methods, strict=False)):
        if not method.startswith("tuned"):
            continue
        col = s[:, j] if j < s.shape[1] else s[:, 0]
        if value <= low + 1e-9 or value >= high - 1e-9:
            what = (f"tuned to {value:.3f}, the {'bottom' if value <= low + 1e-9 else 'top'} "
                    f"of its range [{low}, {high}]")
        elif value <= float(col.min()):
            what = (f"tuned to {value:.3f}, below every validation score: {name!r} is "
                    "predicted for every row")
        else:
            continue
        out.append(Finding("LW607", "warning", f"the threshold of {name!r} was {what}",
                           Where(split="valid", value=name),
                           "its scores do not separate its rows: train longer, weight it "
                           "(train.pos_weight / train.class_weights: balanced), or check "
                           "train.threshold_metric"))
    return out


def _overfit(contract: HeadContract, names: list[str], thresholds: Thresholds | None,
             objective: tuple[str, str], valid_logits: np.ndarray, valid_targets: Any,
             train_sample: tuple[Any, Any], train_targets: Any,
             checks: dict[str, Any]) -> list[Finding]:
    metric, direction = objective
    t_logits, t_targets = np.asarray(train_sample[0]), np.asarray(train_sample[1])
    n_t, n_v = len(t_logits), len(valid_logits)
    if n_t < 2 or n_v < 2:
        return []
    fix = ("stop earlier (train.early_stopping_patience, fewer train.epochs), regularise "
           "more (train.weight_decay, model.dropout), or add training rows")
    schema_task = contract.task.value
    if direction == "maximize" and metric != "loss":
        m_train = _metric(t_logits, t_targets, contract, names, schema_task, thresholds, metric)
        m_valid = _metric(valid_logits, valid_targets, contract, names, schema_task,
                          thresholds, metric)
        if m_train is None or m_valid is None:
            return []
        gap = m_train - m_valid
        needed = max(OVERFIT_GAP, 3 * math.sqrt(0.25 / n_t + 0.25 / n_v))
        checks["train_sample"] = {"rows": n_t, metric: round(m_train, 6)}
        checks["valid_" + metric] = round(m_valid, 6)
        checks["overfit_gap_needed"] = round(needed, 6)
        if gap < needed:
            return []
        return [Finding("LW608", "warning",
                        f"overfitting: {metric} is {m_train:.3f} on {n_t} training rows but "
                        f"{m_valid:.3f} on validation",
                        Where(split="valid", detail=f"gap {gap:.3f}, at least {needed:.3f} "
                              "counts"), fix)]
    l_train = contract_loss(t_logits, t_targets, contract)
    l_valid = contract_loss(valid_logits, valid_targets, contract)
    p_train, _ = prior_loss(train_targets, contract, on=t_targets)
    p_valid, _ = prior_loss(train_targets, contract, on=valid_targets)
    if not (p_train > 0 and p_valid > 0 and math.isfinite(l_train) and math.isfinite(l_valid)):
        return []
    skill_t, skill_v = 1 - l_train / p_train, 1 - l_valid / p_valid
    needed = max(OVERFIT_GAP, 3 * math.sqrt(0.25 / n_t + 0.25 / n_v))
    checks["train_sample"] = {"rows": n_t, "loss": round(l_train, 6)}
    checks["overfit_gap_needed"] = round(needed, 6)
    if skill_t - skill_v < needed:
        return []
    return [Finding("LW608", "warning",
                    f"overfitting: the loss is {l_train:.4f} on {n_t} training rows but "
                    f"{l_valid:.4f} on validation (predicting the prior: {p_valid:.4f})",
                    Where(split="valid", detail=f"skill over the prior {skill_t:.2f} on "
                          f"training rows, {skill_v:.2f} on validation"), fix)]


def _metric(logits: np.ndarray, targets: np.ndarray, contract: HeadContract,
            names: list[str], task: str, thresholds: Thresholds | None,
            metric: str) -> float | None:
    from labelwise.scoring.evaluation import y_for_metrics
    from labelwise.scoring.metrics import compute_metrics

    scores = scores_from_logits(logits, contract)
    y = y_for_metrics(targets, contract)
    values = _values(thresholds, task, len(names))
    try:
        value = compute_metrics(task=task, y_true=y, scores=scores, class_names=names,
                                thresholds=values).get(metric)
    except ValueError:
        return None
    return float(value) if isinstance(value, (int, float)) else None

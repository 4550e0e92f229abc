"""The head/loss contract: derived once from the schema, checked on every batch.

Transformers guesses the head and loss late (``num_labels`` defaults to 2, ``problem_type``
comes from the first batch's dtype, label smoothing is switched off for multilabel with a
warning). labelwise derives them here, from the :class:`~labelwise.labels.schema.LabelSchema`, with
a pure function, and refuses what cannot work.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Literal

import numpy as np

from labelwise.errors import ContractError
from labelwise.findings import Finding, Where
from labelwise.labels.inference import Task
from labelwise.labels.schema import LabelSchema

__all__ = [
    "ContractOptions",
    "DecisionRule",
    "HeadContract",
    "derive_contract",
    "to_targets",
    "METRICS",
]


class DecisionRule(StrEnum):
    """How scores become decisions (:func:`labelwise.scoring.decisions.decide`)."""

    ARGMAX = "argmax"  # multiclass: the highest class probability
    THRESHOLD = "threshold"  # binary: positive-class score >= one threshold
    PER_LABEL_THRESHOLDS = "per_label_thresholds"  # multilabel: score >= each label's threshold
    IDENTITY = "identity"  # regression: the outputs are the predictions

    @property
    def uses_thresholds(self) -> bool:
        return self in (DecisionRule.THRESHOLD, DecisionRule.PER_LABEL_THRESHOLDS)


Weights = Literal["balanced"] | Mapping[str, float] | Sequence[float] | None

# Metric name -> natural direction, per task. Objectives must name one of these.
METRICS: dict[Task, dict[str, str]] = {
    Task.BINARY: {"accuracy": "maximize", "f1": "maximize", "precision": "maximize",
                  "recall": "maximize", "mcc": "maximize", "roc_auc": "maximize",
                  "pr_auc": "maximize", "loss": "minimize"},
    Task.MULTICLASS: {"accuracy": "maximize", "macro_f1": "maximize", "micro_f1": "maximize",
                      "weighted_f1": "maximize", "mcc": "maximize", "loss": "minimize"},
    Task.MULTILABEL: {"micro_f1": "maximize", "macro_f1": "maximize", "samples_f1": "maximize",
                      "subset_accuracy": "maximize", "hamming_loss": "minimize",
                      "loss": "minimize"},
    Task.REGRESSION: {"mse": "minimize", "mae": "minimize", "r2": "maximize",
                      "pearson": "maximize", "spearman": "maximize", "loss": "minimize"},
}


@dataclass(frozen=True)
class ContractOptions:
    """The head and loss settings a user can choose (``model`` and ``train`` config keys)."""

    binary_head: Literal["two_logit", "one_logit"] = "two_logit"
    loss: Literal["auto", "cross_entropy", "bce", "focal", "mse"] = "auto"
    focal_gamma: float = 2.0
    class_weights: Any = None
    pos_weight: Any = None
    label_smoothing: float = 0.0
    label_smoothing_mode: Literal["ce", "bce"] = "ce"
    problem_type: str | None = None
    num_labels: int | None = None


@dataclass(frozen=True)
class HeadContract:
    """What the model head, the loss and the targets must be, for one schema and options.

    Attributes:
        num_labels: Width of the head (1 for a one-logit binary head).
        problem_type: Transformers' name, written to ``config.json``.
        loss: ``cross_entropy``, ``bce_with_logits``, ``focal`` or ``mse``.
        target_dtype: ``int64`` (class ids) or ``float32``.
        target_shape: ``[B]``, ``[B, 1]`` or ``[B, K]``.
        activation: ``softmax``, ``sigmoid`` or ``identity``.
        decision_rule: ``argmax`` (multiclass), ``threshold`` (binary: one threshold on the
            positive class), ``per_label_thresholds`` (multilabel) or ``identity``.
        class_weights: Per-class loss weights in class order, resolved, or ``None``.
        pos_weight: Per-label positive weights for BCE, resolved, or ``None``.
        label_smoothing: Applied smoothing (0 when off).
        label_smoothing_mode: ``ce`` (cross-entropy smoothing) or ``bce`` (targets
            ``y * (1 - s) + s / 2``).
        focal_gamma: Focal-loss gamma, or ``None`` when the loss is not focal.
    """

    task: Task
    num_labels: int
    problem_type: str
    loss: str
    target_dtype: str
    target_shape: str
    target_width: int | None
    activation: str
    decision_rule: DecisionRule
    binary_head: str | None
    class_weights: tuple[float, ...] | None
    pos_weight: tuple[float, ...] | None
    label_smoothing: float
    label_smoothing_mode: str
    focal_gamma: float | None
    schema_fingerprint: str
    findings: tuple[Finding, ...] = field(default=(), compare=False)

    @property
    def uses_thresholds(self) -> bool:
        """Binary and multilabel heads decide by thresholds (tuned on validation)."""
        return self.decision_rule.uses_thresholds

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["task"] = self.task.value
        out["decision_rule"] = self.decision_rule.value
        out.pop("findings")
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadContract:
        """The contract saved in a model dir's ``labelwise.json``."""
        values = dict(data)
        values["task"] = Task(values["task"])
        values["decision_rule"] = DecisionRule(values["decision_rule"])
        for key in ("class_weights", "pos_weight"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)

    def describe(self) -> str:
        return (f"{self.num_labels} logit(s), {self.activation}, loss {self.loss}, targets "
                f"{self.target_dtype} {self.target_shape}, decision {self.decision_rule}")


def _err(code: str, what: str, fix: str, where: str = "") -> ContractError:
    return ContractError(what, where=where, fix=fix, code=code)


def derive_contract(
    schema: LabelSchema,
    options: ContractOptions | None = None,
    *,
    class_counts: Mapping[Any, int] | None = None,
    n_rows: int | None = None,
) -> HeadContract:
    """Derive the head/loss contract from a schema and the user's options. Pure and cheap.

    Args:
        schema: The label schema.
        options: Head and loss options; defaults when ``None``.
        class_counts: Training counts per class (needed for ``"balanced"`` weights).
        n_rows: Training rows (needed for ``"balanced"`` ``pos_weight``).

    Raises:
        ContractError: An option cannot work with this schema (codes LW201-LW212); the
            message shows both sides and the fix.
    """
    o = options or ContractOptions()
    task = schema.task
    notes: list[Finding] = []
    one_logit = task is Task.BINARY and o.binary_head == "one_logit"
    if o.binary_head == "one_logit" and task is not Task.BINARY:
        raise _err("LW209", f"binary_head 'one_logit' was set, but the task is {task}",
                   "remove model.binary_head, or use it only for binary tasks",
                   "key model.binary_head")
    if task is Task.REGRESSION:
        num_labels, problem_type = schema.num_labels, "regression"
    elif task is Task.MULTILABEL or one_logit:
        num_labels = 1 if one_logit else schema.num_labels
        problem_type = "multi_label_classification"
    else:
        num_labels, problem_type = schema.num_labels, "single_label_classification"
    if o.num_labels is not None and o.num_labels != num_labels:
        raise _err("LW202", f"num_labels={o.num_labels} was set, but the schema needs "
                   f"num_labels={num_labels} ({_width_reason(schema, one_logit)})",
                   "remove model.num_labels: it is fixed by the schema", "key model.num_labels")
    if o.problem_type is not None and o.problem_type != problem_type:
        raise _err("LW201", f"problem_type='{o.problem_type}' was set, but the schema needs "
                   f"problem_type='{problem_type}' (task {task}"
                   f"{', one_logit head' if one_logit else ''})",
                   "remove model.problem_type: it is fixed by the schema",
                   "key model.problem_type")
    loss = _loss(task, o, one_logit)
    smoothing, mode = _smoothing(task, o, one_logit, loss)
    class_weights = _class_weights(schema, o.class_weights, class_counts)
    pos_weight = _pos_weight(schema, o.pos_weight, class_counts, n_rows, one_logit)
    if loss == "focal" and (class_weights or pos_weight):
        notes.append(Finding("LW208", "warning", "focal loss combined with class weights: "
                             "both re-weight rare classes, and together they often over-"
                             "correct", Where(detail="keys train.loss, train.class_weights"),
                             "keep one of them unless a search shows the pair helps"))
    if task is Task.REGRESSION:
        dtype, shape, width, act, rule = "float32", "[B, T]", schema.num_labels, "identity", \
            DecisionRule.IDENTITY
    elif task is Task.MULTILABEL:
        dtype, shape, width, act, rule = "float32", "[B, K]", schema.num_labels, "sigmoid", \
            DecisionRule.PER_LABEL_THRESHOLDS
    elif one_logit:
        dtype, shape, width, act, rule = "float32", "[B, 1]", 1, "sigmoid", DecisionRule.THRESHOLD
    else:
        dtype, shape, width = "int64", "[B]", None
        act = "softmax"
        rule = DecisionRule.THRESHOLD if task is Task.BINARY else DecisionRule.ARGMAX
    return HeadContract(
        task=task, num_labels=num_labels, problem_type=problem_type, loss=loss,
        target_dtype=dtype, target_shape=shape, target_width=width, activation=act,
        decision_rule=rule, binary_head=o.binary_head if task is Task.BINARY else None,
        class_weights=class_weights, pos_weight=pos_weight, label_smoothing=smoothing,
        label_smoothing_mode=mode, focal_gamma=o.focal_gamma if loss == "focal" else None,
        schema_fingerprint=schema.fingerprint, findings=tuple(notes))


def _width_reason(schema: LabelSchema, one_logit: bool) -> str:
    if one_logit:
        return "binary task with a one_logit head"
    what = "targets" if schema.task is Task.REGRESSION else "classes"
    return f"{schema.num_labels} {what} in column(s) '{', '.join(schema.columns)}'"


def _loss(task: Task, o: ContractOptions, one_logit: bool) -> str:
    natural = ("mse" if task is Task.REGRESSION else
               "bce_with_logits" if task is Task.MULTILABEL or one_logit else "cross_entropy")
    if o.loss == "auto":
        return natural
    if o.loss == "focal":
        if task not in (Task.BINARY, Task.MULTILABEL):
            raise _err("LW207", f"loss 'focal' was set, but the task is {task}; focal loss is "
                       "for binary and multilabel tasks", "use loss: auto (cross-entropy for "
                       "multiclass, mse for regression)", "key train.loss")
        return "focal"
    wanted = {"cross_entropy": "cross_entropy", "bce": "bce_with_logits", "mse": "mse"}[o.loss]
    if wanted != natural:
        raise _err("LW212", f"loss '{o.loss}' was set, but a {task} task"
                   f"{' with a one_logit head' if one_logit else ''} needs "
                   f"'{ {'bce_with_logits': 'bce'}.get(natural, natural)}'",
                   "remove train.loss (auto picks the right one)"
                   + ("; for BCE on binary, set model.binary_head: one_logit"
                      if task is Task.BINARY and wanted == "bce_with_logits" else ""),
                   "key train.loss")
    return wanted


def _smoothing(task: Task, o: ContractOptions, one_logit: bool, loss: str) -> tuple[float, str]:
    s, mode = float(o.label_smoothing), o.label_smoothing_mode
    if not 0.0 <= s < 1.0:
        raise _err("LW203", f"label_smoothing must be in [0, 1). Got {s} instead",
                   "pass a value such as 0.1", "key train.label_smoothing")
    if s == 0.0:
        return 0.0, mode
    if task is Task.REGRESSION:
        raise _err("LW204", f"label_smoothing={s} was set, but the task is regression: there "
                   "are no classes to smooth", "remove train.label_smoothing",
                   "key train.label_smoothing")
    bce_like = task is Task.MULTILABEL or one_logit
    if bce_like and mode != "bce":
        head = "multilabel task" if task is Task.MULTILABEL else "one_logit binary head"
        raise _err("LW203", f"label_smoothing={s} was set for a {head}, which trains with BCE; "
                   "cross-entropy label smoothing does not apply (Transformers switches it off "
                   "with only a warning)", "set train.label_smoothing_mode: bce to smooth the "
                   "BCE targets, or remove train.label_smoothing", "key train.label_smoothing")
    if not bce_like and mode == "bce":
        raise _err("LW211", f"label_smoothing_mode 'bce' was set, but a {task} task with a "
                   "two_logit head trains with cross-entropy", "use label_smoothing_mode: ce",
                   "key train.label_smoothing_mode")
    return s, mode


def _counts_in_order(schema: LabelSchema, counts: Mapping[Any, int] | None, what: str) -> list[int]:
    if counts is None:
        raise _err("LW205", f"{what} 'balanced' needs the training class counts",
                   "pass class_counts to derive_contract")
    return [int(counts.get(c, 0)) for c in schema.classes]


def _explicit(schema: LabelSchema, value: Any, key: str) -> list[float]:
    names = [str(c) for c in schema.classes]
    if isinstance(value, Mapping):
        unknown = [k for k in value if str(k) not in names]
        if unknown:
            raise _err("LW205", f"{key} names class '{unknown[0]}', which is not one of the "
                       f"schema's classes {names}", f"use the class names {names}",
                       f"key train.{key}")
        missing = [n for n in names if n not in {str(k) for k in value}]
        if missing:
            raise _err("LW205", f"{key} gives no weight for class(es) {missing}",
                       "give a weight for every class, or a list in class order",
                       f"key train.{key}")
        by = {str(k): float(v) for k, v in value.items()}
        weights = [by[n] for n in names]
    else:
        weights = [float(v) for v in value]
        if len(weights) != len(names):
            raise _err("LW205", f"`len({key}) == num_classes` must hold, but got "
                       f"(len({key})={len(weights)}, num_classes={len(names)})",
                       f"give one weight per class in the order {names}", f"key train.{key}")
    if any(w < 0 for w in weights) or not any(w > 0 for w in weights):
        raise _err("LW205", f"{key} must be non-negative with at least one positive weight. "
                   f"Got {weights} instead", "fix the weights", f"key train.{key}")
    return weights


def _class_weights(schema: LabelSchema, value: Any,
                   counts: Mapping[Any, int] | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    if not schema.task.single_label:
        fix = ("use train.pos_weight for multilabel" if schema.task is Task.MULTILABEL
               else "remove train.class_weights")
        raise _err("LW206", f"class_weights was set, but the task is {schema.task}", fix,
                   "key train.class_weights")
    if value == "balanced":
        order = _counts_in_order(schema, counts, "class_weights")
        total, k = sum(order), len(order)
        return tuple(round(total / (k * c), 6) if c else 0.0 for c in order)
    return tuple(_explicit(schema, value, "class_weights"))


def _pos_weight(schema: LabelSchema, value: Any, counts: Mapping[Any, int] | None,
                n_rows: int | None, one_logit: bool) -> tuple[float, ...] | None:
    if value is None:
        return None
    if schema.task is not Task.MULTILABEL and not one_logit:
        raise _err("LW206", f"pos_weight was set, but the task is {schema.task}"
                   f"{' with a two_logit head' if schema.task is Task.BINARY else ''}; it "
                   "weights the positives of a BCE loss", "use train.class_weights, or "
                   "model.binary_head: one_logit", "key train.pos_weight")
    if value == "balanced":
        order = _counts_in_order(schema, counts, "pos_weight")
        if n_rows is None:
            raise _err("LW205", "pos_weight 'balanced' needs the training row count",
                       "pass n_rows to derive_contract")
        if one_logit:
            pos = order[1]
            return (round((n_rows - pos) / pos, 6) if pos else 1.0,)
        return tuple(round((n_rows - c) / c, 6) if c else 1.0 for c in order)
    if one_logit:
        if isinstance(value, (int, float)):
            return (float(value),)
        weights = [float(v) for v in (value.values() if isinstance(value, Mapping) else value)]
        if len(weights) != 1:
            raise _err("LW205", f"`len(pos_weight) == 1` must hold for a one_logit head, but "
                       f"got (len(pos_weight)={len(weights)})", "give one number",
                       "key train.pos_weight")
        return tuple(weights)
    return tuple(_explicit(schema, value, "pos_weight"))


def to_targets(encoded: np.ndarray, contract: HeadContract) -> np.ndarray:
    """``schema.encode`` output reshaped and cast for the contract.

    Binary with a one_logit head: class ids ``[n]`` become float ``[n, 1]`` (positive = 1).
    Other tasks already have the contract's dtype and shape.
    """
    if contract.target_shape == "[B, 1]":
        return encoded.astype(np.float32).reshape(-1, 1)
    if contract.target_dtype == "int64":
        return encoded.astype(np.int64)
    return encoded.astype(np.float32)

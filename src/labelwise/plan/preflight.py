"""Preflight: every check a run or a search needs, before any weight loads or file is written.

``preflight(config)`` loads and audits the data, derives the contract (for the config and
for every contract-changing choice of the search space), checks the space, the objective
and the model's config files, collects every finding, then fails once with a
:class:`~labelwise.errors.PreflightError`, or returns the resolved :class:`Plan`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from labelwise.data.auditing import audit
from labelwise.plan.config import RunConfig, config_from_call
from labelwise.plan.device import Compute, DeviceFacts, compute_findings
from labelwise.plan.contract import (METRICS, ContractOptions, DecisionRule, HeadContract,
                                     derive_contract)
from labelwise.data.loading import LoadedData, load_splits
from labelwise.errors import ConfigError, LabelwiseError, PreflightError
from labelwise.findings import Finding, Findings, Where
from labelwise.labels.inference import Task
from labelwise.plan.model_ref import ModelRef, model_findings, resolve_model
from labelwise.labels.schema import LabelSchema
from labelwise.plan.space import apply_params, check_space, space_points
from labelwise.plan.truncation import measure_truncation, truncation_findings

__all__ = ["Decision", "Plan", "preflight", "check", "contract_options", "default_objective",
           "threshold_metric", "embedding_rows", "head_bias", "EmbeddingRows", "HeadBias"]

logger = logging.getLogger("labelwise")

DEFAULT_OBJECTIVES = {
    Task.BINARY: ("f1", "maximize"),
    Task.MULTICLASS: ("macro_f1", "maximize"),
    Task.MULTILABEL: ("macro_f1", "maximize"),
    Task.REGRESSION: ("pearson", "maximize"),
}


class EmbeddingRows(StrEnum):
    """Which word-embedding rows training updates."""

    ALL = "all"
    SEEN = "tokens in train and valid"


class HeadBias(StrEnum):
    """Where a new head's output bias starts."""

    PRIOR = "training prior"
    MODEL = "model init"


@dataclass(frozen=True)
class Decision:
    """One derived value and why: ``num_labels=3`` because ``3 classes in column 'label'``."""

    key: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"{self.key}={self.value} ({self.reason})"


@dataclass(frozen=True)
class Plan:
    """Everything derived from the config, kept apart from it (the config is not mutated).

    ``threshold_metric``, ``head_bias`` and ``embedding_rows`` are the resolved values
    training reads; ``decisions`` says each derived value and why. All of them follow
    ``config``: a trial's plan is :meth:`for_trial`, never the base plan with another config.
    """

    config: RunConfig
    data: LoadedData
    schema: LabelSchema
    contract: HeadContract
    model: ModelRef
    objective: tuple[str, str]
    decisions: tuple[Decision, ...]
    threshold_metric: str  # what binary and multilabel thresholds maximise on validation
    head_bias: HeadBias
    embedding_rows: EmbeddingRows
    findings: Findings = field(default_factory=Findings)
    source: str | None = None
    train_counts: tuple[Counter, int] | None = field(default=None, repr=False, compare=False)
    # the device and precision (None: resolved when training starts, see plan.device)
    compute: Compute | None = None
    # decisions measured on the machine and the data at preflight (device, precision, the
    # share of truncated rows), carried into every trial's plan
    measured: tuple[Decision, ...] = ()

    @property
    def head_bias_at_prior(self) -> bool:
        """A new head's output bias starts at the training prior (else the model's init)."""
        return self.head_bias is HeadBias.PRIOR

    @property
    def cuts_embedding_rows(self) -> bool:
        """Training updates only the word-embedding rows of tokens in train and valid."""
        return self.embedding_rows is EmbeddingRows.SEEN

    def for_trial(self, config: RunConfig) -> Plan:
        """The plan of one trial of a search: ``config`` (the base config with the trial's
        params applied), its contract re-derived and every decision recomputed from it.
        Data, schema, model and objective are the search's (a search space cannot change
        them).

        Raises:
            ConfigError: ``config`` reads other data or another base model (LW315).
            LabelwiseError: The trial's config gives no valid contract.
        """
        mine, theirs = self.config.model, config.model
        if config.data != self.config.data or (mine.name_or_path, mine.revision) != (
                theirs.name_or_path, theirs.revision):
            raise ConfigError("a trial's config reads other data or another base model than "
                              "its search", fix="change only hyperparameters between trials",
                              code="LW315")
        counts, n_rows = self.train_counts or class_counts(self.data)
        contract = derive_contract(self.schema, contract_options(config), class_counts=counts,
                                   n_rows=n_rows)
        return _resolve(config, self.data, contract, self.model, self.objective,
                        findings=self.findings, source=self.source,
                        train_counts=(counts, n_rows), compute=self.compute,
                        measured=self.measured)

    def lines(self) -> list[str]:
        return [str(d) for d in self.decisions]

    def log(self) -> None:
        """Log each decision once (the CLI shows them; the library only logs)."""
        for line in self.lines():
            logger.info(line)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema.to_dict(),
            "contract": self.contract.to_dict(),
            "model": {"name_or_path": self.model.name_or_path, "local": self.model.local,
                      "default": self.model.is_default, "description": self.model.description},
            "objective": {"metric": self.objective[0], "direction": self.objective[1]},
            "decisions": [{"key": d.key, "value": d.value, "reason": d.reason}
                          for d in self.decisions],
            "carve": self.data.carve.to_dict() if self.data.carve else None,
            "compute": self.compute.to_dict() if self.compute else None,
            "sources": dict(self.data.sources),
            "data_fingerprints": {s: self.data.fingerprint(s) for s in self.data.splits},
            "config": self.config.model_dump(mode="json"),
        }


def contract_options(config: RunConfig) -> ContractOptions:
    m, t = config.model, config.train
    return ContractOptions(binary_head=m.binary_head, loss=t.loss, focal_gamma=t.focal_gamma,
                           class_weights=t.class_weights, pos_weight=t.pos_weight,
                           label_smoothing=t.label_smoothing,
                           label_smoothing_mode=t.label_smoothing_mode,
                           problem_type=m.problem_type, num_labels=m.num_labels)


def threshold_metric(config: RunConfig, objective: tuple[str, str]) -> tuple[str, str]:
    """``train.threshold_metric`` resolved, and why: ``auto`` follows the objective
    (accuracy, subset accuracy or Hamming loss: accuracy, whose per-label maximum is the
    Hamming loss's minimum; anything else: F1)."""
    chosen = config.train.threshold_metric
    if chosen != "auto":
        return chosen, "config (train.threshold_metric)"
    if objective[0] in ("accuracy", "subset_accuracy", "hamming_loss"):
        return "accuracy", f"the objective is {objective[0]}"
    return "f1", f"the objective is {objective[0]}, not accuracy"


def default_objective(task: Task) -> tuple[str, str]:
    return DEFAULT_OBJECTIVES[task]


def class_counts(data: LoadedData) -> tuple[Counter, int]:
    """Training rows per class, and how many training rows fit the schema."""
    coded = data.coded("train")
    return coded.class_counts(data.schema.task is Task.MULTILABEL)


def _as_finding(err: LabelwiseError, source: str | None, prefix: str = "") -> Finding:
    finding = err.to_finding()
    where = finding.where
    if source and not where.file and not where.split:
        where = Where(file=source, detail=where.detail)
    return Finding(finding.code, "error", prefix + finding.message, where, finding.fix)


def preflight(config: RunConfig, *, source: str | None = None, search: bool = False,
              facts: DeviceFacts | None = None) -> Plan:
    """Check everything a run (``search=False``) or a search needs. Loads no weights and
    writes nothing. ``facts``: what this process may train on
    (:func:`labelwise.training.device.device_facts`); without them the device is resolved
    when training starts.

    Returns:
        The resolved :class:`Plan`, with warnings and info in ``plan.findings``.

    Raises:
        PreflightError: one or more error findings; ``err.findings`` lists all of them.
    """
    found: list[Finding] = []
    d = config.data
    try:
        data = load_splits(train=d.train, valid=d.valid, test=d.test, text_column=d.text_column,
                           text_pair_column=d.text_pair_column, label_columns=d.label_columns,
                           task=d.task, classes=d.classes, label_sep=d.label_sep,
                           positive=d.positive, valid_size=d.valid_size, seed=d.split_seed,
                           exclude_rows=d.exclude_rows)
    except LabelwiseError as err:
        found.append(_as_finding(err, source))
        found.extend(_model_only(config, source))
        raise PreflightError(Findings(found)) from None
    found.extend(audit(data))
    schema = data.schema
    counts, n_rows = class_counts(data)
    contract: HeadContract | None = None
    try:
        contract = derive_contract(schema, contract_options(config), class_counts=counts,
                                   n_rows=n_rows)
        found.extend(contract.findings)
    except LabelwiseError as err:
        found.append(_as_finding(err, source))
    objective = _objective(config, schema, found, source)
    if search:
        found.extend(check_space(config, source=source))
        found.extend(_space_contracts(config, schema, counts, n_rows, source, found))
    model = None
    try:
        model = resolve_model(config.model.name_or_path, revision=config.model.revision)
    except LabelwiseError as err:
        found.append(_as_finding(err, source))
    truncation = None
    if model is not None:
        found.extend(model_findings(model, num_labels=contract.num_labels if contract else None,
                                    max_length=config.model.max_length,
                                    reinit_head=config.model.reinit_head, source=source))
        truncation = measure_truncation(model, data, max_length=config.model.max_length)
        found.extend(truncation_findings(truncation, source=source))
    compute, refused = compute_findings(config.train.device, config.train.precision, facts,
                                        source)
    found.extend(refused)
    findings = Findings(found)
    if findings.errors or contract is None or model is None:
        raise PreflightError(findings)
    measured: list[Decision] = []
    if truncation is not None:
        measured.append(Decision("max_length", config.model.max_length,
                                 f"rows truncated: {truncation.summary()}"))
    measured += _compute_decisions(config, compute, facts)
    return _resolve(config, data, contract, model, objective, findings=findings,
                    source=source, train_counts=(counts, n_rows), compute=compute,
                    measured=tuple(measured))


def _resolve(config: RunConfig, data: LoadedData, contract: HeadContract, model: ModelRef,
             objective: tuple[str, str], *, findings: Findings, source: str | None,
             train_counts: tuple[Counter, int], compute: Compute | None = None,
             measured: tuple[Decision, ...] = ()) -> Plan:
    """The plan of ``config``: every decision derived from it, once."""
    return Plan(config=config, data=data, schema=data.schema, contract=contract, model=model,
                objective=objective,
                decisions=(*_decisions(config, data, contract, model, objective), *measured),
                threshold_metric=threshold_metric(config, objective)[0],
                head_bias=head_bias(config, contract.activation)[0],
                embedding_rows=embedding_rows(config)[0], findings=findings, source=source,
                train_counts=train_counts, compute=compute, measured=measured)


def _model_only(config: RunConfig, source: str | None) -> list[Finding]:
    try:
        resolve_model(config.model.name_or_path, revision=config.model.revision)
    except LabelwiseError as err:
        return [_as_finding(err, source)]
    return []


def _objective(config: RunConfig, schema: LabelSchema, found: list[Finding],
               source: str | None) -> tuple[str, str]:
    obj = config.search.objective if config.search else None
    if obj is None:
        return default_objective(schema.task)
    known = METRICS[schema.task]
    where = Where(file=source, detail="key search.objective.metric")
    if obj.metric not in known:
        found.append(Finding("LW320", "error", f"objective metric '{obj.metric}' does not "
                             f"exist for a {schema.task} task", where,
                             f"use one of {', '.join(known)}"))
    elif known[obj.metric] != obj.direction:
        found.append(Finding("LW321", "warning", f"objective '{obj.metric}' is set to "
                             f"{obj.direction}, but it is better when it is "
                             f"{'higher' if known[obj.metric] == 'maximize' else 'lower'}",
                             where, f"set search.objective.direction: {known[obj.metric]}"))
    return obj.metric, obj.direction


def _space_contracts(config: RunConfig, schema: LabelSchema, counts: Counter, n_rows: int,
                     source: str | None, found: list[Finding]) -> list[Finding]:
    """Derive the contract for every categorical choice and range end of contract keys."""
    if any(f.code in ("LW311", "LW312", "LW314", "LW315") for f in found):
        return []
    out: list[Finding] = []
    seen: set[str] = set()
    for point in space_points(config):
        try:
            trial = apply_params(config, point)
            derive_contract(schema, contract_options(trial), class_counts=counts,
                            n_rows=n_rows)
        except LabelwiseError as err:
            shown = ", ".join(f"{k}={v!r}" for k, v in point.items())
            finding = _as_finding(err, source, prefix=f"search space point {shown}: ")
            if finding.code + finding.message not in seen:
                seen.add(finding.code + finding.message)
                out.append(finding)
        except ValueError as err:  # pydantic: already reported by check_space
            logger.debug("space point %s invalid: %s", point, err)
    return out


def _decisions(config: RunConfig, data: LoadedData, contract: HeadContract, model: ModelRef,
               objective: tuple[str, str]) -> list[Decision]:
    s = data.schema
    cols = ", ".join(s.columns)
    width = (f"{s.num_labels} targets in column(s) '{cols}'" if s.task is Task.REGRESSION else
             f"{s.num_labels} classes in column '{cols}'")
    if contract.num_labels == 1 and s.task is Task.BINARY:
        width = "binary task with a one_logit head"
    out = [
        Decision("task", s.task.value, s.evidence),
        Decision("num_labels", contract.num_labels, width),
        Decision("problem_type", contract.problem_type, f"{s.task} task"
                 + (f", {contract.binary_head} head" if contract.binary_head else "")),
        Decision("loss", contract.loss, "config" if config.train.loss != "auto" else
                 f"natural loss of a {contract.problem_type} head"),
        Decision("targets", f"{contract.target_dtype} {contract.target_shape}",
                 "what the loss reads"),
        Decision("decision_rule", contract.decision_rule, f"{contract.activation} outputs"),
        Decision("model", model.name_or_path, model.description),
        Decision("head", "new" if not model.is_classifier else (
            "replaced" if config.model.reinit_head else "kept"),
            "the checkpoint has no classifier head" if not model.is_classifier else
            f"the checkpoint is a classifier with {model.head_width} labels"),
        *_head_decisions(config, new_head=not model.is_classifier or config.model.reinit_head,
                         activation=contract.activation),
        Decision("embedding_rows", *embedding_rows(config)),
        Decision("objective", f"{objective[0]} ({objective[1]})",
                 "config" if config.search and config.search.objective else
                 f"default for a {s.task} task"),
    ]
    if contract.uses_thresholds:
        metric, why = threshold_metric(config, objective)
        per = " per label" if contract.decision_rule is DecisionRule.PER_LABEL_THRESHOLDS else ""
        out.append(Decision("thresholds", f"max {'F1' if metric == 'f1' else metric}{per} "
                            "on validation", why))
    if contract.class_weights:
        out.append(Decision("class_weights", list(contract.class_weights),
                            f"train.class_weights={config.train.class_weights!r}"))
    if contract.pos_weight:
        out.append(Decision("pos_weight", list(contract.pos_weight),
                            f"train.pos_weight={config.train.pos_weight!r}"))
    if contract.label_smoothing:
        out.append(Decision("label_smoothing", contract.label_smoothing,
                            f"mode {contract.label_smoothing_mode}"))
    if data.carve is not None:
        out.append(Decision("valid", f"{data.carve.n_valid} rows carved from train",
                            f"{data.carve.method}, seed {data.carve.seed}"))
    return out


def _compute_decisions(config: RunConfig, compute: Compute | None,
                       facts: DeviceFacts | None) -> list[Decision]:
    """Device, precision and, under torchrun, the processes and the batch they share."""
    t = config.train
    if compute is None:  # labelwise check: the machine is not asked
        return [Decision("device", t.device, "resolved when training starts (auto: CUDA, "
                         "else MPS, else the CPU)" if t.device == "auto" else
                         f"config (train.device: {t.device}), checked when training starts")]
    out = [Decision("device", compute.device, compute.device_reason),
           Decision("precision", compute.precision, compute.precision_reason)]
    if facts is not None and facts.distributed:
        n = facts.world_size
        out.append(Decision("processes", n, f"torchrun / accelerate launch (WORLD_SIZE={n}): "
                            "data-parallel, process 0 writes the output dir, logs and "
                            "report"))
        steps = t.gradient_accumulation_steps
        out.append(Decision("effective_batch", t.batch_size * n * steps,
                            f"train.batch_size {t.batch_size} in each of {n} processes x "
                            f"{t.gradient_accumulation_steps} accumulation step(s)"))
        if t.length_bucketing:
            out.append(Decision("length_bucketing", f"on, batches dealt to {n} processes",
                                "every process draws the same seeded length-bucketed "
                                f"batches and trains one in {n}"))
    return out


def embedding_rows(config: RunConfig) -> tuple[EmbeddingRows, str]:
    """Which word-embedding rows training updates, and why (see
    ``labelwise.training.embedding_rows``)."""
    t = config.train
    if t.embedding_rows == "all":
        return EmbeddingRows.ALL, "config (train.embedding_rows: all)"
    if t.weight_decay > 0:
        return EmbeddingRows.ALL, (f"weight decay {t.weight_decay} moves the rows no batch "
                                   "uses too")
    return (EmbeddingRows.SEEN, "no other row gets a gradient, and AdamW at weight "
            "decay 0 leaves them as they are")


_PRIOR = {"sigmoid": "log-odds of each label's training frequency",
          "softmax": "log of each class's training frequency",
          "identity": "each target's training mean"}


def head_bias(config: RunConfig, activation: str) -> tuple[HeadBias, str]:
    """Where a new head's output bias starts, and why (see ``labelwise.training.heads``).

    ``auto`` starts sigmoid and regression heads at the training prior: a sigmoid head at
    zero bias spends its first epoch pushing every label from p = 0.5 down to its frequency
    (GoEmotions: macro-F1 0.09 against 0.36 after one epoch). A softmax head keeps the
    model's init: uniform is close to the prior in loss, and the prior starts a rare class
    so far below the rest that a short fine-tune may never predict it (TREC, 2 epochs: the
    1.5% ABBR class had recall 0 in 2 of 3 seeds from the prior, 1.0 in all 3 from zero).
    """
    chosen = config.model.head_bias
    if chosen == "prior":
        return HeadBias.PRIOR, f"config (model.head_bias: prior): {_PRIOR[activation]}"
    if chosen == "model":
        return HeadBias.MODEL, "config (model.head_bias: model)"
    if activation == "softmax":
        return HeadBias.MODEL, ("softmax head: the prior would start rare classes far below "
                              "the rest")
    return HeadBias.PRIOR, _PRIOR[activation]


def _head_decisions(config: RunConfig, *, new_head: bool, activation: str) -> list[Decision]:
    """How the new head starts and learns (nothing to decide for a checkpoint's own head)."""
    if not new_head:
        return []
    t = config.train
    bias = Decision("head_bias", *head_bias(config, activation))
    rate = (Decision("head_learning_rate", t.head_learning_rate,
                     f"config; the encoder trains at {t.learning_rate:g}")
            if t.head_learning_rate is not None else
            Decision("head_learning_rate", t.learning_rate, "same as train.learning_rate"))
    return [bias, rate]


def check(config: Any = None, *, train: Any = None, valid: Any = None, test: Any = None,
          text_column: str | None = None, text_pair_column: str | None = None,
          label_columns: str | Sequence[str] | None = None, task: str | None = None,
          model: str | None = None, output_dir: str | Path | None = None,
          search: bool | None = None, source: str | None = None) -> Plan:
    """Every check ``train`` (or ``tune``, with ``search``) would run, without starting it:
    the Python twin of ``labelwise check``. Loads no weights and writes nothing.

    Args:
        config: A :class:`RunConfig`, a dict, a YAML/TOML path, or the training data.
        train, valid, test, text_column, text_pair_column, label_columns, task, model,
            output_dir: As for :func:`labelwise.train`.
        search: Check the search too (default: when the config has a ``search`` section).

    Returns:
        The resolved :class:`Plan`: ``plan.lines()`` are its decisions, ``plan.findings``
        its warnings and info.

    Raises:
        PreflightError: One or more error findings; ``err.findings`` lists all of them.
    """
    cfg, source = config_from_call(config, locals(), source=source)
    return preflight(cfg, source=source, search=cfg.search is not None if search is None
                     else search)

"""labelwise inside an existing Transformers script: ``guard_trainer``, ``LabelwiseCallback``
and ``check_targets``.

A user who already has a ``Trainer`` (a model from ``from_pretrained(..., num_labels=2)``, a
``datasets.Dataset``, ``TrainingArguments``, maybe a ``compute_loss`` of their own and a
``hyperparameter_search``) gets labelwise's checks without rewriting anything:

* :func:`guard_trainer` reads the model config, the label column of every split, the
  arguments and a custom loss, infers the label schema, audits it, derives what head and loss
  the labels need and refuses every mismatch before any step. It wraps the data collator so
  every batch's targets are checked (:func:`~labelwise.training.guard.check_batch`), and
  checks each trial's model and search-space sample in ``hyperparameter_search``.
* :class:`LabelwiseCallback` runs the same checks at ``on_train_begin``, for code that
  cannot reach the trainer object.
* :func:`check_targets` is the check for a hand-written PyTorch loop.

How Transformers reads targets (``BertForSequenceClassification`` and its siblings): with no
``problem_type``, ``num_labels == 1`` trains regression with MSE, integer targets train
cross-entropy, and any other targets train multi-label BCE, and the chosen ``problem_type``
is written into the model config for good. The checks below follow that rule.
"""

from __future__ import annotations

import difflib
import inspect
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from labelwise.data.auditing import audit_frames
from labelwise.errors import ContractError, LabelError, LabelwiseError, SearchSpaceError
from labelwise.findings import Finding, Findings, Where
from labelwise.labels.schema import LabelSchema, infer_schema
from labelwise.plan.contract import ContractOptions, HeadContract, derive_contract
from transformers import Trainer, TrainerCallback

from labelwise.training.guard import check_batch

__all__ = ["guard_trainer", "LabelwiseCallback", "GuardError", "GuardWarning",
           "inspect_trainer", "TrainerCheck", "check_sample", "read_targets"]

ROW_KEY = "__labelwise_row__"
LABEL_CANDIDATES = ("labels", "label", "label_ids")
SINGLE, MULTI, REGRESSION = ("single_label_classification", "multi_label_classification",
                             "regression")
# Search-space keys that change what the labels mean or how they reach the loss.
ENCODING_KEYS = ("num_labels", "problem_type", "id2label", "label2id", "label_names")
_DEFAULT_NAME = re.compile(r"LABEL_\d+")


class GuardError(LabelwiseError, ValueError):
    """The trainer's model, data, arguments or loss do not fit the labels.

    ``findings`` holds every error found (one line each); ``str(err)`` lists them all.
    """

    default_code = "LW230"

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = Findings(findings)
        errors = self.findings.errors
        first = errors[0]
        if len(errors) == 1:
            super().__init__(first.message, where=str(first.where), fix=first.fix,
                             code=first.code)
        else:
            super().__init__(f"{len(errors)} problems: " + "; ".join(
                f"({i}) {f.render()}" for i, f in enumerate(errors, 1)), code=first.code)


class GuardWarning(UserWarning):
    """A setup that trains, but not as the data says (default label names, a class absent
    from the evaluation split, empty label sets)."""


# -- reading a label column --------------------------------------------------------------


@dataclass(frozen=True)
class _Targets:
    """One split's label column as the model will receive it."""

    split: str
    column: str
    kind: str  # "scalar", "rows", "id_lists", "strings" or "ragged"
    dtype: str  # "int", "float", "bool" or "str"
    values: np.ndarray  # [n] or [n, W] (float64 or int64); empty for id_lists / ragged
    missing: tuple[int, ...] = ()
    names: tuple[str, ...] | None = None  # ClassLabel names
    raw: list[Any] = field(default_factory=list, repr=False)
    text: list[str] | None = field(default=None, repr=False)
    text_column: str = "text"

    @property
    def width(self) -> int | None:
        return int(self.values.shape[1]) if self.kind == "rows" else None

    def where(self, rows: Sequence[int] = (), value: Any = None, detail: str = "") -> Where:
        return Where.at(split=self.split, column=self.column, rows=rows, value=value,
                        detail=detail)


def _is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets") and hasattr(obj, "features")


def _columns(dataset: Any) -> list[str]:
    if _is_hf_dataset(dataset):
        return list(dataset.column_names)
    try:
        first = dataset[0]
    except Exception:  # noqa: BLE001 - an iterable dataset or one that cannot be indexed
        return []
    return list(first) if isinstance(first, Mapping) else []


def label_column_of(dataset: Any, label_names: Sequence[str] | None = None) -> str | None:
    """The column a Trainer feeds as ``labels``: ``label_names[0]``, else the first of
    ``labels``, ``label``, ``label_ids`` that exists."""
    have = _columns(dataset)
    for name in [*(label_names or ()), *LABEL_CANDIDATES]:
        if name in have:
            return name
    return None


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def _feature_info(dataset: Any, column: str) -> tuple[str | None, tuple[str, ...] | None, bool]:
    """(dtype word, ClassLabel names, is a list of ClassLabel ids) from ``features``."""
    if not _is_hf_dataset(dataset):
        return None, None, False
    feature = dataset.features.get(column)
    kind = type(feature).__name__
    if kind == "ClassLabel":
        return "int", tuple(feature.names), False
    inner = getattr(feature, "feature", None)
    while type(inner).__name__ in ("Sequence", "List", "LargeList"):
        inner = getattr(inner, "feature", None)
    if kind in ("Sequence", "List", "LargeList") and type(inner).__name__ == "ClassLabel":
        return "int", tuple(inner.names), True
    dtype = str(getattr(inner if inner is not None else feature, "dtype", ""))
    if dtype.startswith(("int", "uint")):
        return "int", None, False
    if dtype.startswith("float"):
        return "float", None, False
    if dtype == "bool":
        return "bool", None, False
    return None, None, False


def _text_of(dataset: Any, label: str) -> tuple[list[str] | None, str]:
    """Texts for the audit: a string column, else the token ids (same tokens, same text)."""
    if not _is_hf_dataset(dataset):
        return None, "text"
    for name, feature in dataset.features.items():
        if name != label and str(getattr(feature, "dtype", "")) in ("string", "large_string"):
            return [str(t) if t is not None else "" for t in
                    dataset.data.column(name).to_pylist()], name
    if "input_ids" in dataset.column_names:
        return [" ".join(map(str, ids)) if ids else "" for ids in
                dataset.data.column("input_ids").to_pylist()], "input_ids"
    return None, "text"


def read_targets(dataset: Any, column: str, *, split: str) -> _Targets:
    """A split's label column: its form, dtype, values and missing rows."""
    if _is_hf_dataset(dataset):
        raw = dataset.data.column(column).to_pylist()
    else:
        raw = [_plain(dataset[i][column]) for i in range(len(dataset))]
    declared, names, id_lists = _feature_info(dataset, column)
    text, text_column = _text_of(dataset, column)
    missing = [i for i, v in enumerate(raw) if v is None]
    present = [v for v in raw if v is not None]
    base = dict(split=split, column=column, missing=tuple(missing), names=names, raw=raw,
                text=text, text_column=text_column)
    if id_lists:
        return _Targets(kind="id_lists", dtype="int", values=np.zeros(0), **base)
    lists = [isinstance(v, (list, tuple)) for v in present]
    if any(lists) and not all(lists) or any(lists) and len({len(v) for v in present}) > 1:
        return _Targets(kind="ragged", dtype=declared or "float", values=np.zeros(0), **base)
    filler: Any = [0] * len(present[0]) if present and lists[0] else 0
    if any(isinstance(v, str) for v in present):
        return _Targets(kind="strings", dtype="str", values=np.zeros(0), **base)
    arr = np.asarray([v if v is not None else filler for v in raw])
    if arr.dtype == object or arr.dtype.kind in "USV":
        return _Targets(kind="ragged", dtype=declared or "float", values=np.zeros(0), **base)
    dtype = declared or ("bool" if arr.dtype == bool else
                         "int" if np.issubdtype(arr.dtype, np.integer) else "float")
    values = arr.astype(np.float64 if dtype == "float" else np.int64)
    kind = "rows" if values.ndim == 2 else "scalar"
    return _Targets(kind=kind, dtype=dtype, values=values, **base)


# -- what the loss will be -----------------------------------------------------------------


_LOSS_PATTERNS = (("bce", re.compile(r"BCEWithLogitsLoss|binary_cross_entropy|BCELoss")),
                  ("ce", re.compile(r"CrossEntropyLoss|(?<!binary_)cross_entropy\(|NLLLoss")),
                  ("mse", re.compile(r"MSELoss|mse_loss|L1Loss|HuberLoss")))
_PROBLEM_OF_LOSS = {"bce": MULTI, "ce": SINGLE, "mse": REGRESSION}


def _loss_in_source(fn: Any) -> str | None:
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return None
    found = {kind for kind, pattern in _LOSS_PATTERNS if pattern.search(source)}
    return found.pop() if len(found) == 1 else None


def custom_loss_of(trainer: Any) -> tuple[str | None, str]:
    """The loss a trainer's own ``compute_loss`` / ``compute_loss_func`` uses, if it names
    one: (``"bce"``, ``"ce"``, ``"mse"`` or ``None``, where it was read)."""
    contract = getattr(trainer, "contract", None)
    if isinstance(contract, HeadContract):  # LabelwiseTrainer: the contract's own loss
        return {"bce_with_logits": "bce", "cross_entropy": "ce", "mse": "mse"}.get(
            contract.loss), "LabelwiseTrainer"
    func = getattr(trainer, "compute_loss_func", None)
    if func is not None and not getattr(func, "_labelwise", False):
        return _loss_in_source(func), "compute_loss_func"
    method = type(trainer).compute_loss
    if method is not Trainer.compute_loss:
        return _loss_in_source(method), f"{type(trainer).__name__}.compute_loss"
    return None, ""


# -- the setup check -----------------------------------------------------------------------


@dataclass(frozen=True)
class TrainerCheck:
    """What the guard read and derived: the schema, the contract, and how targets reach the
    loss. ``findings`` holds the warnings (errors are raised)."""

    schema: LabelSchema
    contract: HeadContract
    label_column: str
    problem_type: str
    loss_source: str
    findings: Findings


def _f(code: str, what: str, where: Where | str, fix: str, level: str = "error") -> Finding:
    if isinstance(where, str):
        where = Where(detail=where)
    return Finding(code, level, what, where, fix)  # type: ignore[arg-type]


def _effective_problem(num_labels: int, problem_type: str | None, loss: str | None,
                       dtype: str) -> str:
    if loss is not None:
        return _PROBLEM_OF_LOSS[loss]
    if problem_type:
        return problem_type
    if num_labels == 1:
        return REGRESSION
    return SINGLE if dtype == "int" else MULTI


def _head(num_labels: int, problem: str, source: str) -> str:
    how = {SINGLE: "cross-entropy", MULTI: "BCE", REGRESSION: "MSE"}[problem]
    return f"{how}, {source}"


def _form_findings(t: _Targets, k: int, problem: str, explicit: str | None,
                   loss: str | None, source: str) -> list[Finding]:
    """Every way this split's targets cannot reach this head and loss."""
    out: list[Finding] = []
    head = _head(k, problem, source)
    if t.missing:
        out.append(_f("LW237", f"{len(t.missing)} row(s) have no target (None)",
                      t.where(t.missing), "fill in the labels or drop those rows"))
    if t.kind == "id_lists":
        out.append(_f("LW238", "targets are lists of class ids, which no loss of "
                      "a sequence-classification head takes", t.where(),
                      f"turn each list into a multi-hot float row of width {len(t.names or ())} "
                      f"(e.g. map with np.eye({len(t.names or ())})[ids].sum(0)) and set "
                      "problem_type='multi_label_classification'"))
        return out
    if t.kind == "strings":
        names = sorted({str(x) for x in t.raw if x is not None})
        out.append(_f("LW238", f"targets are strings ({', '.join(map(repr, names[:5]))}"
                      f"{', …' if len(names) > 5 else ''}), which no loss takes",
                      t.where(), f"encode them as class ids: dataset.class_encode_column("
                      f"'{t.column}') (and pass its names as id2label)"))
        return out
    if t.kind == "ragged":
        sizes = sorted({len(v) if isinstance(v, (list, tuple)) else 1 for v in t.raw
                        if v is not None})
        out.append(_f("LW238", f"targets mix scalars and rows, or rows of widths {sizes}",
                      t.where(), "give every row the same form: one class id, or one 0/1 "
                      "position per label"))
        return out
    v = t.values
    present = np.ones(len(v), dtype=bool)
    present[list(t.missing)] = False
    if t.dtype == "float":
        flat = v.reshape(len(v), -1)
        bad = [i for i in np.flatnonzero(~np.isfinite(flat).all(axis=1)) if present[i]]
        if bad:
            out.append(_f("LW237", f"{len(bad)} target(s) are NaN or infinite",
                          t.where(bad), "fix or drop those rows"))
            return out
    if t.dtype == "bool":
        out.append(_f("LW238", "targets are bools, which reach the loss as a bool tensor",
                      t.where(), "cast the column to int64 class ids (or float32 for BCE)"))
        return out
    ok = v[present]
    if problem == SINGLE:
        if t.kind == "rows":
            width = t.width
            if t.dtype == "int" and explicit is None and loss is None:
                what = (f"integer multi-hot / one-hot targets of width {width} with a "
                        f"{k}-logit head: Transformers reads integer targets as single-label "
                        "class ids, and cross-entropy fails on the shape")
                fix = ("cast the targets to float32 (datasets: cast_column('"
                       f"{t.column}', Sequence(Value('float32')))) to train multi-label BCE")
                if width != k:
                    fix += f", and set num_labels={width}"
            else:
                what = (f"targets are rows of width {width}, but the loss is cross-entropy "
                        f"({head}), which needs one class id per row")
                fix = ("store class ids (argmax of each one-hot row), or train multi-label "
                       "with float targets and problem_type='multi_label_classification'")
            out.append(_f("LW234", what, t.where(), fix))
            return out
        if t.dtype == "float":
            integral = bool(np.all(ok == np.round(ok)))
            what = ("targets are floats" + (" holding class ids" if integral else "") +
                    f", but cross-entropy ({head}) needs int64 class ids")
            out.append(_f("LW238", what, t.where(),
                          f"cast the column to int64 (datasets: cast_column('{t.column}', "
                          "Value('int64')))" if integral else
                          "set problem_type='regression' for a numeric target"))
            return out
        high = [i for i in np.flatnonzero((v >= k) | (v < 0)) if present[i]]
        if high:
            values = sorted({int(v[i]) for i in high})
            top = int(v[present].max())
            stray = ", ".join(map(str, values[:5]))
            out.append(_f("LW231", f"label id(s) {stray} cannot be held by a head of "
                          f"num_labels={k} (ids must be in [0, {k - 1}]); the data has "
                          f"{top + 1} classes", t.where(high, values[0]),
                          f"set num_labels={top + 1} (from_pretrained(..., "
                          f"num_labels={top + 1})), or drop the stray class (rows with "
                          f"{stray})"))
        return out
    if problem == MULTI:
        if t.kind == "scalar":
            if k >= 2 and t.dtype == "float" and np.isin(ok, (0.0, 1.0)).all() and \
                    explicit is None and loss is None:
                out.append(_f("LW233", f"targets are float 0/1 class ids with num_labels={k}: "
                              "Transformers reads float targets as multi-label, stores "
                              "problem_type='multi_label_classification' in the model config "
                              f"for good, then fails on the shape ([B] targets, [B, {k}] "
                              "logits)", t.where(), f"cast the column to int64 class ids "
                              f"(datasets: cast_column('{t.column}', Value('int64')))"))
            elif k == 1:
                out.append(_f("LW238", "targets have shape [B], but a 1-logit BCE head "
                              "has logits [B, 1]", t.where(), "store each target as a "
                              "one-element float list ([0.0] / [1.0]) so batches are [B, 1]"))
            else:
                out.append(_f("LW238", f"targets are one {t.dtype} per row, but BCE ({head}) "
                              f"needs float rows of width {k}", t.where(),
                              "store one 0/1 float per label (multi-hot), or pass class ids "
                              "as int64 with problem_type='single_label_classification'"))
            return out
        width = t.width or 0
        if width != k:
            kind = "one-hot" if len(ok) and np.all(ok.sum(axis=1) == 1) else "multi-hot"
            if width > k:
                hot = [i for i in np.flatnonzero((v[:, k:] != 0).any(axis=1)) if present[i]]
                cols = f"column {k}" if width == k + 1 else f"columns {k}..{width - 1}"
                where = t.where(hot, detail=f"hot in {cols}" if hot else "")
            else:
                hot, where = [], t.where()
            out.append(_f("LW230", f"{kind} targets have width {width} but the model has "
                          f"num_labels={k} ({head}): BCE needs one target column per logit",
                          where, f"set num_labels={width} (from_pretrained(..., "
                          f"num_labels={width})), or drop the stray class"
                          + (f" (the {len(hot)} row(s) hot beyond column {k - 1})" if hot
                             else "")))
            return out
        if t.dtype == "int":
            out.append(_f("LW234", f"integer multi-hot targets with a multi-label head "
                          f"({head}): BCE needs float targets", t.where(),
                          f"cast the targets to float32 (datasets: cast_column('{t.column}', "
                          "Sequence(Value('float32'))))"))
            return out
        bad = [i for i in np.flatnonzero(((v < 0) | (v > 1)).any(axis=1)) if present[i]]
        if bad:
            out.append(_f("LW238", f"targets hold values outside [0, 1], but the loss is "
                          f"BCE ({head})", t.where(bad), "set problem_type='regression' for "
                          "numeric targets, or scale them to [0, 1]"))
        return out
    # regression
    width = t.width or 1
    if t.dtype == "int" or (explicit is None and loss is None and t.kind == "scalar"
                            and np.isin(ok, (0.0, 1.0)).all()):
        n = int(ok.max()) + 1 if len(ok) else 2
        n = max(n, 2)
        word = "integer class ids" if t.dtype == "int" else "float 0/1 labels"
        if explicit is None and loss is None:
            what = (f"num_labels=1 with {word}: Transformers trains regression with MSE on "
                    "them, silently, instead of classification")
            fix = (f"set num_labels={n} (from_pretrained(..., num_labels={n})) to classify; "
                   "for a regression target, pass float values with "
                   "problem_type='regression'")
        else:
            what = f"targets are {word}, but the loss is MSE ({head}), which needs floats"
            fix = (f"cast the column to float32 for regression, or set num_labels={n} and "
                   "problem_type='single_label_classification' to classify")
        out.append(_f("LW232", what, t.where(), fix))
        return out
    if width != k:
        out.append(_f("LW230", f"regression targets have width {width} but the model has "
                      f"num_labels={k} ({head})", t.where(),
                      f"set num_labels={width}, one output per target"))
    return out


def _schema_for(t: _Targets, k: int, problem: str) -> tuple[LabelSchema, ContractOptions]:
    """The schema and contract options that describe the targets as this head reads them."""
    if problem == SINGLE:
        classes = list(t.names) if t.names and len(t.names) == k else list(range(k))
        task = "binary" if k == 2 else "multiclass"
        return infer_schema(_single_values(t, classes), columns=t.column, task=task,
                            classes=classes), ContractOptions()
    if problem == MULTI:
        if k == 1:
            return infer_schema([0, 1], columns=t.column, task="binary", classes=[0, 1]), \
                ContractOptions(binary_head="one_logit")
        values = [list(map(int, row)) for row in t.values]
        return infer_schema(values, columns=t.column, task="multilabel"), ContractOptions()
    if t.kind == "rows":
        return infer_schema([list(map(float, r)) for r in t.values], columns=t.column,
                            task="regression"), ContractOptions()
    return infer_schema([float(x) for x in t.values], columns=t.column, task="regression"), \
        ContractOptions()


def _single_values(t: _Targets, classes: list[Any]) -> list[Any]:
    miss = set(t.missing)
    return [None if i in miss else classes[int(x)] for i, x in enumerate(t.values)]


def _audit_values(t: _Targets, problem: str, schema: LabelSchema) -> list[Any]:
    miss = set(t.missing)
    if problem == SINGLE:
        return _single_values(t, list(schema.classes))
    if schema.task.value == "binary":  # one-logit: [[0.0], [1.0]] rows -> 0 / 1
        return [None if i in miss else int(r[0]) for i, r in enumerate(t.values)]
    if problem == MULTI:
        return [None if i in miss else list(map(int, r)) for i, r in enumerate(t.values)]
    if t.kind == "rows":
        return [None if i in miss else list(map(float, r)) for i, r in enumerate(t.values)]
    return [None if i in miss else float(x) for i, x in enumerate(t.values)]


def _audit(train: _Targets, evals: Sequence[_Targets], problem: str,
           schema: LabelSchema) -> list[Finding]:
    import pandas as pd

    def frame(t: _Targets) -> Any:
        texts = t.text if t.text is not None else [f"row {i}" for i in range(len(t.raw))]
        return pd.DataFrame({"__text__": texts, t.column: _audit_values(t, problem, schema)})

    out: dict[str, Finding] = {}
    pairs = [({"train": frame(train), "valid": frame(e)}, e.split) for e in evals] or [
        ({"train": frame(train)}, "")]
    for frames, name in pairs:
        for finding in audit_frames(frames, text_column="__text__",
                                    label_columns=[train.column], schema=schema):
            where = finding.where
            if where.column == "__text__":
                where = Where(**{**where.__dict__, "column": train.text_column})
            if where.split == "valid":  # audit_frames' name for the eval split
                where = Where(**{**where.__dict__, "split": name})
            finding = Finding(finding.code, finding.level, finding.message, where,
                              finding.fix)
            out.setdefault(finding.render(), finding)
    return list(out.values())


def _config_findings(config: Any, t: _Targets, k: int) -> list[Finding]:
    names = getattr(config, "id2label", None) or {}
    labels = [str(names[i]) for i in sorted(names)] if names else []
    if not t.names or len(t.names) != k or not labels:
        return []
    if all(_DEFAULT_NAME.fullmatch(n) for n in labels) and list(t.names) != labels:
        mapping = ", ".join(f"{i}: {n!r}" for i, n in enumerate(t.names))
        return [_f("LW236", f"id2label is left at {', '.join(labels[:3])}"
                   f"{'…' if len(labels) > 3 else ''} while the dataset names the classes "
                   f"{list(t.names)}: a saved model and pipeline() will say LABEL_0",
                   t.where(), f"pass id2label={{{mapping}}} and the matching label2id to "
                   "from_pretrained", level="warning")]
    if labels != list(t.names):
        return [_f("LW236", f"id2label {labels} names the classes differently from the "
                   f"dataset's ClassLabel {list(t.names)}", t.where(),
                   "pass the dataset's names as id2label (in id order)", level="warning")]
    return []


class _Reader:
    """Reads each dataset's targets once (a search checks the same data every trial)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, str, str], _Targets] = {}

    def __call__(self, dataset: Any, column: str, split: str) -> _Targets:
        key = (id(dataset), column, split)
        if key not in self._cache:
            self._cache[key] = read_targets(dataset, column, split=split)
        return self._cache[key]


def _evals(eval_dataset: Any) -> list[tuple[str, Any]]:
    if eval_dataset is None:
        return []
    if isinstance(eval_dataset, Mapping):
        return [(f"eval:{name}", ds) for name, ds in eval_dataset.items()]
    return [("eval", eval_dataset)]


def _check(*, model: Any, args: Any, train_dataset: Any, eval_dataset: Any = None,
           loss: str | None = None, loss_source: str = "", label_column: str | None = None,
           bce_label_smoothing: bool = False, reader: _Reader | None = None,
           where: str = "") -> TrainerCheck:
    """The whole setup check; raise :class:`GuardError` listing every error."""
    reader = reader or _Reader()
    config = getattr(model, "config", None)
    label_names = getattr(args, "label_names", None)
    column = label_column or label_column_of(train_dataset, label_names)
    prefix = f"{where}, " if where else ""
    if column is None:
        have = ", ".join(_columns(train_dataset)) or "none readable"
        raise GuardError([_f("LW241", "the training dataset has no label column (labels, "
                             "label or label_ids)", f"{prefix}split 'train'; columns: {have}",
                             "name the column with guard_trainer(trainer, label_column=...) "
                             "or TrainingArguments(label_names=[...])")])
    if not getattr(config, "num_labels", None):
        raise GuardError([_f("LW241", f"the model ({type(model).__name__}) has no "
                             "config.num_labels: the guard needs a sequence-classification "
                             "head", where, "use an AutoModelForSequenceClassification model")])
    train = reader(train_dataset, column, "train")
    evals = [reader(ds, label_column_of(ds, [column]) or column, name)
             for name, ds in _evals(eval_dataset) if ds is not train_dataset]
    k = int(getattr(config, "num_labels", 0) or 0)
    explicit = getattr(config, "problem_type", None)
    problem = _effective_problem(k, explicit, loss, train.dtype)
    source = (f"from {loss_source}" if loss is not None else
              f"problem_type='{explicit}'" if explicit else
              f"Transformers' default for {train.dtype} targets")
    errors: list[Finding] = []
    for t in [train, *evals]:
        errors.extend(_form_findings(t, k, problem, explicit, loss, source))
    smoothing = float(getattr(args, "label_smoothing_factor", 0.0) or 0.0)
    if smoothing and problem == MULTI and not bce_label_smoothing:
        errors.append(_f("LW235", f"label_smoothing_factor={smoothing} on a multi-label "
                         "problem: Transformers switches it off with only a warning (or "
                         "applies cross-entropy smoothing to BCE targets)",
                         f"{prefix}TrainingArguments.label_smoothing_factor",
                         "remove label_smoothing_factor, or pass "
                         "guard_trainer(trainer, bce_label_smoothing=True) to smooth the BCE "
                         "targets (y * (1 - s) + s / 2)"))
    if smoothing and problem == REGRESSION:
        errors.append(_f("LW235", f"label_smoothing_factor={smoothing} on a regression "
                         "problem: there are no classes to smooth",
                         f"{prefix}TrainingArguments.label_smoothing_factor",
                         "remove label_smoothing_factor"))
    if errors:
        if where:
            errors = [Finding(e.code, e.level, e.message,
                              Where(**{**e.where.__dict__,
                                       "detail": ", ".join(x for x in (e.where.detail, where)
                                                           if x)}), e.fix) for e in errors]
        raise GuardError(errors)
    schema, options = _schema_for(train, k, problem)
    if smoothing and problem == MULTI:
        options = ContractOptions(binary_head=options.binary_head, label_smoothing=smoothing,
                                  label_smoothing_mode="bce")
    notes: list[Finding] = []
    try:
        contract = derive_contract(schema, options)
        notes = _audit(train, evals, problem, schema)
    except (ContractError, LabelError) as err:
        raise GuardError([err.to_finding(split="train")]) from None
    notes.extend(_config_findings(config, train, k))
    bad = [n for n in notes if n.level == "error"]
    if bad:
        raise GuardError(bad)
    shown = [n for n in notes if n.level == "warning" or n.code == "LW108"]
    for note in shown:
        warnings.warn(note.render(), GuardWarning, stacklevel=3)
    return TrainerCheck(schema, contract, column, problem, source, Findings(notes))


def inspect_trainer(trainer: Any, *, label_column: str | None = None,
                    bce_label_smoothing: bool = False) -> TrainerCheck:
    """Run the setup check of :func:`guard_trainer` without changing the trainer.

    Raises:
        GuardError: Every mismatch between the model, the data, the arguments and the loss.
    """
    loss, source = custom_loss_of(trainer)
    return _check(model=trainer.model, args=trainer.args, train_dataset=trainer.train_dataset,
                  eval_dataset=trainer.eval_dataset, loss=loss, loss_source=source,
                  label_column=label_column, bce_label_smoothing=bce_label_smoothing)


# -- the per-batch check -------------------------------------------------------------------


class GuardedCollator:
    """A data collator that checks every batch's targets against the contract."""

    _labelwise = True

    def __init__(self, collator: Callable[[list[Any]], Any], contract: HeadContract,
                 label_key: str = "labels") -> None:
        self.collator = collator
        self.contract = contract
        self.label_key = label_key
        self.batches = 0

    def __call__(self, features: list[Any]) -> Any:
        rows = None
        if features and isinstance(features[0], dict) and ROW_KEY in features[0]:
            rows = [f.pop(ROW_KEY) for f in features]
        batch = self.collator(features)
        labels = batch.get("labels", batch.get(self.label_key)) if hasattr(batch, "get") \
            else None
        if labels is not None:
            if (self.contract.task.value == "regression" and self.contract.target_width == 1
                    and getattr(labels, "ndim", 0) == 1):
                labels = labels.reshape(-1, 1)
            check_batch(self.contract, {"labels": labels, "row_ids": rows},
                        batch_index=self.batches)
        self.batches += 1
        return batch


def _tag_rows(dataset: Any) -> None:
    """Put each row's dataset index into the features the collator receives (the collator
    takes it out again), so a failing batch names dataset rows."""
    get = getattr(dataset, "__getitems__", None)
    if get is None or getattr(get, "_labelwise", False) or not _is_hf_dataset(dataset):
        return

    def tagged(keys: list[int]) -> list[Any]:
        rows = get(keys)
        for key, row in zip(keys, rows, strict=True):
            if isinstance(row, dict):
                row[ROW_KEY] = int(key)
        return rows

    tagged._labelwise = True  # type: ignore[attr-defined]
    dataset.__getitems__ = tagged


def _guard_loader(prepared: Any, contract: HeadContract, key: str, *,
                  tag_rows: bool = True) -> Any:
    # accelerate's prepared loader delegates to the DataLoader it wraps
    loader = getattr(prepared, "base_dataloader", prepared)
    collate = getattr(loader, "collate_fn", None)
    if collate is None or isinstance(collate, GuardedCollator):
        return prepared
    if type(collate).__name__ == "RemoveColumnsCollator":
        # Trainer removes unknown columns from the features first: guard the inner collator.
        if not isinstance(collate.data_collator, GuardedCollator):
            collate.data_collator = GuardedCollator(collate.data_collator, contract, key)
        return prepared
    loader.collate_fn = GuardedCollator(collate, contract, key)
    if tag_rows:
        _tag_rows(getattr(loader, "dataset", None))
    return prepared


# -- the callback --------------------------------------------------------------------------


def _trial_label(trial: Any) -> str:
    number = getattr(trial, "number", None)
    if number is not None:
        return f"trial {number}"
    return "trial" if trial is None else f"trial {dict(trial)}"


class LabelwiseCallback(TrainerCallback):
    """The guard's checks at ``on_train_begin``, for code that never holds the Trainer.

    Reads the model, the arguments and the training dataloader's dataset (and
    ``eval_dataset`` when given), raises :class:`GuardError` before step 1, and wraps the
    training dataloader's collator so every batch's targets are checked.
    """

    def __init__(self, *, label_column: str | None = None, eval_dataset: Any = None,
                 bce_label_smoothing: bool = False, check_batches: bool = True) -> None:
        self.label_column = label_column
        self.eval_dataset = eval_dataset
        self.bce_label_smoothing = bce_label_smoothing
        self.check_batches = check_batches
        self.loss: str | None = None
        self.loss_source = ""
        self.reader = _Reader()
        self.result: TrainerCheck | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        loader = kwargs.get("train_dataloader")
        dataset = getattr(loader, "dataset", None)
        model = kwargs.get("model")
        if dataset is None or model is None:
            return
        trial = getattr(state, "trial_name", None)
        self.result = _check(model=model, args=args, train_dataset=dataset,
                             eval_dataset=self.eval_dataset, loss=self.loss,
                             loss_source=self.loss_source, label_column=self.label_column,
                             bce_label_smoothing=self.bce_label_smoothing, reader=self.reader,
                             where=f"trial {trial}" if trial else "")
        if self.check_batches:
            # Row ids only on the copy Trainer makes when it removes unused columns, never on
            # the user's own dataset object.
            _guard_loader(loader, self.result.contract, self.result.label_column,
                          tag_rows=bool(getattr(args, "remove_unused_columns", False)))


# -- guard_trainer -------------------------------------------------------------------------


def _config_keys(model: Any) -> set[str]:
    config = getattr(model, "config", None)
    if config is None:
        return set()
    return set(config.to_dict()) | {k for k in dir(config) if not k.startswith("_")}


def check_sample(params: Mapping[str, Any], *, args: Any, model: Any, trial: str) -> None:
    """Refuse a search-space sample that changes the label encoding or names a key that is
    neither a ``TrainingArguments`` field nor a model config field."""
    fields = set(getattr(type(args), "__dataclass_fields__", {})) or set(vars(args))
    config = _config_keys(model)
    k = getattr(getattr(model, "config", None), "num_labels", None)
    for key, value in params.items():
        if key in ENCODING_KEYS:
            raise SearchSpaceError(
                f"{trial}: the search space sets '{key}' (= {value!r}), which changes the "
                "label encoding between trials", where=f"hp_space key '{key}'",
                fix=f"remove '{key}' from hp_space: the labels fix it"
                + (f" (num_labels={k})" if key == "num_labels" and k else ""), code="LW239")
        if key not in fields and key not in config:
            close = difflib.get_close_matches(key, sorted(fields | config), n=1)
            raise SearchSpaceError(
                f"{trial}: the search space names '{key}', which is neither a "
                "TrainingArguments field nor a model config field (Transformers only warns "
                "and trains without it)", where=f"hp_space key '{key}'",
                fix=(f"did you mean '{close[0]}'? " if close else "") +
                "rename or remove the key", code="LW239")


def guard_trainer(trainer: Any, *, label_column: str | None = None,
                  bce_label_smoothing: bool = False, check_batches: bool = True) -> Any:
    """Check a ``transformers.Trainer`` against its labels now, and guard its training.

    Reads the model config (``num_labels``, ``problem_type``, ``id2label``), the label
    column of the train and eval datasets in whatever form it is (``ClassLabel``, ints,
    floats, one-hot or multi-hot lists), the ``TrainingArguments`` and a custom
    ``compute_loss`` / ``compute_loss_func``; infers the label schema, audits it and derives
    what the head and loss must be.

    Then, while the trainer trains: every batch's targets are checked against that contract
    (with the dataset row ids in the message), and in ``hyperparameter_search`` every trial's
    model (from ``model_init``) and every ``hp_space`` sample are checked before the trial
    trains.

    Args:
        trainer: The Trainer (any subclass).
        label_column: The dataset column holding the targets (default: the first of
            ``TrainingArguments.label_names``, ``labels``, ``label``, ``label_ids``).
        bce_label_smoothing: With ``label_smoothing_factor > 0`` on a multi-label problem,
            smooth the BCE targets (``y * (1 - s) + s / 2``) instead of refusing.
        check_batches: Check every batch's targets (microseconds a batch).

    Returns:
        The same trainer.

    Raises:
        GuardError: Every mismatch found (what, where: split, column, rows, values; fix).
        SearchSpaceError: A search-space sample changes the label encoding or names an
            unknown key (raised from ``hyperparameter_search``, with the trial number).
    """
    loss, source = custom_loss_of(trainer)
    reader = _Reader()
    result = _check(model=trainer.model, args=trainer.args, train_dataset=trainer.train_dataset,
                    eval_dataset=trainer.eval_dataset, loss=loss, loss_source=source,
                    label_column=label_column, bce_label_smoothing=bce_label_smoothing,
                    reader=reader)
    trainer.labelwise_check = result
    state = {"contract": result.contract}

    def recheck(model: Any, where: str) -> TrainerCheck:
        checked = _check(model=model, args=trainer.args, train_dataset=trainer.train_dataset,
                         eval_dataset=trainer.eval_dataset, loss=loss, loss_source=source,
                         label_column=label_column, bce_label_smoothing=bce_label_smoothing,
                         reader=reader, where=where)
        state["contract"] = checked.contract
        trainer.labelwise_check = checked
        return checked

    if bce_label_smoothing and result.contract.label_smoothing_mode == "bce" and \
            result.contract.label_smoothing:
        _use_bce_smoothing(trainer, result.contract)

    call_model_init = trainer.call_model_init
    hp_setup = trainer._hp_search_setup
    first_model = trainer.model  # a search frees trainer.model between trials

    def guarded_model_init(trial: Any = None) -> Any:
        if trial is not None and getattr(trainer, "hp_search_backend", None) is not None:
            check_sample(_sample(trainer, trial), args=trainer.args,
                         model=trainer.model or first_model, trial=_trial_label(trial))
        model = call_model_init(trial)
        if trial is not None:
            recheck(model, _trial_label(trial))
        return model

    def guarded_hp_setup(trial: Any) -> None:
        if trial is not None and getattr(trainer, "hp_search_backend", None) is not None:
            check_sample(_sample(trainer, trial), args=trainer.args,
                         model=trainer.model or first_model, trial=_trial_label(trial))
        hp_setup(trial)
        if trial is not None and getattr(trainer, "hp_search_backend", None) is not None:
            recheck(trainer.model, _trial_label(trial))  # the trial's arguments, applied

    trainer.call_model_init = guarded_model_init
    trainer._hp_search_setup = guarded_hp_setup
    if check_batches:
        get_loader = trainer.get_train_dataloader

        get_eval_loader = trainer.get_eval_dataloader
        def guard(prepared: Any) -> Any:
            dataset = getattr(getattr(prepared, "base_dataloader", prepared), "dataset", None)
            users = [trainer.train_dataset, *dict(_evals(trainer.eval_dataset)).values()]
            return _guard_loader(prepared, state["contract"],
                                 trainer.labelwise_check.label_column,
                                 tag_rows=not any(dataset is d for d in users))

        def guarded_loader(*a: Any, **kw: Any) -> Any:
            return guard(get_loader(*a, **kw))

        def guarded_eval_loader(*a: Any, **kw: Any) -> Any:
            return guard(get_eval_loader(*a, **kw))

        trainer.get_train_dataloader = guarded_loader
        trainer.get_eval_dataloader = guarded_eval_loader
    return trainer


def _sample(trainer: Any, trial: Any) -> Mapping[str, Any]:
    """The hyperparameters a trial will apply (Optuna returns the same value for a name
    suggested twice, so sampling here changes nothing)."""
    if isinstance(trial, Mapping):
        return {k: v for k, v in trial.items() if k != "wandb"}
    return dict(trainer.hp_space(trial) or {})


def _use_bce_smoothing(trainer: Any, contract: HeadContract) -> None:
    from labelwise.training.losses import make_loss

    loss_fn = make_loss(contract)

    def smoothed(outputs: Any, labels: Any, num_items_in_batch: Any = None) -> Any:
        logits = outputs["logits"] if isinstance(outputs, Mapping) else outputs[0]
        return loss_fn(logits, labels.to(logits.dtype))

    smoothed._labelwise = True  # type: ignore[attr-defined]
    trainer.label_smoother = None
    trainer.compute_loss_func = smoothed



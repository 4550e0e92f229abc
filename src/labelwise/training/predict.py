"""``predict``: a saved model dir applied to new texts, labels as the original names.

Loading checks that ``labelwise.json``'s schema matches ``config.json``'s label map. Scores
are per class in schema order; decisions follow the contract: argmax (multiclass), the
tuned threshold on the positive class (binary), per-label tuned thresholds (multilabel),
identity (regression). Thresholds can be overridden per call. Rows come back in input order.

The runtime: ``torch`` (the saved PyTorch model) or ``onnx`` (the ONNX model of a dir
``labelwise export`` wrote, run by ONNX Runtime on the CPU); ``auto`` (the default) is
``onnx`` when the dir holds an ONNX model, else ``torch``. Both share the tokenization,
the length-sorted batches and the decision rule; only the forward pass differs.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from labelwise.errors import ConfigError, DataError, check_count
from labelwise.labels.schema import LabelSchema
from labelwise.outputs.model_dir import read_manifest
from labelwise.outputs.names import MANIFEST, ONNX_MODEL, TORCH_WEIGHTS, not_a_model_dir
from labelwise.plan.contract import DecisionRule, HeadContract
from labelwise.scoring.decisions import decide, scores_from_logits
from labelwise.training.tokens import encode_texts

__all__ = ["Predictions", "LoadedModel", "load_model", "predict", "RUNTIMES"]

Runtime = Literal["auto", "torch", "onnx"]
RUNTIMES = ("auto", "torch", "onnx")


@dataclass(frozen=True)
class Predictions:
    """Predictions for a list of texts.

    Attributes:
        labels: One per text: the class value (binary, multiclass), a tuple of class values
            (multilabel), a float or a tuple of floats (regression).
        scores: ``[n, k]``: class probabilities (binary: negative, positive), label
            probabilities (multilabel) or predicted values (regression).
        class_names: Column names of ``scores`` (classes or targets).
        thresholds: The thresholds applied (binary: one; multilabel: one per label).
        task: The task.
    """

    labels: list[Any]
    scores: np.ndarray
    class_names: tuple[str, ...]
    thresholds: tuple[float, ...] | None
    task: str

    def __len__(self) -> int:
        return len(self.labels)

    def to_frame(self) -> Any:
        """A DataFrame with a ``label`` column and one ``score_<name>`` column per class."""
        import json

        import pandas as pd

        labels = self.labels
        if self.task == "multilabel":
            labels = [None if v is None else json.dumps(list(v), ensure_ascii=False)
                      for v in labels]
        elif self.task == "regression" and len(self.class_names) > 1:
            labels = [None if v is None else json.dumps(list(v)) for v in labels]
        # a skipped row (label None) must not turn class ids 0/1 into floats 0.0/1.0
        frame = pd.DataFrame({"label": pd.Series(labels, dtype=object)
                              if any(v is None for v in labels) else labels})
        prefix = "pred" if self.task == "regression" else "score"
        for i, name in enumerate(self.class_names):
            frame[f"{prefix}_{name}"] = self.scores[:, i]
        return frame


@dataclass(frozen=True)
class LoadedModel:
    """A model dir in memory: model, tokenizer, manifest, schema, and the runtime the model
    runs in (``torch``: a Transformers model; ``onnx``: an ONNX Runtime session)."""

    path: Path
    model: Any
    tokenizer: Any
    manifest: dict[str, Any]
    schema: LabelSchema
    runtime: str = "torch"

    @property
    def contract(self) -> dict[str, Any]:
        return self.manifest["contract"]


@functools.lru_cache(maxsize=4)
def _load(path: str, stamp: float, runtime: str = "torch") -> LoadedModel:
    # stamp: reload when the dir is replaced
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest, schema = read_manifest(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if runtime == "onnx":
        from labelwise.training.export import load_onnx

        return LoadedModel(Path(path), load_onnx(Path(path)), tokenizer, manifest, schema,
                           "onnx")
    model = AutoModelForSequenceClassification.from_pretrained(path)
    model.eval()
    return LoadedModel(Path(path), model, tokenizer, manifest, schema)


def resolve_runtime(path: Path, runtime: str) -> str:
    """``torch`` or ``onnx`` for the model dir ``path``; ``auto``: ``onnx`` when it holds an
    ONNX model (a dir ``labelwise export`` wrote), else ``torch``.

    Raises:
        ConfigError: An unknown runtime.
        DataError: ``onnx`` for a dir with no ONNX model, ``torch`` for one with no PyTorch
            weights.
    """
    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}", where="--runtime",
                          fix="pass --runtime auto, torch or onnx", code="LW343")
    has_onnx = (path / ONNX_MODEL).is_file()
    has_torch = any(path.glob(TORCH_WEIGHTS))
    if runtime == "auto":
        return "onnx" if has_onnx else "torch"
    if runtime == "onnx" and not has_onnx:
        raise DataError(f"the model dir holds no ONNX model ({ONNX_MODEL})",
                        where=f"file {path}", fix=f"run labelwise export {path} --format onnx "
                        "and predict with the dir it writes, or pass --runtime torch",
                        code="LW414")
    if runtime == "torch" and not has_torch:
        source = ""
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            source = json.loads((path / MANIFEST).read_text())["export"]["source"]["path"]
        fix = (f"pass --runtime onnx, or predict with the model dir it was exported from"
               f"{f' ({source})' if source else ''}")
        raise DataError("the model dir holds no PyTorch weights (an ONNX export)",
                        where=f"file {path}", fix=fix, code="LW414")
    return runtime


def load_model(model_dir: str | Path, *, runtime: Runtime = "torch") -> LoadedModel:
    """Load (and cache) a model dir written by ``labelwise train``, ``tune`` or ``export``,
    for the runtime ``torch``, ``onnx`` or ``auto`` (see :func:`resolve_runtime`).

    Raises:
        ConfigError: An unknown runtime.
        DataError: Not a labelwise model dir, or none for that runtime.
        SchemaMismatchError: ``labelwise.json`` and ``config.json`` disagree.
        MissingDependencyError: ``onnx`` without the 'serve' extra.
    """
    path = Path(model_dir).expanduser().resolve()
    if not (path / MANIFEST).exists():
        raise not_a_model_dir(path)
    chosen = resolve_runtime(path, runtime)
    return _load(str(path), (path / MANIFEST).stat().st_mtime_ns, chosen)


def _threshold_values(loaded: LoadedModel, override: Any) -> tuple[float, ...] | None:
    rule = DecisionRule(loaded.contract["decision_rule"])
    if not rule.uses_thresholds:
        if override is not None:
            raise ConfigError(f"thresholds do not apply to a {loaded.schema.task} model",
                              fix="drop --threshold", code="LW340")
        return None
    names = list(loaded.schema.label_names)
    width = 1 if rule is DecisionRule.THRESHOLD else len(names)
    if override is None:
        saved = loaded.manifest.get("thresholds")
        return tuple(saved["values"]) if saved else (0.5,) * width
    if isinstance(override, (int, float)):
        values = [float(override)] * width
    elif isinstance(override, Mapping):
        unknown = [k for k in override if str(k) not in names]
        if unknown:
            raise ConfigError(f"threshold for unknown label '{unknown[0]}'",
                              fix=f"use the labels {names}", code="LW340")
        saved = _threshold_values(loaded, None) or (0.5,) * width
        values = [float(override.get(n, saved[i] if width > 1 else saved[0]))
                  for i, n in enumerate(names[-width:] if width == 1 else names)]
    else:
        values = [float(v) for v in override]
        if len(values) != width:
            raise ConfigError(f"`len(thresholds) == {width}` must hold, but got "
                              f"(len(thresholds)={len(values)})", fix="give one threshold "
                              "per label", code="LW340")
    if any(not 0.0 <= v <= 1.0 for v in values):
        raise ConfigError(f"thresholds must be in [0, 1]. Got {values} instead",
                          fix="pass values between 0 and 1", code="LW340")
    return tuple(values)


OnInvalid = Literal["raise", "skip"]


def _column(obj: Any, name: str, *, what: str) -> list[Any]:
    """Column ``name`` of a DataFrame or ``datasets.Dataset``, or a DataError listing the
    columns there are."""
    have = [str(c) for c in (obj.columns if hasattr(obj, "columns") else obj.column_names)]
    if name not in have:
        kind = type(obj).__name__
        raise DataError(f"{what} column '{name}' not found in the {kind}",
                        where=f"columns: {', '.join(have)}",
                        fix=f"pass --{what.replace(' ', '-')}-column with one of the columns",
                        code="LW402")
    column = obj[name]
    return column.tolist() if hasattr(column, "tolist") else list(column)


def _rows(value: Any, *, what: str) -> list[Any]:
    """A single string as one row; a Series, array, list, tuple or other iterable as rows."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, (bytes, Mapping)):
        raise DataError(f"cannot predict on a {type(value).__name__} of {what}s",
                        fix="pass a string, a list of strings, a pandas Series, a DataFrame "
                        "or a datasets.Dataset", code="LW408")
    if hasattr(value, "tolist"):
        return list(value.tolist())
    try:
        return list(value)
    except TypeError:
        raise DataError(f"cannot predict on a {type(value).__name__}",
                        fix="pass a string, a list of strings, a pandas Series, a DataFrame "
                        "or a datasets.Dataset", code="LW408") from None


def _is_table(value: Any) -> bool:
    return hasattr(value, "columns") or hasattr(value, "column_names")


def _problem(value: Any) -> str | None:
    """Why ``value`` cannot be predicted on, or None when it can."""
    if isinstance(value, str):
        return None if value.strip() else "empty"
    if value is None or (isinstance(value, float) and math.isnan(value)) or \
            type(value).__name__ in ("NAType", "NaTType"):
        return "missing"
    return f"a {type(value).__name__}"


def _invalid_rows(columns: dict[str, list[Any]]) -> dict[int, str]:
    bad: dict[int, str] = {}
    for name, values in columns.items():
        for i, v in enumerate(values):
            why = _problem(v)
            if why is not None and i not in bad:
                bad[i] = why if len(columns) == 1 else f"{why} {name}"
    return bad


def _input_columns(loaded: LoadedModel, texts: Any, text_pairs: Any, text_column: str | None,
                   text_pair_column: str | None) -> dict[str, list[Any]]:
    """``{"text": [...], "text pair": [...]}`` (pairs only for a sentence-pair model)."""
    trained_pair = loaded.manifest.get("text_pair_column")
    if _is_table(texts):
        column = text_column or loaded.manifest.get("text_column") or "text"
        out = {"text": _column(texts, column, what="text")}
        pair = text_pair_column or trained_pair
        if pair and text_pairs is None:
            out["text pair"] = _column(texts, pair, what="text pair")
    else:
        out = {"text": _rows(texts, what="text")}
    if text_pairs is not None:
        out["text pair"] = _rows(text_pairs, what="text pair")
    if trained_pair and "text pair" not in out:
        raise DataError("the model was trained on sentence pairs, but no second texts were "
                        "given", where=f"model {loaded.path}",
                        fix=f"pass text_pairs=, or a table with a '{trained_pair}' column",
                        code="LW408")
    if not trained_pair and "text pair" in out:
        raise DataError("the model was trained on single texts, but second texts were given",
                        where=f"model {loaded.path}", fix="drop text_pairs", code="LW408")
    lengths = {k: len(v) for k, v in out.items()}
    if len(set(lengths.values())) > 1:
        raise DataError(f"texts and text pairs differ in length ({lengths['text']} texts, "
                        f"{lengths['text pair']} pairs)", fix="give one pair per text",
                        code="LW408")
    return out


def predict(model_dir: str | Path, texts: Any, *, text_pairs: Any = None,
            text_column: str | None = None, text_pair_column: str | None = None,
            thresholds: float | Sequence[float] | Mapping[str, float] | None = None,
            batch_size: int | None = None, on_invalid: OnInvalid = "raise",
            device: str = "auto",
            runtime: Runtime = "auto", verbose: bool = False) -> Predictions:
    """Predict labels with a saved model dir; output row ``i`` is input row ``i``.

    Args:
        model_dir: A directory written by ``labelwise train`` (or ``tune``'s ``best/``).
        texts: One string (one prediction), a list, tuple, pandas Series or array of
            strings, or a pandas DataFrame / ``datasets.Dataset`` whose text column (and
            text pair column) is the one the model was trained on, or ``text_column``.
        text_pairs: Second texts, for a model trained on sentence pairs.
        text_column: The text column of a DataFrame or Dataset (default: the model's).
        text_pair_column: Its text pair column (default: the model's).
        thresholds: Override the saved thresholds: one float for every label, a list in
            label order, or ``{label: threshold}``.
        batch_size: Rows per forward pass (default: 32 on the CPU, 16 for an ONNX
            export, 64 on a GPU; measured in BENCHMARKS.md).
        on_invalid: ``"raise"`` (default): ``None``, NaN, empty or blank strings and
            non-strings are a :class:`~labelwise.errors.DataError` naming their positions;
            ``"skip"``: those rows get the label ``None`` and NaN scores, and stay in place.
        device: ``auto`` (CUDA if available, else Apple MPS, else the CPU), ``cpu``,
            ``mps``, ``cuda`` or ``cuda:N``, as ``train.device``.
        runtime: ``auto`` (default: ``onnx`` for a dir ``labelwise export`` wrote, else
            ``torch``), ``torch`` or ``onnx`` (ONNX Runtime on the CPU).
        verbose: Let Transformers' load report and bars through (silenced by default).

    Raises:
        ConfigError: ``device`` or ``runtime`` is not one of those, or not on this machine.
        DataError: An input that cannot be read, a missing column, or invalid rows; a dir
            with no model for ``runtime``.

    Example:
        >>> preds = predict("runs/sst2", "a charming film")  # doctest: +SKIP
        >>> preds.labels, preds.scores.shape
        ([1], (1, 2))
    """
    if on_invalid not in ("raise", "skip"):
        raise ConfigError(f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}",
                          fix="pass --on-invalid raise or --on-invalid skip", code="LW342")
    batch_size = check_count(batch_size, name="batch_size", none_ok=True)
    from labelwise.training.device import resolve_device
    from labelwise.training.progress import quiet_libraries

    target = resolve_device(device)
    with quiet_libraries(verbose):
        loaded = load_model(model_dir, runtime=runtime)
    if loaded.runtime == "onnx" and device not in ("auto", "cpu"):
        raise ConfigError(f"the onnx runtime runs on the CPU, not on {device}",
                          where="--device", fix="pass --device cpu (or auto), or --runtime "
                          "torch on the model dir it was exported from", code="LW343")
    values = _threshold_values(loaded, thresholds)
    columns = _input_columns(loaded, texts, text_pairs, text_column, text_pair_column)
    n = len(columns["text"])
    bad = _invalid_rows(columns)
    if bad and on_invalid == "raise":
        shown = ", ".join(f"{i} ({why})" for i, why in list(bad.items())[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise DataError(f"{len(bad)} of {n} inputs are not texts",
                        where=f"positions {shown}{more}",
                        fix="drop or fill those rows, or pass --on-invalid skip to get label "
                        "None for them", code="LW408")
    keep = [i for i in range(n) if i not in bad]
    if not keep:  # nothing to run the model on: every row skipped, or no rows
        return _unpredicted(loaded, n, values)
    pairs = [columns["text pair"][i] for i in keep] if "text pair" in columns else None
    preds = _run(loaded, [columns["text"][i] for i in keep], pairs, values, batch_size,
                 target)
    if not bad:
        return preds
    labels: list[Any] = [None] * n
    scores = np.full((n, preds.scores.shape[1]), np.nan, dtype=preds.scores.dtype)
    for j, i in enumerate(keep):
        labels[i] = preds.labels[j]
    scores[keep] = preds.scores
    return Predictions(labels, scores, preds.class_names, preds.thresholds, preds.task)


def _run(loaded: LoadedModel, texts: list[str], pairs: list[str] | None,
         thresholds: tuple[float, ...] | None, batch_size: int | None, device: Any
         ) -> Predictions:
    from labelwise.training.forward import onnx_logits, predict_logits

    encoded = encode_texts(loaded.tokenizer, texts, pairs,
                           max_length=int(loaded.manifest["max_length"]), use_cache=False)
    pad = loaded.tokenizer.pad_token_id or 0
    if loaded.runtime == "onnx":
        logits = onnx_logits(loaded.model, encoded, pad_id=pad, batch_size=batch_size)
    else:
        logits = predict_logits(loaded.model, encoded, pad_id=pad, batch_size=batch_size,
                                device=device)
    return _decide(loaded.schema, HeadContract.from_dict(loaded.contract), logits, thresholds)


def _unpredicted(loaded: LoadedModel, n: int, thresholds: tuple[float, ...] | None
                 ) -> Predictions:
    """``n`` rows the model did not run on: label ``None``, NaN scores."""
    schema = loaded.schema
    head = HeadContract.from_dict(loaded.contract)
    return Predictions([None] * n, np.full((n, len(schema.label_names)), np.nan,
                                           dtype=np.float32), tuple(schema.label_names),
                       thresholds if head.uses_thresholds else None, schema.task.value)


def predict_split(model_dir: str | Path, texts: list[str], *,
                  text_pairs: list[str] | None = None, batch_size: int | None = None,
                  device: str = "auto") -> Predictions:
    """Predictions for a split's texts as training evaluated them: every row, an empty text
    included (the report's plots), with the saved thresholds."""
    from labelwise.training.device import resolve_device
    from labelwise.training.progress import quiet_libraries

    target = resolve_device(device)
    with quiet_libraries():
        loaded = load_model(model_dir)
    if not texts:
        return _unpredicted(loaded, 0, _threshold_values(loaded, None))
    return _run(loaded, [str(t) for t in texts],
                [str(t) for t in text_pairs] if text_pairs is not None else None,
                _threshold_values(loaded, None), batch_size, target)


def _decide(schema: LabelSchema, contract: HeadContract, logits: np.ndarray,
            thresholds: tuple[float, ...] | None) -> Predictions:
    """The decision rule evaluation uses (:mod:`labelwise.scoring.decisions`), on
    ``logits``."""
    task = schema.task.value
    names = tuple(schema.label_names)
    scores = scores_from_logits(logits, contract)
    decided = decide(scores, rule=contract.decision_rule, thresholds=thresholds)
    if task == "binary":
        scores = np.stack([1 - scores, scores], axis=1)
    keep = thresholds if contract.uses_thresholds else None
    return Predictions(schema.decode(decided), scores, names, keep, task)

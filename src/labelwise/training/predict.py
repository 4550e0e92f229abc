"""``predict``: a saved model dir applied to new texts, labels as the original names.

Loading checks that ``labelwise.json``'s schema matches ``config.json``'s label map. Scores
are per class in schema order; decisions follow the contract: argmax (multiclass), the
tuned threshold on the positive class (binary), per-label tuned thresholds (multilabel),
identity (regression). Thresholds can be overridden per call. Rows come back in input order.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import ConfigError
from labelwise.labels.schema import LabelSchema
from labelwise.outputs.model_dir import read_manifest
from labelwise.outputs.names import MANIFEST, not_a_model_dir
from labelwise.plan.contract import DecisionRule, HeadContract
from labelwise.scoring.decisions import decide, scores_from_logits
from labelwise.training.tokens import encode_texts

__all__ = ["Predictions", "LoadedModel", "load_model", "predict"]


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
            labels = [json.dumps(list(v), ensure_ascii=False) for v in labels]
        elif self.task == "regression" and len(self.class_names) > 1:
            labels = [json.dumps(list(v)) for v in labels]
        frame = pd.DataFrame({"label": labels})
        prefix = "pred" if self.task == "regression" else "score"
        for i, name in enumerate(self.class_names):
            frame[f"{prefix}_{name}"] = self.scores[:, i]
        return frame


@dataclass(frozen=True)
class LoadedModel:
    """A model dir in memory: model, tokenizer, manifest, schema."""

    path: Path
    model: Any
    tokenizer: Any
    manifest: dict[str, Any]
    schema: LabelSchema

    @property
    def contract(self) -> dict[str, Any]:
        return self.manifest["contract"]


@functools.lru_cache(maxsize=4)
def _load(path: str, stamp: float) -> LoadedModel:  # stamp: reload when the dir is replaced
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    manifest, schema = read_manifest(path)
    model = AutoModelForSequenceClassification.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.eval()
    return LoadedModel(Path(path), model, tokenizer, manifest, schema)


def load_model(model_dir: str | Path) -> LoadedModel:
    """Load (and cache) a model dir written by ``labelwise train`` or ``tune``.

    Raises:
        DataError: Not a labelwise model dir.
        SchemaMismatchError: ``labelwise.json`` and ``config.json`` disagree.
    """
    path = Path(model_dir).expanduser().resolve()
    if not (path / MANIFEST).exists():
        raise not_a_model_dir(path)
    return _load(str(path), (path / MANIFEST).stat().st_mtime_ns)


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


def predict(model_dir: str | Path, texts: Sequence[str], *,
            text_pairs: Sequence[str] | None = None,
            thresholds: float | Sequence[float] | Mapping[str, float] | None = None,
            batch_size: int = 64, device: str = "auto") -> Predictions:
    """Predict labels for ``texts`` with a saved model dir.

    Args:
        model_dir: A directory written by ``labelwise train`` (or ``tune``'s ``best/``).
        texts: The texts.
        text_pairs: Second texts, for a model trained on sentence pairs.
        thresholds: Override the saved thresholds: one float for every label, a list in
            label order, or ``{label: threshold}``.
        batch_size: Rows per forward pass.
        device: ``auto`` (CUDA if available, else Apple MPS, else the CPU), ``cpu``,
            ``mps``, ``cuda`` or ``cuda:N``, as ``train.device``.

    Raises:
        ConfigError: ``device`` is not one of those, or not on this machine.

    Example:
        >>> preds = predict("runs/sst2", ["a charming film"])  # doctest: +SKIP
        >>> preds.labels, preds.scores.shape
        ([1], (1, 2))
    """
    from labelwise.training.device import resolve_device
    from labelwise.training.forward import predict_logits

    target = resolve_device(device)
    loaded = load_model(model_dir)
    schema, contract = loaded.schema, loaded.contract
    values = _threshold_values(loaded, thresholds)
    texts = [str(t) for t in texts]
    pairs = [str(t) for t in text_pairs] if text_pairs is not None else None
    encoded = encode_texts(loaded.tokenizer, texts, pairs,
                           max_length=int(loaded.manifest["max_length"]), use_cache=False)
    pad = loaded.tokenizer.pad_token_id or 0
    logits = predict_logits(loaded.model, encoded, pad_id=pad, batch_size=batch_size,
                            device=target)
    return _decide(schema, HeadContract.from_dict(contract), logits, values)


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

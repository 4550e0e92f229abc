"""``export``: a model dir as an ONNX model for fast CPU serving, fp32 or int8.

The exported dir is a model dir for ``predict`` with ``runtime="onnx"``: ``labelwise.json``
(schema, contract, thresholds, the source's manifest, and under ``export`` what it was
exported from and how), ``config.json`` (the label map ``predict`` checks), the tokenizer
files and :data:`~labelwise.outputs.names.ONNX_MODEL`; no PyTorch weights. Predictions go
through the same tokenization, length-sorted batches and decision rule as the PyTorch
model; only the forward pass runs in ONNX Runtime.

The graph comes from ``torch.onnx.export`` (dynamic batch and sequence axes) on the model
with eager attention, then ONNX Runtime's transformer optimizer fuses attention, layer
norms and GELU for a BERT-family model (kept only when the fused graph gives the PyTorch
logits on a padded example). On torch 2.13 both exporters work for BERT; the TorchScript
one is used because ONNX Runtime's fusions recognize its graph (the ``torch.export``-based
graph, the fallback, runs unfused). ``quantize="int8"`` is ONNX Runtime's dynamic
quantization (``onnxruntime.quantization.quantize_dynamic``: int8 weights per output
channel in 7 bits, activations quantized at run time with one scale per batch, so that a
row's int8 scores move slightly with the rows batched beside it). The dir is built beside
the output dir and published by one rename, under the output dir's lock, so a failed
export leaves no half-written dir.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from labelwise.errors import ConfigError, DataError, require
from labelwise.outputs.names import (MANIFEST, MODEL_CONFIG, ONNX_MODEL, TORCH_WEIGHTS,
                                     not_a_model_dir)

__all__ = ["ExportResult", "export", "FORMATS", "QUANTIZATIONS", "OnnxModel", "load_onnx",
           "has_onnx", "has_torch_weights", "SERVE_MODULES"]

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
SERVE_MODULES = ("onnxruntime", "onnx", "onnxscript")  # what the 'serve' extra brings
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ExportResult:
    """What ``export`` wrote.

    Attributes:
        output_dir: The exported dir (``predict`` it with ``runtime="onnx"``).
        model_file: Its ONNX model.
        format: ``"onnx"``.
        quantize: ``"int8"`` or ``None`` (fp32).
        source: The model dir it was exported from.
        source_fingerprint: sha256 of the source's files (weights, manifest, tokenizer).
        size_bytes: Size of the ONNX model (with its external data, if any).
        seconds: Wall time of the export.
    """

    output_dir: Path
    model_file: Path
    format: str
    quantize: str | None
    source: Path
    source_fingerprint: str
    size_bytes: int
    seconds: float


def has_onnx(path: Path) -> bool:
    return (Path(path) / ONNX_MODEL).is_file()


def has_torch_weights(path: Path) -> bool:
    return any(Path(path).glob(TORCH_WEIGHTS))


def _need_serve(what: str, modules: tuple[str, ...] = SERVE_MODULES) -> None:
    require(*modules, what=f"{what} needs the 'serve' extra ({', '.join(modules)}), which is "
            "not installed", extra="serve")


def _check_options(fmt: str, quantize: str | None) -> None:
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", where="--format",
                          fix=f"pass --format {' or '.join(FORMATS)}", code="LW343")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"unknown quantization {quantize!r}", where="--quantize",
                          fix=f"pass --quantize {' or '.join(QUANTIZATIONS)}, or leave it out "
                          "for fp32", code="LW343")


def _source(model_dir: str | Path) -> Path:
    path = Path(model_dir).expanduser().resolve()
    if not (path / MANIFEST).is_file():
        raise not_a_model_dir(path)
    if not has_torch_weights(path):
        raise DataError("the model dir holds no PyTorch weights to export (it is an export "
                        "itself)" if has_onnx(path) else "the model dir holds no PyTorch "
                        "weights to export", where=f"file {path}",
                        fix="export the model dir labelwise train or tune wrote",
                        code="LW414")
    return path


def fingerprint(path: Path) -> str:
    """sha256 over the names and bytes of the files labelwise wrote into a model dir."""
    from labelwise.outputs.model_dir import model_dir_files

    patterns = model_dir_files(path)
    digest = hashlib.sha256()
    for entry in sorted(path.iterdir()):
        if not entry.is_file() or not any(fnmatch.fnmatchcase(entry.name, p)
                                          for p in patterns):
            continue
        digest.update(entry.name.encode() + b"\0")
        with entry.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def default_output_dir(source: Path, quantize: str | None) -> Path:
    """``MODEL_DIR-onnx`` (fp32) or ``MODEL_DIR-onnx-int8`` beside the model dir."""
    return source.parent / f"{source.name}-onnx{'-' + quantize if quantize else ''}"


def export(*, model_dir: str | Path, format: str = "onnx", quantize: str | None = None,
           output_dir: str | Path | None = None, overwrite: bool = False,
           verbose: bool = False) -> ExportResult:
    """Export a model dir to ONNX (fp32, or int8 with ``quantize="int8"``) for
    ``predict(..., runtime="onnx")``.

    Args:
        model_dir: A directory written by ``labelwise train`` (or ``tune``'s ``best/``).
        format: ``"onnx"``.
        quantize: ``None`` (fp32) or ``"int8"`` (ONNX Runtime dynamic quantization).
        output_dir: Where to write the exported dir (default: ``MODEL_DIR-onnx`` or
            ``MODEL_DIR-onnx-int8`` beside it).
        overwrite: Replace an existing export there.
        verbose: Let the exporter's messages through (silenced by default).

    Raises:
        ConfigError: An unknown ``format`` or ``quantize``.
        DataError: ``model_dir`` is no model dir, or holds no PyTorch weights.
        OutputError: The output dir is in use, not empty (without ``overwrite``), the
            source itself, or cannot be written.
        MissingDependencyError: The 'serve' extra is not installed.

    Example:
        >>> done = export(model_dir="runs/sst2", quantize="int8")  # doctest: +SKIP
        >>> predict(done.output_dir, "a charming film", runtime="onnx").labels  # doctest: +SKIP
        [1]
    """
    from labelwise.outputs.model_dir import model_dir_files
    from labelwise.outputs.safety import (check_output_dir, check_replaceable,
                                          disk_full_errors, hold_output, publish_dir,
                                          work_dir)

    _check_options(format, quantize)
    source = _source(model_dir)
    _need_serve("labelwise export")
    out = check_output_dir(Path(output_dir).expanduser().resolve() if output_dir is not None
                           else default_output_dir(source, quantize))
    started = time.perf_counter()
    with hold_output(out, command="labelwise export"):
        check_replaceable(out, overwrite=overwrite, markers=[MANIFEST],
                          known=model_dir_files(out), inputs=[source])
        work = work_dir(out)
        shutil.rmtree(work, ignore_errors=True)
        final = work / "final"
        try:
            with disk_full_errors(work):
                final.mkdir(parents=True)
                size, facts = _build(source, final, work, quantize, verbose=verbose)
                digest = fingerprint(source)
                _write_manifest(source, final, digest, format=format, quantize=quantize,
                                facts=facts)
                publish_dir(final, out, overwrite=overwrite, manifest=MANIFEST)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return ExportResult(out, out / ONNX_MODEL, format, quantize, source, digest, size,
                        time.perf_counter() - started)


def _build(source: Path, final: Path, work: Path, quantize: str | None, *,
           verbose: bool) -> tuple[int, dict[str, Any]]:
    """Tokenizer files, ``config.json`` and the ONNX model into ``final``."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from labelwise.training.progress import quiet_libraries

    with quiet_libraries(verbose):
        # eager attention: the graph ONNX Runtime's transformer optimizer fuses
        model = AutoModelForSequenceClassification.from_pretrained(
            source, attn_implementation="eager").eval()
        tokenizer = AutoTokenizer.from_pretrained(source)
    tokenizer.save_pretrained(final)
    shutil.copy2(source / MODEL_CONFIG, final / MODEL_CONFIG)
    example = tokenizer(["a first example text", "a second, longer example text here"],
                        padding=True, return_tensors="pt")
    example["attention_mask"][0, -3:] = 0  # a padded row: the fused graph must mask it
    names = [n for n in _INPUTS if n in example]
    feeds = {n: example[n] for n in names}
    raw, fused = work / "raw" / ONNX_MODEL, work / "fused" / ONNX_MODEL
    raw.parent.mkdir(parents=True)
    fused.parent.mkdir(parents=True)
    with _quiet(verbose):
        exporter = _export_graph(model, feeds, names, raw)
        reference = model(**feeds).logits.detach().numpy()
        graph, optimized = raw, _optimize(model.config, raw, fused, feeds, reference)
        if optimized:
            graph = fused
        facts: dict[str, Any] = {"inputs": names, "exporter": exporter,
                                 "optimized": optimized}
        if quantize == "int8":
            import onnx
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # per-channel 7-bit weights: on sst2 -0.2 accuracy points where per-tensor
            # 8-bit weights lost 1.7 (BENCHMARKS.md)
            quantize_dynamic(graph, final / ONNX_MODEL, weight_type=QuantType.QInt8,
                             per_channel=True, reduce_range=True,
                             extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            facts["quantization"] = ("onnxruntime.quantization.quantize_dynamic (QInt8 "
                                     "weights, per channel, reduced range)")
        else:
            shutil.move(graph, final / ONNX_MODEL)
    size = sum(p.stat().st_size for p in final.iterdir() if p.name.startswith(ONNX_MODEL))
    return size, facts


def _export_graph(model: Any, feeds: dict[str, Any], names: list[str], path: Path) -> str:
    """``torch.onnx.export`` with dynamic batch and sequence axes: the TorchScript exporter
    (its graph is the one ONNX Runtime fuses), else the ``torch.export``-based one."""
    import torch

    try:
        torch.onnx.export(model, (), str(path), kwargs=feeds, dynamo=False, opset_version=17,
                          input_names=names, output_names=["logits"],
                          dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names},
                                        "logits": {0: "batch"}})
        return "torch.onnx.export (TorchScript)"
    except Exception:  # noqa: BLE001 - a torch without the TorchScript exporter
        for stale in path.parent.iterdir():
            stale.unlink()
    batch, seq = torch.export.Dim("batch"), torch.export.Dim("sequence")
    program = torch.onnx.export(model, (), kwargs=feeds, dynamo=True, opset_version=18,
                                input_names=names, output_names=["logits"],
                                dynamic_shapes={n: {0: batch, 1: seq} for n in names})
    program.save(str(path), external_data=None)  # inline below 2 GB
    return "torch.onnx.export (dynamo)"


_FUSED_TYPES = {"bert", "roberta", "xlm-roberta", "camembert", "electra"}


def _optimize(config: Any, raw: Path, fused: Path, feeds: dict[str, Any],
              reference: np.ndarray) -> bool:
    """ONNX Runtime's transformer fusions (attention, embedding and skip layer norms, GELU)
    into ``fused``, kept only when the fused graph gives the PyTorch model's logits."""
    if getattr(config, "model_type", None) not in _FUSED_TYPES:
        return False
    try:
        from onnxruntime.transformers.optimizer import optimize_model

        optimized = optimize_model(str(raw), model_type="bert",
                                   num_heads=int(config.num_attention_heads),
                                   hidden_size=int(config.hidden_size))
        optimized.save_model_to_file(str(fused))
        got = OnnxModel(fused).logits({k: v.numpy() for k, v in feeds.items()})
    except Exception:  # noqa: BLE001 - an architecture the fusions do not know: unfused
        return False
    return bool(np.allclose(got, reference, atol=1e-4, rtol=1e-3))


@contextlib.contextmanager
def _quiet(verbose: bool) -> Any:
    """The exporter's step lines and warnings, shown only with ``verbose``."""
    import io
    import logging
    import warnings

    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("", "torch.onnx", "torch.export", "torch._dynamo",
                                              "torch.fx", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _write_manifest(source: Path, final: Path, digest: str, *, format: str,
                    quantize: str | None, facts: dict[str, Any]) -> None:
    from importlib import metadata

    from labelwise.outputs.safety import write_atomic

    manifest = json.loads((source / MANIFEST).read_text())
    versions = dict(manifest.get("versions") or {})
    for name in SERVE_MODULES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    manifest["versions"] = versions
    manifest["files"] = sorted({p.name for p in final.iterdir()} | {MANIFEST})
    manifest["export"] = {
        "format": format,
        "quantize": quantize,
        "runtime": "onnxruntime",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "source": {"path": str(source), "fingerprint": f"sha256:{digest}",
                   "created": manifest.get("created")},
        **facts,
    }
    write_atomic(final / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")


# --- the runtime ---------------------------------------------------------------------------
class OnnxModel:
    """An ONNX Runtime session that maps a padded batch to logits, as a model does."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.num_labels = int(self.session.get_outputs()[0].shape[-1])

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {}
        for name in self.inputs:
            value = batch.get(name)
            if value is None:  # token_type_ids the collator did not make: segment 0
                value = np.zeros_like(batch["input_ids"])
            feed[name] = np.ascontiguousarray(value, dtype=np.int64)
        return np.asarray(self.session.run(None, feed)[0], dtype=np.float32)


def load_onnx(path: Path) -> OnnxModel:
    _need_serve("predict with runtime onnx", ("onnxruntime",))
    return OnnxModel(Path(path) / ONNX_MODEL)

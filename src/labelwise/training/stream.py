"""``predict_file``: a file of texts predicted in chunks, in constant memory, resumable.

The input is read twice, both times in chunks (:mod:`labelwise.data.chunks`): a first pass
counts the rows, merges every column's type over the whole file and checks the texts (a
missing text column or a row with no text is refused before the model runs); the second
pass predicts each chunk with :func:`labelwise.training.predict.predict` (length-sorted
batches) and appends it to ``.NAME.partial`` beside the output; the freed heap is handed
back after each chunk (glibc would keep the pages of activations of many shapes, and the
resident size would creep up chunk after chunk). Row order, columns and
values are those of predicting the whole file at once.

Nothing half written ever carries the output's name: the partial file is renamed into
place when the last chunk is in (the old output, if any, stays until then). After every
chunk the partial file is flushed to disk and ``.NAME.partial.json`` records what it holds
and what it was predicted for (the model dir's fingerprint, the input's size, mtime and
first bytes, the options). A run that stops (Ctrl-C, a kill, a full disk) is continued by
the next run with the same model, input and options: the rows after the last complete
chunk are dropped and prediction continues there, so the final file is the one an
uninterrupted run writes (byte for byte for CSV and JSONL, row for row for Parquet).
``resume=None`` (the default) continues a matching partial and starts over when it does not
match; ``resume=True`` refuses to start over (:class:`~labelwise.errors.OutputError`
``LW364``, naming what differs); ``resume=False`` always starts over.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labelwise.data.chunks import FileScan, iter_chunks, scan
from labelwise.data.io import Table, check_columns
from labelwise.errors import ConfigError, DataError, OutputError, check_count
from labelwise.outputs.names import MANIFEST, partial_output, partial_state
from labelwise.outputs.safety import disk_full_errors, hold_output, write_atomic
from labelwise.training._memory import trim_heap
from labelwise.training.predict import (
    OnInvalid,
    Runtime,
    _invalid_rows,
    _threshold_values,
    load_model,
    predict,
)

__all__ = ["PredictedFile", "predict_file", "OUTPUT_KINDS"]

OUTPUT_KINDS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet",
                ".pq": "parquet"}
_STATE_VERSION = 1


@dataclass(frozen=True)
class PredictedFile:
    """What :func:`predict_file` wrote.

    Attributes:
        path: The predictions file.
        rows: Rows written (every input row, a skipped one included).
        skipped: Rows with no text (``on_invalid="skip"``): an empty label, NaN scores.
        chunks: Chunks the input was read in.
        resumed_rows: Rows kept from an interrupted run (0 when the run started afresh).
        seconds: Wall time of the call.
    """

    path: Path
    rows: int
    skipped: int
    chunks: int
    resumed_rows: int
    seconds: float


def predict_file(*, model_dir: str | Path, input: str | Path, output: str | Path,
                 text_column: str | None = None, text_pair_column: str | None = None,
                 thresholds: float | Sequence[float] | Mapping[str, float] | None = None,
                 batch_size: int | None = None, chunk_rows: int = 4096,
                 on_invalid: OnInvalid = "raise",
                 device: str = "auto", runtime: Runtime = "auto", resume: bool | None = None,
                 progress: bool = False,
                 on_progress: Callable[[int, int], None] | None = None,
                 verbose: bool = False) -> PredictedFile:
    """Predict every row of a file and write the input rows plus ``label`` and ``score_*``
    columns (``pred_label``, ``pred_score_*`` when the input has a ``label`` column).

    Args:
        model_dir: A directory written by ``labelwise train`` (or ``tune``'s ``best/``).
        input: A CSV, TSV, JSON, JSONL or Parquet file.
        output: Where to write: ``.csv``, ``.jsonl`` or ``.parquet``.
        text_column: The input's text column (default: the model's).
        text_pair_column: Its second text column, for a sentence-pair model (default: the
            model's).
        thresholds: Override the saved thresholds, as :func:`~labelwise.predict`.
        batch_size: Rows per forward pass (default: as :func:`~labelwise.predict`).
        chunk_rows: Rows read, predicted and written at a time: memory grows with this,
            not with the file.
        on_invalid: ``"raise"``: a row with no text is a
            :class:`~labelwise.errors.DataError`, before anything is predicted;
            ``"skip"``: it keeps its place with an empty label.
        device: ``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:N``.
        runtime: ``auto`` (ONNX Runtime for a dir ``labelwise export`` wrote, else torch),
            ``torch`` or ``onnx``, as :func:`~labelwise.predict`.
        resume: ``None``: continue an interrupted run of the same prediction, else start
            over; ``True``: continue it or refuse; ``False``: always start over.
        progress: Show a ``tqdm`` bar of rows.
        on_progress: Called as ``on_progress(rows_done, rows_total)`` after every chunk.
        verbose: Let Transformers' load report through.

    Raises:
        ConfigError: An unknown output type or option value.
        DataError: The input cannot be read, lacks the text column, or has rows with no
            text (``on_invalid="raise"``).
        OutputError: The output is in use by another run (``LW360``), cannot be written,
            or ``resume=True`` finds nothing that matches to continue (``LW364``).
    """
    started = time.perf_counter()
    out = Path(output).expanduser()
    source = Path(input).expanduser()
    kind = _output_kind(out)
    if on_invalid not in ("raise", "skip"):
        raise ConfigError(f"on_invalid must be 'raise' or 'skip', not {on_invalid!r}",
                          fix="pass --on-invalid raise or --on-invalid skip", code="LW342")
    batch_size = check_count(batch_size, name="batch_size", none_ok=True)  # None: predict's
    chunk_rows = check_count(chunk_rows, name="chunk_rows")  # default batch for the device
    if out.is_dir():
        raise OutputError("the output is a folder, not a file", where=f"file {out}",
                          fix="pass --output with a file name (.csv, .jsonl or .parquet)",
                          code="LW361")
    from labelwise.training.device import resolve_device
    from labelwise.training.forward import batch_size_for
    from labelwise.training.progress import quiet_libraries

    target = resolve_device(device)
    with quiet_libraries(verbose):
        loaded = load_model(model_dir, runtime=runtime)
    batch_size = batch_size_for(batch_size, target, loaded.runtime)
    values = _threshold_values(loaded, thresholds)
    column = text_column or loaded.manifest.get("text_column") or "text"
    pair = text_pair_column or loaded.manifest.get("text_pair_column")
    texts = [column, *([pair] if pair else [])]
    scanned, skipped = _scan(source, texts, chunk_rows, on_invalid)
    options = {"text_column": column, "text_pair_column": pair, "thresholds": values,
               "on_invalid": on_invalid, "batch_size": batch_size, "chunk_rows": chunk_rows,
               "device": str(target), "runtime": loaded.runtime, "output": kind}
    wanted = {"version": _STATE_VERSION, "model": _model_fingerprint(loaded.path),
              "input": _input_fingerprint(source), "options": json.loads(json.dumps(options))}
    out.parent.mkdir(parents=True, exist_ok=True)
    bar = _bar(progress, scanned.rows)
    with hold_output(out, command="labelwise predict"), disk_full_errors(out):
        done = _start(out, kind, wanted, resume)
        writer = _Writer(out, kind, done, loaded, source)
        kept = rows = done["rows"]
        bar.update(rows)
        n_chunks = 0
        for i, frame in enumerate(iter_chunks(source, chunk_rows=chunk_rows,
                                              text_columns=texts, scanned=scanned)):
            n_chunks = i + 1
            if i < done["chunks"]:
                continue
            predicted = _predict_chunk(loaded.path, frame, text_column=column,
                                       text_pair_column=pair, thresholds=thresholds,
                                       batch_size=batch_size, on_invalid=on_invalid,
                                       device=device, runtime=loaded.runtime)
            writer.append(i, predicted)
            n = len(frame)
            del predicted, frame
            trim_heap()  # the chunk's activations and frames back to the OS: RSS stays flat
            rows += n
            write_atomic(partial_state(out), json.dumps(
                {**wanted, "chunks": i + 1, "rows": rows, "bytes": writer.size()}))
            bar.update(n)
            if on_progress is not None:
                on_progress(rows, scanned.rows)
        writer.publish()
        partial_state(out).unlink(missing_ok=True)
    bar.close()
    return PredictedFile(out, rows, skipped, n_chunks, kept,
                         round(time.perf_counter() - started, 3))


def _predict_chunk(model_dir: Path, frame: Any, *, text_column: str,
                   text_pair_column: str | None, thresholds: Any, batch_size: int,
                   on_invalid: OnInvalid, device: str, runtime: Runtime) -> Any:
    """One chunk's output rows: its input columns plus the prediction columns, as
    ``labelwise predict`` has always written them."""
    preds = predict(model_dir, frame, text_column=text_column,
                    text_pair_column=text_pair_column, thresholds=thresholds,
                    batch_size=batch_size, on_invalid=on_invalid, device=device,
                    runtime=runtime)
    table = preds.to_frame()
    return frame.reset_index(drop=True).join(table.add_prefix("pred_")
                                             if "label" in frame.columns else table)


def _output_kind(out: Path) -> str:
    kind = OUTPUT_KINDS.get(out.suffix.lower())
    if kind is None:
        raise ConfigError(f"unknown output type '{out.suffix}'", where=f"file {out}",
                          fix="write to .csv, .jsonl or .parquet", code="LW341")
    return kind


def _scan(source: Path, texts: list[str], chunk_rows: int, on_invalid: str
          ) -> tuple[FileScan, int]:
    """The first pass: rows and column types, the text columns there, the rows with no
    text (refused for ``on_invalid="raise"``, counted for ``"skip"``)."""
    bad: list[tuple[int, str]] = []
    count = 0

    def check(frame: Any, start: int) -> None:
        nonlocal count
        if start == 0:
            check_columns(Table(frame, str(source), source), texts, split="input",
                          role="text")
        found = _invalid_rows({name: frame[col].tolist() for name, col in
                               zip(("text", "text pair"), texts, strict=False)})
        count += len(found)
        if len(bad) < 5:
            bad.extend((start + i, why) for i, why in sorted(found.items())[:5 - len(bad)])

    scanned = scan(source, chunk_rows=max(chunk_rows, 65536), text_columns=texts,
                   on_chunk=check)
    if count and on_invalid == "raise":
        shown = ", ".join(f"{i} ({why})" for i, why in bad)
        more = f" and {count - 5} more" if count > 5 else ""
        raise DataError(f"{count} of {scanned.rows} inputs are not texts",
                        where=f"file {source}, positions {shown}{more}",
                        fix="drop or fill those rows, or pass --on-invalid skip to get an "
                        "empty label for them", code="LW408")
    return scanned, count


def _model_fingerprint(path: Path) -> str:
    """The manifest's bytes and every file's name, size and mtime: a retrained dir differs."""
    digest = hashlib.sha256((path / MANIFEST).read_bytes())
    for entry in sorted(path.iterdir()):
        if entry.is_file():
            st = entry.stat()
            digest.update(f"{entry.name}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _input_fingerprint(path: Path) -> dict[str, Any]:
    st = path.stat()
    with path.open("rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()[:16]
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_sha256": head}


def _differs(saved: dict[str, Any], wanted: dict[str, Any]) -> str:
    """What an interrupted run was predicted for that this run is not ("" when it matches)."""
    if saved.get("version") != wanted["version"]:
        return "another labelwise version"
    if saved.get("model") != wanted["model"]:
        return "another model dir (or this one before it was retrained)"
    if saved.get("input") != wanted["input"]:
        return "another input file (or this one before it changed)"
    old, new = saved.get("options", {}), wanted["options"]
    for key in new:
        if old.get(key) != new[key]:
            return f"{key} {old.get(key)!r}, not {new[key]!r}"
    return ""


def _discard(out: Path) -> None:
    part = partial_output(out)
    if part.is_dir():
        shutil.rmtree(part)
    else:
        part.unlink(missing_ok=True)
    partial_state(out).unlink(missing_ok=True)


def _start(out: Path, kind: str, wanted: dict[str, Any], resume: bool | None
           ) -> dict[str, Any]:
    """Where this run begins: after the last complete chunk of a matching interrupted run,
    or at row 0 with the partial output created empty."""
    state, part = partial_state(out), partial_output(out)
    saved = None
    if state.exists() and part.exists():
        try:
            saved = json.loads(state.read_text())
        except (OSError, ValueError):
            saved = None
    if resume is True:
        if saved is None:
            raise OutputError("there is no interrupted prediction of this output to resume",
                              where=f"file {out}, no {state.name} beside it",
                              fix="drop --resume to predict the whole file", code="LW364")
        why = _differs(saved, wanted)
        if why:
            raise OutputError(f"cannot resume: the interrupted prediction was made with {why}",
                              where=f"file {state}", fix="run with the same model, input "
                              "and options, or drop --resume to start over (the rows done so "
                              "far are dropped)", code="LW364")
    if saved is not None and resume is not False and not _differs(saved, wanted):
        return {"chunks": int(saved["chunks"]), "rows": int(saved["rows"]),
                "bytes": int(saved["bytes"])}
    _discard(out)
    if kind == "parquet":
        part.mkdir()
    else:
        part.write_bytes(b"")
    return {"chunks": 0, "rows": 0, "bytes": 0}


class _Writer:
    """Appends chunks to the partial output and renames it into place at the end."""

    def __init__(self, out: Path, kind: str, done: dict[str, Any], loaded: Any,
                 source: Path) -> None:
        self.out, self.kind, self.loaded, self.source = out, kind, loaded, source
        self.part = partial_output(out)
        self.schema: Any = None
        if kind == "parquet":
            for extra in self.part.glob("part-*.parquet"):  # chunks after the last complete
                if int(extra.stem.split("-")[1]) >= done["chunks"]:
                    extra.unlink()
            first = self.part / "part-000000.parquet"
            if first.exists():
                import pyarrow.parquet as pq

                self.schema = pq.read_schema(first)
        else:
            with open(self.part, "r+b") as fh:  # drop a half-written chunk
                fh.truncate(done["bytes"])

    def size(self) -> int:
        return self.part.stat().st_size if self.kind != "parquet" else 0

    def append(self, index: int, frame: Any) -> None:
        if self.kind == "parquet":
            self._append_parquet(index, frame)
            return
        if self.kind == "csv":
            text = frame.to_csv(index=False, header=index == 0)
        else:
            text = frame.to_json(orient="records", lines=True, force_ascii=False)
            if text and not text.endswith("\n"):
                text += "\n"
        with open(self.part, "ab") as fh:
            fh.write(text.encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())

    def _append_parquet(self, index: int, frame: Any) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.schema is None:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            self.schema = pa.schema([f.with_type(self._fallback(f.name)) if
                                     pa.types.is_null(f.type) else f for f in table.schema],
                                    metadata=table.schema.metadata)
        table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
        path = self.part / f"part-{index:06d}.parquet"
        tmp = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def _fallback(self, name: str) -> Any:
        """The type of a column with no value in the first chunk."""
        import pyarrow as pa

        schema = self.loaded.schema
        if name.removeprefix("pred_") == "label":
            if schema.task.value in ("binary", "multiclass"):
                return pa.array(list(schema.classes)).type
            if schema.task.value == "regression" and len(schema.label_names) == 1:
                return pa.float64()
            return pa.string()
        if self.source.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            have = pq.read_schema(self.source)
            if name in have.names:
                return have.field(name).type
        return pa.string()

    def publish(self) -> None:
        """The complete output under its name: one rename (Parquet: the parts joined into
        one file beside it first)."""
        if self.kind != "parquet":
            os.replace(self.part, self.out)
            return
        import pyarrow.parquet as pq

        parts = sorted(self.part.glob("part-*.parquet"))
        tmp = self.out.with_name(f".{self.out.name}.tmp")
        try:
            writer = None
            for path in parts:
                table = pq.read_table(path)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
            if writer is not None:
                writer.close()
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, self.out)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        shutil.rmtree(self.part, ignore_errors=True)


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(progress: bool, total: int) -> Any:
    if not progress:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="rows", desc="predicting")

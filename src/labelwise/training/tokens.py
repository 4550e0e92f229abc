"""Tokenize once, cache by data + tokenizer fingerprint, cut to shorter lengths for free.

A split is stored as flat token arrays plus row offsets (no padding). The cache key hashes
the texts, the tokenizer (its full serialised form) and ``max_length``, so a second run or
a trial with the same inputs reuses it. Trials that change ``max_length`` share the longest
tokenization and cut it (single-text inputs, whose truncated rows end with the separator).

The cache is a directory of raw arrays, written chunk by chunk as the tokenizer goes (one
chunk of rows in memory at a time) and published by one rename; a run reads it back
memory-mapped, so a split of a million rows is paged in by the batches that use it, not
held twice.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Encoded", "tokenizer_fingerprint", "encode_texts", "cache_dir"]

logger = logging.getLogger("labelwise")


def cache_dir() -> Path:
    """``$LABELWISE_CACHE`` or ``~/.cache/labelwise``."""
    root = os.environ.get("LABELWISE_CACHE") or Path.home() / ".cache" / "labelwise"
    return Path(root)


@dataclass(frozen=True)
class Encoded:
    """Token ids of one split: flat ``ids`` and ``type_ids``, row ``offsets`` (n + 1)."""

    ids: np.ndarray
    type_ids: np.ndarray | None
    offsets: np.ndarray
    max_length: int

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.ids[a:b], (self.type_ids[a:b] if self.type_ids is not None else None)

    def take(self, rows: np.ndarray) -> Encoded:
        """The given rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.offsets[rows]
        return self._gather(starts, self.offsets[rows + 1] - starts)

    def cut(self, max_length: int, sep_id: int) -> Encoded:
        """Rows truncated to ``max_length`` tokens, the last kept token replaced by ``sep_id``."""
        lengths = self.lengths
        if max_length >= int(lengths.max(initial=0)):
            return Encoded(self.ids, self.type_ids, self.offsets, max_length)
        out = self._gather(self.offsets[:-1], np.minimum(lengths, max_length), max_length)
        ids = np.array(out.ids)  # writable
        ids[out.offsets[1:][lengths > max_length] - 1] = sep_id
        return Encoded(ids, out.type_ids, out.offsets, max_length)

    def _gather(self, starts: np.ndarray, lengths: np.ndarray,
                max_length: int | None = None) -> Encoded:
        """Rows made of ``lengths[i]`` tokens from ``starts[i]``, in blocks of rows so the
        index never spans the whole split."""
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.empty(int(offsets[-1]), dtype=self.ids.dtype)
        types = (np.empty(len(ids), dtype=self.type_ids.dtype) if self.type_ids is not None
                 else None)
        block = 65_536
        for a in range(0, len(lengths), block):
            lo, hi = offsets[a], offsets[min(a + block, len(lengths))]
            end = min(a + block, len(lengths))
            shift = np.repeat(starts[a:end] - offsets[a:end], lengths[a:end])
            index = shift + np.arange(lo, hi)
            ids[lo:hi] = self.ids[index]
            if types is not None:
                types[lo:hi] = self.type_ids[index]  # type: ignore[index]
        return Encoded(ids, types, offsets, self.max_length if max_length is None
                       else max_length)

    def save(self, path: Path) -> None:
        """Write to the directory ``path`` (published whole, by one rename)."""
        with _CacheWriter(path, self.max_length, pairs=self.type_ids is not None) as out:
            out.add(self.ids, self.type_ids, self.lengths)

    @classmethod
    def load(cls, path: Path) -> Encoded:
        """Memory-map a directory written by :meth:`save` or the tokenizer."""
        meta = json.loads((path / _META).read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"token cache format {meta.get('format')!r}")
        n, tokens = int(meta["rows"]), int(meta["tokens"])
        offsets = np.fromfile(path / "offsets.bin", dtype=np.int64)
        if len(offsets) != n + 1 or int(offsets[-1]) != tokens:
            raise ValueError("token cache offsets do not match its metadata")
        ids = _map(path / "ids.bin", np.int32, tokens)
        types = _map(path / "type_ids.bin", np.int8, tokens) if meta["type_ids"] else None
        return cls(ids, types, offsets, int(meta["max_length"]))


_FORMAT = 2
_META = "meta.json"


def _map(path: Path, dtype: Any, count: int) -> np.ndarray:
    if path.stat().st_size != count * np.dtype(dtype).itemsize:
        raise ValueError(f"{path.name} has the wrong size")
    if count == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(count,))


class _CacheWriter:
    """Appends tokenized chunks to a temporary directory; publishes it on a clean exit.

    A crash or an error leaves no entry (the temporary directory is removed); two runs
    writing the same entry at once both succeed and one copy is kept."""

    def __init__(self, path: Path, max_length: int, *, pairs: bool) -> None:
        self.path, self.max_length, self.pairs = path, max_length, pairs
        self.tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_ident()}")
        self.lengths: list[np.ndarray] = []
        self.tokens = 0

    def __enter__(self) -> _CacheWriter:
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.ids = open(self.tmp / "ids.bin", "wb")  # noqa: SIM115 - closed in __exit__
        self.types = open(self.tmp / "type_ids.bin", "wb") if self.pairs else None  # noqa: SIM115
        return self

    def add(self, ids: np.ndarray, types: np.ndarray | None, lengths: np.ndarray) -> None:
        np.asarray(ids, dtype=np.int32).tofile(self.ids)
        if self.types is not None and types is not None:
            np.asarray(types, dtype=np.int8).tofile(self.types)
        self.lengths.append(np.asarray(lengths, dtype=np.int64))
        self.tokens += len(ids)

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.ids.close()
        if self.types is not None:
            self.types.close()
        if kind is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return
        lengths = np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        offsets.tofile(self.tmp / "offsets.bin")
        (self.tmp / _META).write_text(json.dumps({
            "format": _FORMAT, "rows": len(lengths), "tokens": self.tokens,
            "max_length": self.max_length, "type_ids": self.types is not None}))
        try:
            os.replace(self.tmp, self.path)  # an empty or missing target: one atomic rename
        except OSError:  # another run published the same entry first: keep theirs
            shutil.rmtree(self.tmp, ignore_errors=True)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the tokenizer's full serialised form (vocabulary, normaliser, special tokens)."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        # without the truncation and padding a call leaves set on the backend: the same
        # tokenizer must give the same key before and after it has tokenized something
        state = json.loads(backend.to_str())
        state.pop("truncation", None)
        state.pop("padding", None)
        digest.update(json.dumps(state, sort_keys=True).encode())
    else:  # a slow tokenizer: its vocabulary and special tokens
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(repr(tokenizer.all_special_tokens).encode())
    return digest.hexdigest()[:16]


def _texts_fingerprint(texts: Sequence[str], pairs: Sequence[str] | None) -> str:
    digest = hashlib.sha256()
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    if pairs is not None:
        digest.update(b"\x01pairs")
        for text in pairs:
            digest.update(text.encode("utf-8", "surrogatepass"))
            digest.update(b"\x00")
    return digest.hexdigest()[:16]


CHUNK_ROWS = 8192  # rows per tokenizer call: large enough for the fast tokenizer's threads


def _tokenize(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None,
              max_length: int, on_rows: Callable[[int], None] | None = None,
              into: Path | None = None) -> Encoded:
    """Tokenize in chunks; with ``into``, each chunk goes straight to the cache directory
    (memory holds one chunk) and the result is read back memory-mapped."""
    chunks: list[tuple[np.ndarray, np.ndarray | None, np.ndarray]] = []
    writer = _CacheWriter(into, max_length, pairs=False) if into is not None else None
    has_types: bool | None = None
    with contextlib.ExitStack() as stack:
        for start in range(0, len(texts), CHUNK_ROWS):
            batch = texts[start:start + CHUNK_ROWS]
            second = pairs[start:start + CHUNK_ROWS] if pairs is not None else None
            out = tokenizer(batch, second, truncation=True, max_length=max_length,
                            padding=False, return_attention_mask=False)
            rows = out["input_ids"]
            lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
            total = int(lengths.sum())
            ids = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int32, count=total)
            types = (np.fromiter(itertools.chain.from_iterable(out["token_type_ids"]),
                                 dtype=np.int8, count=total)
                     if "token_type_ids" in out else None)
            if writer is not None:
                if has_types is None:
                    has_types = types is not None
                    writer.pairs = has_types
                    stack.enter_context(writer)
                writer.add(ids, types, lengths)
            else:
                chunks.append((ids, types, lengths))
            if on_rows is not None:
                on_rows(len(batch))
    if writer is not None and has_types is not None:
        return Encoded.load(into)  # type: ignore[arg-type]
    lengths = np.concatenate([c[2] for c in chunks]) if chunks else np.zeros(0, np.int64)
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros(0, dtype=np.int32)
    flat_types = (np.concatenate([c[1] for c in chunks]) if chunks and chunks[0][1] is not None
                  else None)
    return Encoded(flat, flat_types, offsets, max_length)


def encode_texts(tokenizer: Any, texts: Sequence[str], pairs: Sequence[str] | None, *,
                 max_length: int, use_cache: bool = True,
                 on_rows: Callable[[int], None] | None = None) -> Encoded:
    """Token ids for ``texts`` (and optional second texts), from the cache when possible.
    ``on_rows(n)`` is called as rows are done (a progress bar)."""
    key = "-".join([_texts_fingerprint(texts, pairs), tokenizer_fingerprint(tokenizer),
                    str(max_length)])
    path = cache_dir() / "tokens" / key
    if use_cache and path.exists():
        try:
            logger.debug("token cache hit %s", path.name)
            encoded = Encoded.load(path)
            if on_rows is not None:
                on_rows(len(texts))
            return encoded
        except (OSError, ValueError, KeyError):
            logger.warning("token cache entry %s is unreadable; tokenizing again", path)
            shutil.rmtree(path, ignore_errors=True)
    if use_cache and texts:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return _tokenize(tokenizer, texts, pairs, max_length, on_rows, into=path)
        except OSError as exc:  # a read-only home is no reason to fail a run
            logger.warning("cannot write token cache %s: %s", path, exc)
    return _tokenize(tokenizer, texts, pairs, max_length, on_rows)

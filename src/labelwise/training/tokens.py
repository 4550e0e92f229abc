"""Tokenize once, cache by data + tokenizer fingerprint, cut to shorter lengths for free.

A split is stored as flat token arrays plus row offsets (no padding). The cache key hashes
the texts, the tokenizer (its full serialised form) and ``max_length``, so a second run or
a trial with the same inputs reuses it. Trials that change ``max_length`` share the longest
tokenization and cut it (single-text inputs, whose truncated rows end with the separator).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable
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
        starts, ends = self.offsets[rows], self.offsets[rows + 1]
        index = (np.concatenate([np.arange(a, b) for a, b in zip(starts, ends, strict=True)])
                 if len(rows) else np.zeros(0, dtype=np.int64))
        offsets = np.concatenate([[0], np.cumsum(ends - starts)]).astype(np.int64)
        types = self.type_ids[index] if self.type_ids is not None else None
        return Encoded(self.ids[index], types, offsets, self.max_length)

    def cut(self, max_length: int, sep_id: int) -> Encoded:
        """Rows truncated to ``max_length`` tokens, the last kept token replaced by ``sep_id``."""
        if max_length >= int(self.lengths.max(initial=0)):
            return Encoded(self.ids, self.type_ids, self.offsets, max_length)
        ids, types, offsets = [], [], [0]
        for i in range(len(self)):
            row, trow = self.row(i)
            if len(row) > max_length:
                row = np.concatenate([row[: max_length - 1], [sep_id]]).astype(row.dtype)
                trow = trow[:max_length] if trow is not None else None
            ids.append(row)
            if trow is not None:
                types.append(trow)
            offsets.append(offsets[-1] + len(row))
        return Encoded(np.concatenate(ids), np.concatenate(types) if types else None,
                       np.asarray(offsets, dtype=np.int64), max_length)

    def save(self, path: Path) -> None:
        arrays = {"ids": self.ids, "offsets": self.offsets,
                  "max_length": np.array([self.max_length])}
        if self.type_ids is not None:
            arrays["type_ids"] = self.type_ids
        tmp = path.with_suffix(f".tmp{os.getpid()}.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Encoded:
        with np.load(path) as z:
            return cls(z["ids"], z["type_ids"] if "type_ids" in z else None, z["offsets"],
                       int(z["max_length"][0]))


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of the tokenizer's full serialised form (vocabulary, normaliser, special tokens)."""
    digest = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        digest.update(backend.to_str().encode())
    else:  # a slow tokenizer: its vocabulary and special tokens
        digest.update(repr(sorted(tokenizer.get_vocab().items())).encode())
    digest.update(repr(tokenizer.all_special_tokens).encode())
    return digest.hexdigest()[:16]


def _texts_fingerprint(texts: list[str], pairs: list[str] | None) -> str:
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


def _tokenize(tokenizer: Any, texts: list[str], pairs: list[str] | None,
              max_length: int, on_rows: Callable[[int], None] | None = None) -> Encoded:
    chunk = 4096
    ids: list[np.ndarray] = []
    types: list[np.ndarray] = []
    lengths: list[int] = []
    for start in range(0, len(texts), chunk):
        batch = texts[start:start + chunk]
        second = pairs[start:start + chunk] if pairs is not None else None
        out = tokenizer(batch, second, truncation=True, max_length=max_length, padding=False,
                        return_attention_mask=False)
        for k, row in enumerate(out["input_ids"]):
            ids.append(np.asarray(row, dtype=np.int32))
            lengths.append(len(row))
            if "token_type_ids" in out:
                types.append(np.asarray(out["token_type_ids"][k], dtype=np.int8))
        if on_rows is not None:
            on_rows(len(batch))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int32)
    flat_types = (np.concatenate(types) if types else None) if texts else None
    return Encoded(flat, flat_types, offsets, max_length)


def encode_texts(tokenizer: Any, texts: list[str], pairs: list[str] | None, *,
                 max_length: int, use_cache: bool = True,
                 on_rows: Callable[[int], None] | None = None) -> Encoded:
    """Token ids for ``texts`` (and optional second texts), from the cache when possible.
    ``on_rows(n)`` is called as rows are done (a progress bar)."""
    key = "-".join([_texts_fingerprint(texts, pairs), tokenizer_fingerprint(tokenizer),
                    str(max_length)])
    path = cache_dir() / "tokens" / f"{key}.npz"
    if use_cache and path.exists():
        try:
            logger.debug("token cache hit %s", path.name)
            encoded = Encoded.load(path)
            if on_rows is not None:
                on_rows(len(texts))
            return encoded
        except (OSError, ValueError, KeyError):
            logger.warning("token cache file %s is unreadable; tokenizing again", path)
    encoded = _tokenize(tokenizer, texts, pairs, max_length, on_rows)
    if use_cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            encoded.save(path)
        except OSError as exc:  # a read-only home is no reason to fail a run
            logger.warning("cannot write token cache %s: %s", path, exc)
    return encoded

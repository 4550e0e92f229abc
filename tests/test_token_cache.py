"""The token cache: written chunk by chunk, published whole, read back memory-mapped."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise.training import tokens
from labelwise.training.tokens import Encoded, cache_dir, encode_texts


@pytest.fixture()
def tokenizer(tiny_model, tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path / "cache"))  # this test's own

    return AutoTokenizer.from_pretrained(tiny_model)


TEXTS = [f"the film was good {i}" if i % 3 else "a bad movie" for i in range(50)]


def _entries():
    root = cache_dir() / "tokens"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_a_second_run_maps_the_cache_and_does_not_tokenize(tokenizer, monkeypatch):
    first = encode_texts(tokenizer, TEXTS, None, max_length=16)
    assert isinstance(first.ids, np.memmap) and len(first) == len(TEXTS)
    (entry,) = _entries()
    assert not entry.startswith(".")  # no temporary directory left behind

    def refuse(*_a, **_k):
        raise AssertionError("tokenized again")

    monkeypatch.setattr(tokens, "_tokenize", refuse)
    again = encode_texts(tokenizer, TEXTS, None, max_length=16)
    assert isinstance(again.ids, np.memmap)
    assert np.array_equal(again.ids, first.ids) and np.array_equal(again.offsets,
                                                                   first.offsets)
    direct = tokenizer(TEXTS, truncation=True, max_length=16)["input_ids"]
    assert [again.row(i)[0].tolist() for i in range(len(TEXTS))] == direct


def test_chunks_give_the_same_tokens_as_one_call(tokenizer, monkeypatch):
    monkeypatch.setattr(tokens, "CHUNK_ROWS", 7)
    pairs = [f"second {i}" for i in range(len(TEXTS))]
    got = encode_texts(tokenizer, TEXTS, pairs, max_length=12)
    whole = tokenizer(TEXTS, pairs, truncation=True, max_length=12)
    assert [got.row(i)[0].tolist() for i in range(len(TEXTS))] == whole["input_ids"]
    assert [got.row(i)[1].tolist() for i in range(len(TEXTS))] == whole["token_type_ids"]
    assert isinstance(got.type_ids, np.memmap)


def test_a_crash_while_tokenizing_leaves_no_entry(tokenizer, monkeypatch):
    monkeypatch.setattr(tokens, "CHUNK_ROWS", 10)
    calls = []

    def progress(n):
        calls.append(n)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encode_texts(tokenizer, TEXTS, None, max_length=16, on_rows=progress)
    assert _entries() == []  # neither a half entry nor its temporary directory
    encoded = encode_texts(tokenizer, TEXTS, None, max_length=16)
    assert len(encoded) == len(TEXTS) and len(_entries()) == 1


def test_an_unreadable_entry_is_tokenized_again(tokenizer):
    encode_texts(tokenizer, TEXTS, None, max_length=16)
    (entry,) = _entries()
    ids = cache_dir() / "tokens" / entry / "ids.bin"
    ids.write_bytes(ids.read_bytes()[:-4])  # a truncated file
    again = encode_texts(tokenizer, TEXTS, None, max_length=16)
    direct = tokenizer(TEXTS, truncation=True, max_length=16)["input_ids"]
    assert [again.row(i)[0].tolist() for i in range(len(TEXTS))] == direct


def _rowwise_cut(enc, max_length, sep):
    rows = []
    for i in range(len(enc)):
        row = enc.row(i)[0].tolist()
        rows.append(row[:max_length - 1] + [sep] if len(row) > max_length else row)
    return rows


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.integers(5, 60), max_size=12), max_size=40),
       st.integers(1, 13), st.data())
def test_cut_and_take_agree_with_row_by_row(rows, max_length, data):
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.array([t for r in rows for t in r], dtype=np.int32)
    types = (ids % 2).astype(np.int8)
    enc = Encoded(ids, types, offsets, 16)
    cut = enc.cut(max_length, 3)
    assert [cut.row(i)[0].tolist() for i in range(len(rows))] == _rowwise_cut(
        enc, max_length, 3)
    assert [cut.row(i)[1].tolist() for i in range(len(rows))] == [
        (np.array(r, dtype=np.int32) % 2)[:max_length].tolist() for r in rows]
    pick = data.draw(st.lists(st.integers(0, max(len(rows) - 1, 0)), max_size=20)
                     if rows else st.just([]))
    taken = enc.take(np.array(pick, dtype=np.int64))
    assert [taken.row(i)[0].tolist() for i in range(len(pick))] == [rows[p] for p in pick]

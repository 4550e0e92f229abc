"""Shared fixtures. No test touches the network: the hub is switched off for every test."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Ray reads its authentication settings once per process, at its first use: the token of the
# test Ray cluster (tests/test_tune_ray.py) is set here, before any test imports ray.
os.environ.setdefault("RAY_AUTH_MODE", "token")
os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
DEMO = Path(__file__).resolve().parents[1] / "src" / "labelwise" / "demo"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "sst2" / "train.csv").exists():
        pytest.skip(f"shared benchmark data not found at {SHARED_DATA}")
    return SHARED_DATA


WORDS = ("good bad great awful fine film movie plot actor story funny boring sad happy "
         "love hate slow fast long short city river who what where when how many why "
         "name country year capital number person").split()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A tiny random BERT (2 layers, hidden 32) with a real WordPiece tokenizer."""
    from labelwise.testing import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny") / "bert", vocab_words=WORDS)


@pytest.fixture(autouse=True)
def _token_cache(tmp_path_factory, monkeypatch):
    """Every test session gets its own token cache."""
    monkeypatch.setenv("LABELWISE_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))

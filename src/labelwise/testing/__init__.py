"""Test utilities for labelwise: tiny offline BERT checkpoints for fast training tests, and
:mod:`labelwise.testing.backend_checks`, the conformance suite of search backends.

Importing this package needs the ``train`` extra (torch, transformers).
"""

from __future__ import annotations

from labelwise.testing._tiny import make_tiny_bert, make_tiny_classifier

__all__ = ["make_tiny_bert", "make_tiny_classifier"]

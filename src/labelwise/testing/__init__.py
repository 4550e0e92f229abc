"""Test utilities for labelwise: tiny offline BERT checkpoints for fast training tests.

Importing this package needs the ``train`` extra (torch, transformers).
"""

from __future__ import annotations

from labelwise.testing._tiny import make_tiny_bert, make_tiny_classifier

__all__ = ["make_tiny_bert", "make_tiny_classifier"]

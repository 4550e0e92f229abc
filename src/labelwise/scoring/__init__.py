"""Scoring: metrics, thresholds and the one decision rule from logits to labels (numpy only)."""

"""Schema targets to the exact tensors a contract's loss reads (numpy, no torch)."""

from __future__ import annotations

import numpy as np

from labelwise.contract import HeadContract

__all__ = ["to_targets"]


def to_targets(encoded: np.ndarray, contract: HeadContract) -> np.ndarray:
    """``schema.encode`` output reshaped and cast for the contract.

    Binary with a one_logit head: class ids ``[n]`` become float ``[n, 1]`` (positive = 1).
    Other tasks already have the contract's dtype and shape.
    """
    if contract.target_shape == "[B, 1]":
        return encoded.astype(np.float32).reshape(-1, 1)
    if contract.target_dtype == "int64":
        return encoded.astype(np.int64)
    return encoded.astype(np.float32)

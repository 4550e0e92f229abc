"""The contract's loss in numpy, and the loss of the best constant prediction (the prior).

:func:`contract_loss` computes the loss :func:`labelwise.training.losses.make_loss` computes,
the same formula for every option (class weights, ``pos_weight``, both label smoothings,
focal loss, MSE), on a whole split at once. :func:`prior_logits` gives the constant logits
that minimise that loss over the training targets: for cross-entropy and BCE the label
prior (the class or label frequencies, weighted as the loss weighs them, smoothed as it
smooths them), for MSE the target means, in closed form; for focal loss the minimum is
found numerically (one logit at a time). A model that learned nothing from the texts ends
at that loss, so it is the baseline the trained model is judged against
(:mod:`labelwise.scoring.diagnosis`).

Every loss here is a ratio of per-row sums, ``sum(num) / sum(den)`` (weighted means divide
by the weights of the rows' classes, as PyTorch does); :func:`loss_terms` returns the two
arrays, so that the standard error of the loss over the rows follows too
(:func:`ratio_standard_error`). numpy and scipy only: no torch.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from labelwise.plan.contract import HeadContract

__all__ = ["contract_loss", "loss_terms", "prior_logits", "prior_loss",
           "ratio_standard_error"]

_FLOOR = 1e-12  # the smallest probability a constant prediction gives any class or label


def _as2d(x: Any) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x.max(axis=1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=1, keepdims=True))


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def loss_terms(logits: Any, targets: Any, contract: HeadContract) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """Per-row numerators and denominators of the contract's loss: the loss of the rows is
    ``num.sum() / den.sum()`` (see the module docstring)."""
    x = _as2d(logits)
    s = float(contract.label_smoothing or 0.0)
    gamma = float(contract.focal_gamma or 0.0)
    weights = np.asarray(contract.class_weights, dtype=np.float64) \
        if contract.class_weights else None
    if contract.loss == "mse":
        y = _as2d(targets)
        return ((x - y) ** 2).sum(axis=1), np.full(len(x), float(x.shape[1]))
    if contract.target_dtype == "int64":  # softmax heads
        y = np.asarray(targets).reshape(-1).astype(np.int64)
        logp = _log_softmax(x)
        k = x.shape[1]
        nll = -logp[np.arange(len(y)), y]
        w_row = weights[y] if weights is not None else np.ones(len(y))
        if contract.loss == "focal":
            ce = (1 - s) * nll + (s / k) * (-logp).sum(axis=1)
            loss = (1 - np.exp(-nll)) ** gamma * ce
            return loss * w_row, w_row
        w = weights if weights is not None else np.ones(k)
        smooth = (-logp * w[None, :]).sum(axis=1)
        return (1 - s) * w_row * nll + (s / k) * smooth, w_row
    # sigmoid heads: multilabel [n, k], one-logit binary [n, 1]
    y = _as2d(targets)
    t = y * (1 - s) + s / 2 if s and contract.label_smoothing_mode == "bce" else y
    pw = np.asarray(contract.pos_weight, dtype=np.float64)[None, :] \
        if contract.pos_weight else 1.0
    element = pw * t * _softplus(-x) + (1 - t) * _softplus(x)
    if contract.loss == "focal":
        p = 1 / (1 + np.exp(-x))
        p_t = p * y + (1 - p) * (1 - y)
        element = element * (1 - p_t) ** gamma
    if weights is not None and contract.num_labels == 1:
        w_row = np.where(y[:, 0] > 0.5, weights[1], weights[0])
        return element[:, 0] * w_row, w_row
    return element.sum(axis=1), np.full(len(x), float(x.shape[1]))


def contract_loss(logits: Any, targets: Any, contract: HeadContract) -> float:
    """The contract's training loss of ``logits`` on ``targets`` (the mean over the rows,
    weighted as the loss weighs them)."""
    num, den = loss_terms(logits, targets, contract)
    return float(num.sum() / den.sum()) if den.sum() > 0 else float("nan")


def ratio_standard_error(num: np.ndarray, den: np.ndarray) -> float:
    """The standard error of ``num.sum() / den.sum()`` over the rows (delta method)."""
    n = len(num)
    if n < 2 or den.sum() <= 0:
        return float("nan")
    ratio = num.sum() / den.sum()
    resid = num - ratio * den
    return float(np.sqrt(n / (n - 1) * (resid ** 2).sum()) / den.sum())


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _FLOOR, 1 - _FLOOR)
    return np.log(p) - np.log1p(-p)


def prior_logits(targets: Any, contract: HeadContract) -> np.ndarray:
    """The constant logits ``[width]`` with the lowest contract loss on ``targets``."""
    s = float(contract.label_smoothing or 0.0)
    weights = np.asarray(contract.class_weights, dtype=np.float64) \
        if contract.class_weights else None
    if contract.loss == "mse":
        return _as2d(targets).mean(axis=0)
    if contract.target_dtype == "int64":
        y = np.asarray(targets).reshape(-1).astype(np.int64)
        k = contract.num_labels
        if contract.loss == "focal":
            return _focal_softmax(y, contract)
        counts = np.bincount(y, minlength=k).astype(np.float64)
        w = weights if weights is not None else np.ones(k)
        a = (1 - s) * w * counts + (s / k) * len(y) * w  # the loss is sum(a * -log q)
        q = np.maximum(a / a.sum(), _FLOOR)
        return np.log(q)
    y = _as2d(targets)
    t = y * (1 - s) + s / 2 if s and contract.label_smoothing_mode == "bce" else y
    if weights is not None and contract.num_labels == 1:
        v = np.where(y[:, 0] > 0.5, weights[1], weights[0])[:, None]
    else:
        v = np.ones((len(y), 1))
    if contract.loss == "focal":
        return _focal_sigmoid(y, contract)
    pw = np.asarray(contract.pos_weight, dtype=np.float64) if contract.pos_weight else 1.0
    alpha = pw * (v * t).sum(axis=0)  # the loss of label j is alpha*-log(q) + beta*-log(1-q)
    beta = (v * (1 - t)).sum(axis=0)
    return _logit(alpha / np.maximum(alpha + beta, _FLOOR))


def _focal_softmax(y: np.ndarray, contract: HeadContract) -> np.ndarray:
    """Two-logit binary focal loss (the only softmax head focal loss is allowed on): the
    best constant logit difference, found numerically."""
    from scipy.optimize import minimize_scalar

    def f(z: float) -> float:
        x = np.zeros((len(y), 2))
        x[:, 1] = z
        return contract_loss(x, y, contract)

    z = minimize_scalar(f, bounds=(-30.0, 30.0), method="bounded").x
    return np.array([0.0, float(z)])


def _focal_sigmoid(y: np.ndarray, contract: HeadContract) -> np.ndarray:
    """Sigmoid focal loss: the best constant logit of each label, found numerically (the
    loss of a constant is a sum over labels, so each label is its own problem)."""
    from dataclasses import replace

    from scipy.optimize import minimize_scalar

    out = np.zeros(y.shape[1])
    pos = contract.pos_weight
    for j in range(y.shape[1]):
        # one column of the same contract: its own pos_weight, the same sample weights
        one = replace(contract, pos_weight=(pos[j],) if pos else None)
        col = y[:, j:j + 1]

        def f(z: float, col: np.ndarray = col, one: HeadContract = one) -> float:
            return contract_loss(np.full(col.shape, z), col, one)

        out[j] = minimize_scalar(f, bounds=(-30.0, 30.0), method="bounded").x
    return out


def prior_loss(train_targets: Any, contract: HeadContract, *, on: Any = None
               ) -> tuple[float, float]:
    """The loss of the training prior (:func:`prior_logits` of ``train_targets``) on ``on``
    (default the training targets themselves), and its standard error over those rows."""
    rows = train_targets if on is None else on
    logits = np.tile(prior_logits(train_targets, contract), (len(np.asarray(rows)), 1))
    num, den = loss_terms(logits, rows, contract)
    return float(num.sum() / den.sum()), ratio_standard_error(num, den)

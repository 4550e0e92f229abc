"""The loss a :class:`~labelwise.plan.contract.HeadContract` names, as a torch function.

Every option the contract allows is really applied here: class weights (cross-entropy,
and per-sample weights for a one-logit head), ``pos_weight`` for BCE, cross-entropy label
smoothing, BCE label smoothing (targets ``y * (1 - s) + s / 2``), focal loss (softmax focal
for a two-logit binary head, sigmoid focal for one-logit and multilabel), and MSE.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from labelwise.plan.contract import HeadContract

__all__ = ["make_loss"]


def make_loss(contract: HeadContract) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """A function ``(logits, targets) -> scalar loss`` for the contract."""
    weights = (torch.tensor(contract.class_weights, dtype=torch.float32)
               if contract.class_weights else None)
    pos_weight = (torch.tensor(contract.pos_weight, dtype=torch.float32)
                  if contract.pos_weight else None)
    s = contract.label_smoothing
    gamma = contract.focal_gamma or 0.0

    if contract.loss == "mse":
        return lambda logits, y: F.mse_loss(logits.float(), y)

    if contract.target_dtype == "int64":  # softmax heads: binary two_logit, multiclass
        if contract.loss == "focal":
            def softmax_focal(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
                ce = F.cross_entropy(logits, y, reduction="none", label_smoothing=s)
                pt = torch.exp(-F.cross_entropy(logits, y, reduction="none"))
                loss = (1 - pt) ** gamma * ce
                if weights is not None:
                    w = weights.to(logits.device)[y]
                    return (loss * w).sum() / w.sum()
                return loss.mean()

            return softmax_focal

        def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            w = weights.to(logits.device) if weights is not None else None
            return F.cross_entropy(logits, y, weight=w, label_smoothing=s)

        return cross_entropy

    # sigmoid heads: multilabel [B, K], one_logit binary [B, 1]
    def smooth(y: torch.Tensor) -> torch.Tensor:
        return y * (1 - s) + s / 2 if s and contract.label_smoothing_mode == "bce" else y

    def sample_weights(y: torch.Tensor) -> torch.Tensor | None:
        if weights is None or contract.num_labels != 1:
            return None
        w = weights.to(y.device)
        return torch.where(y > 0.5, w[1], w[0])

    if contract.loss == "focal":
        def sigmoid_focal(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            target = smooth(y)
            pw = pos_weight.to(logits.device) if pos_weight is not None else None
            ce = F.binary_cross_entropy_with_logits(logits, target, pos_weight=pw,
                                                    reduction="none")
            p = torch.sigmoid(logits)
            p_t = p * y + (1 - p) * (1 - y)
            loss = ce * (1 - p_t) ** gamma
            w = sample_weights(y)
            return (loss * w).sum() / w.sum() if w is not None else loss.mean()

        return sigmoid_focal

    def bce(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        pw = pos_weight.to(logits.device) if pos_weight is not None else None
        w = sample_weights(y)
        loss = F.binary_cross_entropy_with_logits(logits, smooth(y), pos_weight=pw,
                                                  reduction="none")
        return (loss * w).sum() / w.sum() if w is not None else loss.mean()

    return bce

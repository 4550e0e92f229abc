"""The new classifier head: which parameters are new, and where its output bias starts.

A head that starts at zero bias predicts p = 0.5 for every label of a sigmoid head (and a
uniform distribution for a softmax head), far from the label frequencies. On GoEmotions (28
labels, about 4% positive each) the first epoch at learning rate 1e-4 went into moving 28
biases from 0 towards -3, and the model never got past predicting the label frequencies
(validation macro-F1 0.09). Starting the bias at the training prior removes that phase
(macro-F1 0.36 after the same epoch; bench/bench_head.py): the "initialise the final
layer well" advice of Karpathy's training recipe, and the prior initialisation of the
focal-loss paper (Lin et al., 2017).

A softmax head is another matter: at zero bias it predicts the uniform distribution, whose
loss is close to the prior's, and the log class frequency starts a rare class so far below
the rest that a short fine-tune may never predict it (TREC, 2 epochs: the 1.5% ABBR class
had recall 0 in 2 of 3 seeds from the prior, 1.0 in all 3 from zero). So
``model.head_bias: auto`` (the default) starts sigmoid and regression heads at the prior and
leaves softmax heads at the model's init (``labelwise.plan.preflight.head_bias``).

The prior, by contract:

* sigmoid outputs (multilabel, one-logit binary): the log-odds of each label's training
  frequency;
* softmax outputs (multiclass, two-logit binary): the log of each class's training
  frequency (add-one smoothed), centred;
* identity outputs (regression): each target's training mean.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from labelwise.plan.contract import HeadContract

__all__ = ["head_prior", "new_parameters", "init_head_bias", "reinit_head"]

logger = logging.getLogger("labelwise")

_EPS = 1e-4


def head_prior(targets: np.ndarray, contract: HeadContract) -> np.ndarray:
    """The output bias that makes a featureless head predict the training prior."""
    if contract.activation == "sigmoid":
        p = np.clip(np.asarray(targets, dtype=np.float64).reshape(len(targets), -1).mean(0),
                    _EPS, 1 - _EPS)
        return np.log(p / (1 - p))
    if contract.activation == "softmax":
        counts = np.bincount(np.asarray(targets, dtype=np.int64).ravel(),
                             minlength=contract.num_labels)[:contract.num_labels]
        logp = np.log((counts + 1.0) / (counts.sum() + contract.num_labels))
        return logp - logp.mean()
    values = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    return np.nanmean(values, axis=0)


def new_parameters(model: Any, *, base_state: dict[str, Any] | None = None,
                   loading_info: dict[str, Any] | None = None) -> set[str]:
    """Names of the weights (parameters and buffers) the checkpoint did not provide: the new
    head."""
    names = set(model.state_dict())
    if base_state is not None:
        return names - set(base_state)
    info = loading_info or {}
    missing = set(info.get("missing_keys", ())) | {
        k if isinstance(k, str) else k[0] for k in info.get("mismatched_keys", ())}
    return names & missing


def reinit_head(model: Any, new: Iterable[str]) -> None:
    """Initialise the modules owning ``new`` parameters again with the model's own
    ``_init_weights`` (a copied model then gets a head of the current seed)."""
    import torch

    owners = {name.rsplit(".", 1)[0] for name in new}
    with torch.no_grad():
        for name, module in model.named_modules():
            if name not in owners:
                continue
            for param in module.parameters(recurse=False):
                param.__dict__.pop("_is_hf_initialized", None)
            module.__dict__.pop("_is_hf_initialized", None)
            model._init_weights(module)


def _output_layer(model: Any, new: Iterable[str], width: int) -> tuple[str, Any] | None:
    """The last new linear layer whose width is the head's: the output layer."""
    import torch

    new = set(new)
    found = None
    for name, module in model.named_modules():
        if (isinstance(module, torch.nn.Linear) and module.out_features == width
                and module.bias is not None and f"{name}.bias" in new):
            found = (name, module)
    return found


def init_head_bias(model: Any, *, new: Iterable[str], targets: np.ndarray,
                   contract: HeadContract) -> str | None:
    """Set the new output layer's bias to the training prior; its name, or ``None`` when the
    head is not new (a checkpoint's own head keeps its bias)."""
    import torch

    layer = _output_layer(model, new, contract.num_labels)
    if layer is None:
        return None
    name, module = layer
    prior = head_prior(targets, contract)
    with torch.no_grad():
        module.bias.copy_(torch.as_tensor(prior, dtype=module.bias.dtype))
    logger.debug("head bias of %s set to the training prior %s", name, np.round(prior, 3))
    return name

"""labelwise.check_targets: the target check for a hand-written PyTorch loop, before the
forward pass.

    python examples/check_targets.py
"""

import torch
from torch import nn

import labelwise

torch.manual_seed(0)
head = nn.Linear(8, 2)  # a 2-logit head trained with BCE
loss_fn = nn.BCEWithLogitsLoss()
features = torch.randn(16, 8)
targets = nn.functional.one_hot(torch.arange(16) % 3, 3).float()  # width 3: a stray class

try:
    loss_fn(head(features), targets)
except ValueError as err:
    print(f"plain PyTorch: {type(err).__name__}: {err}")

try:
    labelwise.check_targets(targets, num_labels=head.out_features, loss=loss_fn)
except labelwise.LabelwiseError as err:
    print(f"labelwise: {type(err).__name__} {err.code}: {err}")

# [B] targets with a 1-logit head: BCE fails on the shape; check_targets names the fix.
one = nn.Linear(8, 1)
flat = (torch.arange(16) % 2).float()
try:
    loss_fn(one(features), flat)
except ValueError as err:
    print(f"plain PyTorch: {type(err).__name__}: {err}")
try:
    labelwise.check_targets(flat, num_labels=1, loss=loss_fn)
except labelwise.LabelwiseError as err:
    print(f"labelwise: {type(err).__name__} {err.code}: {err}")
print("accepted:", labelwise.check_targets(flat.unsqueeze(1), num_labels=1, loss=loss_fn))

"""check_targets in a hand-written PyTorch loop: the errors come before the forward pass."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

import labelwise
from labelwise.errors import ContractError


def one_hot(ids, width):
    return torch.nn.functional.one_hot(torch.tensor(ids), width).float()


def test_bce_width_3_targets_with_a_2_logit_head():
    targets = one_hot([0, 1, 2, 1, 2], 3)
    logits = torch.zeros(5, 2)
    with pytest.raises(ValueError, match=re.escape("Target size (torch.Size([5, 3])) must be "
                                                   "the same as input size")):
        nn.BCEWithLogitsLoss()(logits, targets)  # what the plain loop hits
    with pytest.raises(ContractError, match=re.escape(
            "targets have width 3 but the head has 2 logits (num_labels=2); BCEWithLogitsLoss "
            "needs one target column per logit (rows 2, 4). Fix: set num_labels=3 (one logit "
            "per label), or drop the stray class (target column 2)")) as info:
        labelwise.check_targets(targets, logits=logits, loss=nn.BCEWithLogitsLoss())
    assert info.value.code == "LW230"
    with pytest.raises(ContractError, match="targets have width 3 but the head has 2 logits"):
        labelwise.check_targets(targets, num_labels=2, loss=nn.BCEWithLogitsLoss())


def test_bce_width_2_one_hot_with_a_2_logit_head_is_accepted():
    got = labelwise.check_targets(one_hot([0, 1, 1], 2), num_labels=2,
                                  loss=nn.BCEWithLogitsLoss())
    assert got == labelwise.training.guard.TargetCheck("bce", 2, (3, 2))


def test_bce_b_1_targets_with_a_1_logit_head_are_accepted():
    got = labelwise.check_targets(torch.tensor([[0.0], [1.0]]), logits=torch.zeros(2, 1),
                                  loss=nn.BCEWithLogitsLoss())
    assert got.shape == (2, 1) and got.num_labels == 1


def test_bce_b_targets_with_a_1_logit_head_get_the_fix():
    targets, logits = torch.tensor([0.0, 1.0, 1.0]), torch.zeros(3, 1)
    with pytest.raises(ContractError, match=re.escape(
            "targets have shape [3] but the 1-logit head, BCEWithLogitsLoss gives logits [3, 1]; "
            "BCE needs the same shape. Fix: pass targets.unsqueeze(1), or build num_labels=1 "
            "targets of shape [B, 1]")):
        labelwise.check_targets(targets, logits=logits, loss=nn.BCEWithLogitsLoss())
    nn.BCEWithLogitsLoss()(logits, targets.unsqueeze(1))  # the fix works


@pytest.mark.parametrize("targets, kwargs, code, text", [
    (torch.tensor([[1, 0], [0, 1]]), {"num_labels": 2}, "LW222", "needs float targets"),
    (torch.tensor([[0.0, 2.0], [1.0, 0.0]]), {"num_labels": 2}, "LW223",
     "targets hold values outside [0, 1] (2-logit head, BCEWithLogitsLoss) (row 0)"),
    (torch.tensor([[0.0, float("nan")], [1.0, 0.0]]), {"num_labels": 2}, "LW237",
     "targets hold NaN or infinite values"),
    (torch.tensor([0.0, 1.0]), {"num_labels": 2}, "LW221", "F.one_hot(targets.long(), 2)"),
])
def test_bce_refusals(targets, kwargs, code, text):
    with pytest.raises(ContractError, match=re.escape(text)) as info:
        labelwise.check_targets(targets, loss=nn.BCEWithLogitsLoss(), **kwargs)
    assert info.value.code == code


def test_cross_entropy():
    loss = nn.CrossEntropyLoss()
    assert labelwise.check_targets(torch.tensor([0, 2, 1]), num_labels=3, loss=loss).loss == "ce"
    assert labelwise.check_targets(torch.full((2, 3), 1 / 3), num_labels=3, loss=loss).loss == "ce"
    with pytest.raises(IndexError, match="Target 2 is out of bounds"):
        loss(torch.zeros(4, 2), torch.tensor([0, 1, 2, 1]))
    with pytest.raises(ContractError, match=re.escape(
            "class id(s) [2] cannot be held by a 2-logit head (ids must be in [0, 1]) (rows 2, "
            "3). Fix: set num_labels=3, or drop the stray class")):
        labelwise.check_targets(torch.tensor([0, 1, 2, 2]), num_labels=2, loss=loss)
    with pytest.raises(ContractError, match="targets.argmax"):
        labelwise.check_targets(torch.tensor([[0, 1], [1, 0]]), num_labels=2, loss=loss)
    with pytest.raises(ContractError, match="pass targets.long()"):
        labelwise.check_targets(torch.tensor([0.0, 1.0]), num_labels=2, loss=loss)
    with pytest.raises(ContractError, match="always 0"):
        labelwise.check_targets(torch.tensor([0, 0]), num_labels=1, loss=loss)


def test_mse():
    loss = nn.MSELoss()
    assert labelwise.check_targets(torch.rand(4, 1), logits=torch.zeros(4, 1), loss=loss).loss \
        == "mse"
    with pytest.raises(ContractError, match=re.escape("targets.unsqueeze(1) (MSE broadcasts")):
        labelwise.check_targets(torch.rand(4), logits=torch.zeros(4, 1), loss=loss)
    with pytest.raises(ContractError, match="needs floats"):
        labelwise.check_targets(torch.tensor([1, 2]), num_labels=1, loss=loss)


def test_defaults_and_mismatched_rows():
    assert labelwise.check_targets(torch.tensor([0, 1]), num_labels=2).loss == "ce"
    assert labelwise.check_targets(torch.tensor([[0.0, 1.0]]), num_labels=2).loss == "bce"
    with pytest.raises(ContractError, match="targets hold 3 rows but the logits 2"):
        labelwise.check_targets(torch.tensor([0, 1, 1]), logits=torch.zeros(2, 2))
    with pytest.raises(ContractError, match="pass num_labels= or logits="):
        labelwise.check_targets(torch.tensor([0, 1]))


def test_a_plain_loop_stops_before_the_forward_pass():
    model = nn.Linear(4, 2)
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    loss = nn.BCEWithLogitsLoss()
    batches = [(torch.rand(3, 4), one_hot([0, 1, 1], 2)),
               (torch.rand(3, 4), one_hot([0, 2, 1], 3))]
    with pytest.raises(ContractError, match="width 3"):
        for x, y in batches:
            labelwise.check_targets(y, num_labels=model.out_features, loss=loss)
            loss(model(x), y).backward()
    assert calls == [1]  # the second batch never reached the model

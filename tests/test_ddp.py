"""Several processes, one run: ``torchrun --nproc_per_node 2 -m labelwise train`` on the CPU
(gloo) against one process with the same effective batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from labelwise.plan.config import config_from_dict
from labelwise.training.train import train

TORCHRUN = Path(sys.executable).with_name("torchrun")


def test_length_buckets_are_dealt_to_the_processes_whole_and_once():
    from accelerate.data_loader import BatchSamplerShard

    from labelwise.training.batching import LengthBucketBatchSampler

    lengths = np.random.default_rng(0).integers(2, 60, size=203)
    whole = LengthBucketBatchSampler(lengths, 8, seed=3, chunk_batches=4).batches(1)
    shards = []
    for rank in range(2):
        sampler = LengthBucketBatchSampler(lengths, 8, seed=3, chunk_batches=4, shared=True)
        sampler.set_epoch(1)
        shard = BatchSamplerShard(sampler, num_processes=2, process_index=rank)
        shards.append(list(shard))
        assert len(shard) == len(shards[-1])  # what Trainer counts steps by
    assert len(shards[0]) == len(shards[1])  # the processes step together
    dealt = [b for pair in zip(*shards) for b in pair]
    n = len(whole)
    assert dealt[:n] == whole  # every batch, the short ones too, in the seeded order
    assert all(len(b) <= 8 for b in dealt)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed")
def test_two_gloo_processes_train_the_model_one_process_trains(tmp_path, tiny_model):
    from tuning_data import data

    sections = {
        "data": {"train": data(tmp_path / "train.csv", 64, 1),
                 "valid": data(tmp_path / "valid.csv", 32, 2)},
        "model": {"name_or_path": str(tiny_model), "max_length": 16},
        "train": {"epochs": 5, "batch_size": 16, "learning_rate": 3e-3,
                  "evals_per_epoch": 1},
    }
    single = train(config_from_dict({**sections, "output_dir": str(tmp_path / "one")}))

    (tmp_path / "run.json").write_text(json.dumps(sections))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "labelwise", "train",
         "--config", str(tmp_path / "run.json"), "--set", "train.batch_size=8",
         "--output-dir", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    # one process checks and speaks: each plan line, the metrics and the save, once
    for line in ("device=cpu (auto: no CUDA or MPS device)", "processes=2 (torchrun",
                 "effective_batch=16 (train.batch_size 8 in each of 2 processes",
                 "length_bucketing=on, batches dealt to 2 processes", "task=binary",
                 "Metrics", "saved "):
        assert out.count(line) == 1, (line, out)
    assert out.count("report: ") == 1
    two = tmp_path / "two"
    manifest = json.loads((two / "labelwise.json").read_text())
    stats = manifest["stats"]
    assert stats["processes"] == 2 and stats["device"] == "cpu"
    assert stats["steps"] == single.stats["steps"] == 20  # 64 rows / 16 a step x 5 epochs
    assert isinstance(stats["embedding_rows_trained"], int)  # the cut works under DDP
    assert sorted(p.name for p in tmp_path.iterdir() if "two" in p.name) == ["two"]
    assert (two / "report.html").exists() and (two / "model.safetensors").exists()

    ddp_valid = json.loads((two / "metrics.json").read_text())["valid"]
    one_valid = single.metrics["valid"]
    assert one_valid["accuracy"] >= 0.9 and ddp_valid["accuracy"] >= 0.9
    assert abs(ddp_valid["accuracy"] - one_valid["accuracy"]) <= 0.1
    assert abs(ddp_valid["roc_auc"] - one_valid["roc_auc"]) <= 0.05

    # a mistake is reported once, by process 0, and every process exits 2
    bad = subprocess.run(
        [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "labelwise", "train",
         "--config", str(tmp_path / "run.json"), "--set", "train.precision=fp16",
         "--output-dir", str(tmp_path / "bad")],
        env=env, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0
    text = bad.stdout + bad.stderr
    assert text.count("LW372 train.precision is fp16, but the run trains on the CPU") == 1
    assert not (tmp_path / "bad").exists() and not (tmp_path / ".bad.partial").exists()

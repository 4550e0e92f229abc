"""bench/gpu_check.py runs to completion without a GPU (its --quick form)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gpu_check.py"


def test_gpu_check_runs_on_the_cpu(tmp_path, shared_data):
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(BENCH), "--quick", "--data", str(shared_data),
                           "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    facts = result["device_facts"]
    assert facts["labelwise_auto"]["device"] == "cpu" and facts["gpus"] == []
    runs = [(r["who"], r["precision"]) for r in result["train"]]
    assert runs == [("plain Trainer", "fp32"), ("plain Trainer", "bf16"),
                    ("labelwise train", "auto -> fp32")]
    assert all(r["samples_per_s"] > 0 and r["step_samples_per_s"] > 0 and
               r["peak_gpu_mib"] is None for r in result["train"])
    assert result["tune"]["states"] == {"COMPLETE": 4} and result["tune"]["workers"] == 1
    assert "labelwise train   auto -> fp32" in proc.stdout

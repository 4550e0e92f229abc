"""Each examples/ script runs and prints the plain failure, then labelwise's message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(name: str) -> list[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / name)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


@pytest.mark.parametrize("name, plain, guarded", [
    ("guard_trainer.py",
     ["plain Transformers: ValueError: Target size (torch.Size([16, 3])) must be the same as "
      "input size (torch.Size([16, 2]))"],
     ["labelwise: GuardError LW230: one-hot targets have width 3 but the model has "
      "num_labels=2", "labelwise: SearchSpaceError LW239: trial 0: the search space names "
      "'learnig_rate'"]),
    ("labelwise_callback.py",
     ["plain Transformers: ValueError: Target size (torch.Size([8])) must be the same as "
      "input size (torch.Size([8, 2]))",
      "  (and the model config now says problem_type='multi_label_classification')"],
     ["labelwise: GuardError LW233: targets are float 0/1 class ids with num_labels=2",
      "  (raised at step 0)"]),
    ("check_targets.py",
     ["plain PyTorch: ValueError: Target size (torch.Size([16, 3])) must be the same as input "
      "size (torch.Size([16, 2]))"],
     ["labelwise: ContractError LW230: targets have width 3 but the head has 2 logits",
      "plain PyTorch: ValueError: Target size (torch.Size([16])) must be the same as input "
      "size (torch.Size([16, 1]))",
      "labelwise: ContractError LW221: targets have shape [16] but the 1-logit head",
      "accepted: TargetCheck(loss='bce', num_labels=1, shape=(16, 1))"]),
])
def test_example_shows_the_plain_failure_then_labelwise(name, plain, guarded):
    lines = run(name)
    expected = plain + guarded
    found = [next((i for i, line in enumerate(lines) if line.startswith(want)), None)
             for want in expected]
    assert None not in found, (expected, lines)
    assert found == sorted(found)  # the plain failure first, then labelwise's message
    assert any("set num_labels=3" in line or "cast the column to int64" in line or
               "unsqueeze(1)" in line for line in lines if line.startswith("labelwise"))

"""``make demo`` end to end (scripts/demo.sh on the packaged MiniLM, a few minutes): the plain
run's findings name the class it never predicts, and the model tuned with the fixes they
name (class weights, more epochs) predicts it (validation recall above 0, and a neutral
sentence labelled neutral)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.demo]

ROOT = Path(__file__).resolve().parents[1]
NEUTRAL_SENTENCE = "The meeting is at 3pm in room 204."


def _recall(metrics: dict, name: str) -> float:
    return next(r["recall"] for r in metrics["valid"]["per_class"] if r["label"] == name)


def test_demo_shows_the_finding_and_its_tuned_model_predicts_neutral(tmp_path):
    exe = Path(sys.executable).parent / "labelwise"
    if not exe.exists() or shutil.which("bash") is None:
        pytest.skip("needs bash and the labelwise console script beside this Python")
    out = tmp_path / "demo"
    env = {**os.environ, "LABELWISE": str(exe), "PYTHON": sys.executable,
           "DEMO_OUT": str(out), "COLUMNS": "200", "NO_COLOR": "1"}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=3600)
    text = run.stdout + run.stderr
    assert run.returncode == 0, text[-4000:]
    assert "demo finished" in run.stdout

    # the plain run prints the finding: 'neutral' never predicted (or recall 0), its
    # training count and the class-weights fix
    plain = text[text.index("labelwise train"):text.index("labelwise tune --config",
                                                         text.index("labelwise train"))]
    assert re.search(r"LW60[12]\s+class 'neutral' (never predicted|has recall 0)", plain), plain
    assert "24 training rows" in plain and "train.class_weights: balanced" in plain
    saved = json.loads((Path(f"{out}-plain") / "metrics.json").read_text())
    assert _recall(saved, "neutral") == 0.0
    assert {f["code"] for f in saved["after_training"]["findings"]} & {"LW601", "LW602"}

    # the tuned model (class weights) predicts neutral on validation and for the sentence
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert _recall(best, "neutral") > 0
    assert "best trial" in run.stdout
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 5
    assert preds.set_index("text").loc[NEUTRAL_SENTENCE, "label"] == "neutral"
